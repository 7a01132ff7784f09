/*
 * Fuzz target: the JSON Schema validator (engine/jsonschema.c) and the job
 * payload schemas (schemas/jobs/, embedded in libusher). The input is JSON
 * text, used three ways:
 *   - as a payload, checked against every job kind's schema (what a worker
 *     child does before a handler runs, and `usherctl enqueue`);
 *   - as a schema: compiled, and when it compiles, the input checked against it;
 *   - when it is an array [schema, value]: value checked against schema.
 * Properties: compiling answers OK or INVALID, validating OK or PAYLOAD,
 * each refusal with a message that fits the buffer (sizes 1 to 512 bytes,
 * each in a heap block of its own so that ASan sees a byte past it).
 */
#include <jansson.h>

#include "config.h"
#include "fuzz.h"
#include "job_schemas.h"
#include "jsonschema.h"

/* Checks that err holds a NUL-terminated message of errlen bytes at most (non-empty if asked). */
static void check_message(const char *err, size_t errlen, const char *what)
{
    size_t n = strnlen(err, errlen);

    FUZZ_CHECK(n < errlen, "%s: message not terminated within %zu bytes", what, errlen);
    FUZZ_CHECK(errlen == 1 || n > 0, "%s: empty message", what);
}

static void validate(const usher_jsonschema *schema, json_t *value, size_t errlen)
{
    char *err = malloc(errlen);
    usher_err rc;

    if (err == NULL)
        return;
    rc = usher_jsonschema_validate(schema, value, "payload", err, errlen);
    FUZZ_CHECK(rc == USHER_OK || rc == USHER_ERR_PAYLOAD, "validate answered %d", (int)rc);
    if (rc != USHER_OK)
        check_message(err, errlen, "validate");
    free(err);
}

/* Compiles schema; when it compiles, validates value against it (with two buffer sizes). */
static void compile_and_validate(json_t *schema, json_t *value, size_t errlen)
{
    usher_jsonschema *compiled = NULL;
    char err[512];
    usher_err rc = usher_jsonschema_compile(schema, &compiled, err, sizeof(err));

    FUZZ_CHECK(rc == USHER_OK || rc == USHER_ERR_INVALID, "compile answered %d", (int)rc);
    FUZZ_CHECK((rc == USHER_OK) == (compiled != NULL), "compile: result and code disagree");
    if (rc != USHER_OK) {
        check_message(err, sizeof(err), "compile");
        return;
    }
    validate(compiled, value, sizeof(err));
    validate(compiled, value, errlen);
    usher_jsonschema_free(compiled);
}

/* Checks value against every job kind's schema, as the worker's payload gate does. */
static void check_job_kinds(json_t *value, size_t errlen)
{
    for (size_t i = 0; usher_job_schema_files[i].name != NULL; i++) {
        const char *file = usher_job_schema_files[i].name;
        size_t len = strlen(file) - strlen(USHER_JOB_SCHEMA_SUFFIX);
        char kind[USHER_NAME_MAX], err[512];
        usher_err rc;

        snprintf(kind, sizeof(kind), "%.*s", (int)len, file);
        rc = usher_job_schema_check(kind, value, err, sizeof(err));
        FUZZ_CHECK(rc == USHER_OK || rc == USHER_ERR_PAYLOAD, "%s: answered %d", kind, (int)rc);
        if (rc != USHER_OK)
            check_message(err, sizeof(err), kind);
        validate(usher_job_schema_find(kind), value, errlen);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool loaded;
    json_error_t jerr;
    json_t *value;
    size_t errlen = 1 + fuzz_hash(data, size) % 96; /* a small buffer: truncation paths */

    if (!loaded) {
        char err[512];

        FUZZ_CHECK(usher_job_schemas_load(err, sizeof(err)) == USHER_OK, "%s", err);
        loaded = true;
    }
    value = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (value == NULL)
        return 0;
    check_job_kinds(value, errlen);
    compile_and_validate(value, value, errlen);
    if (json_array_size(value) == 2)
        compile_and_validate(json_array_get(value, 0), json_array_get(value, 1), errlen);
    json_decref(value);
    return 0;
}
