/*
 * The payload schemas of the job kinds: schemas/jobs/KIND.schema.json,
 * embedded in the binary at build time (cmake/embed_files.cmake) and
 * compiled with engine/jsonschema.h on first use. The worker's child checks
 * a job's payload against its kind's schema before the handler runs
 * (workers/payload_gate.h), so handlers see only payloads of the documented
 * shape; `usherctl enqueue` checks it before anything is written.
 */
#ifndef USHER_JOB_SCHEMAS_H
#define USHER_JOB_SCHEMAS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "embedded.h"
#include "error.h"
#include "jsonschema.h"

#define USHER_JOB_SCHEMA_SUFFIX ".schema.json"

/* The files KIND.schema.json, in name order; ends with a NULL name. (Generated.) */
extern const usher_embedded_file usher_job_schema_files[];

/*
 * Compiles every embedded schema, once: later calls return USHER_OK at once.
 * On failure (USHER_ERR_INVALID naming the kind and the reason) nothing
 * stays loaded and the next call tries again. Not
 * thread-safe: a program with threads calls it before starting them.
 */
USHER_MUSTCHECK usher_err usher_job_schemas_load(char *err, size_t errlen);

/* The compiled schema of kind, or NULL if it has none or they are not loaded. */
const usher_jsonschema *usher_job_schema_find(const char *kind);

/*
 * Checks payload against kind's schema, loading the schemas if needed.
 * USHER_OK when it satisfies the schema or the kind has none (the test.*
 * kinds); USHER_ERR_PAYLOAD with the violation in err
 * ("payload.registration_id: expected integer, got string"); the code of
 * usher_job_schemas_load if the schemas cannot be loaded.
 */
USHER_MUSTCHECK usher_err usher_job_schema_check(const char *kind, json_t *payload, char *err,
                                                 size_t errlen);

#endif
