/*
 * A JSON Schema validator for the subset of JSON Schema 2020-12 that the job
 * payload schemas (schemas/jobs/) use, on top of jansson.
 *
 * Keywords:
 *   type                  a name or an array of names: null, boolean, object,
 *                         array, number, integer, string. "integer" is a JSON
 *                         number written without fraction or exponent (1, not
 *                         1.0), as jansson and the handlers see it; "number"
 *                         is any number.
 *   properties            {name: schema}, checked for the names present.
 *   required              [name, ...]
 *   additionalProperties  a boolean only: false refuses names not listed in
 *                         properties.
 *   items                 one schema, for every element of an array.
 *   enum, const           the value equals one of the values / the value.
 *   minLength, maxLength  string length in Unicode code points.
 *   minimum, maximum      inclusive bounds of a number.
 *   minItems, maxItems    array length.
 *   oneOf                 [schema, ...]: exactly one must match.
 *   $schema, $id, title, description (strings) and examples (an array) are
 *   annotations: accepted and not checked against.
 * A keyword that applies to one type (minLength...) ignores values of other
 * types, as in the standard. Any other keyword ($ref, pattern, a typo) makes
 * compiling fail, so a mistake in a schema file is found when it is compiled
 * rather than silently ignored. Boolean schemas (true/false) are not
 * supported.
 *
 * Schemas nest at most USHER_JSONSCHEMA_MAX_DEPTH deep; validation recurses
 * only along the schema, so it is bounded by the same depth.
 */
#ifndef USHER_JSONSCHEMA_H
#define USHER_JSONSCHEMA_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

#define USHER_JSONSCHEMA_MAX_DEPTH 32

typedef struct usher_jsonschema usher_jsonschema;

/*
 * Checks schema and keeps a copy of it in *out (free it with
 * usher_jsonschema_free). USHER_ERR_INVALID with the JSON pointer of the
 * offending schema and the reason in err ("#/properties/page: unknown keyword
 * \"enun\"").
 */
USHER_MUSTCHECK usher_err usher_jsonschema_compile(json_t *schema, usher_jsonschema **out,
                                                   char *err, size_t errlen);

void usher_jsonschema_free(usher_jsonschema *schema);

/*
 * USHER_OK when value satisfies schema; otherwise USHER_ERR_PAYLOAD and the
 * first violation in err, named by its path from name and by its rule:
 * "payload.registration_id: expected integer, got string",
 * "payload: missing required property \"template\"". value is borrowed.
 */
USHER_MUSTCHECK usher_err usher_jsonschema_validate(const usher_jsonschema *schema, json_t *value,
                                                    const char *name, char *err, size_t errlen);

#endif
