/*
 * The compiled schemas live in one array parallel to the generated
 * usher_job_schema_files, filled by the first load. A process compiles
 * them at most once: a worker child on its first job (a dozen small
 * schemas, about 0.2 ms), the tests when they ask.
 */
#include "job_schemas.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* compiled[i] is the schema of usher_job_schema_files[i]; NULL until loaded. */
static usher_jsonschema **compiled;

static void unload(void)
{
    for (size_t i = 0; compiled != NULL && usher_job_schema_files[i].name != NULL; i++)
        usher_jsonschema_free(compiled[i]);
    free(compiled);
    compiled = NULL;
}

/* Parses and compiles the schema file into *out. */
static USHER_MUSTCHECK usher_err compile_file(const usher_embedded_file *file,
                                              usher_jsonschema **out, char *err, size_t errlen)
{
    char reason[512];
    json_error_t jerr;
    json_t *schema = json_loadb((const char *)file->data, file->size, 0, &jerr);
    usher_err rc;

    if (schema == NULL)
        return usher_errbuf(err, errlen, USHER_ERR_INVALID, "%s: line %d: %s", file->name,
                            jerr.line, jerr.text);
    rc = usher_jsonschema_compile(schema, out, reason, sizeof(reason));
    json_decref(schema);
    if (rc != USHER_OK)
        return usher_errbuf(err, errlen, rc, "%s: %s", file->name, reason);
    return USHER_OK;
}

usher_err usher_job_schemas_load(char *err, size_t errlen)
{
    size_t count = 0;

    if (compiled != NULL)
        return USHER_OK;
    while (usher_job_schema_files[count].name != NULL)
        count++;
    compiled = usher_calloc(count + 1, sizeof(*compiled));
    for (size_t i = 0; i < count; i++) {
        usher_err rc = compile_file(&usher_job_schema_files[i], &compiled[i], err, errlen);

        if (rc != USHER_OK) {
            unload();
            return rc;
        }
    }
    return USHER_OK;
}

/* True when name is kind followed by USHER_JOB_SCHEMA_SUFFIX. */
static bool names_kind(const char *name, const char *kind)
{
    size_t n = strlen(kind);

    return strncmp(name, kind, n) == 0 && strcmp(name + n, USHER_JOB_SCHEMA_SUFFIX) == 0;
}

const usher_jsonschema *usher_job_schema_find(const char *kind)
{
    for (size_t i = 0; compiled != NULL && kind != NULL && usher_job_schema_files[i].name != NULL;
         i++) {
        if (names_kind(usher_job_schema_files[i].name, kind))
            return compiled[i];
    }
    return NULL;
}
usher_err usher_job_schema_check(const char *kind, json_t *payload, char *err, size_t errlen)
{
    const usher_jsonschema *schema;
    usher_err rc = usher_job_schemas_load(err, errlen);

    if (rc != USHER_OK)
        return rc;
    schema = usher_job_schema_find(kind);
    if (schema == NULL)
        return USHER_OK;
    return usher_jsonschema_validate(schema, payload, "payload", err, errlen);
}
