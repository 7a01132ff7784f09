/*
 * Payload validation with jansson. The size is checked before parsing so a
 * huge payload costs nothing; JSON_REJECT_DUPLICATES refuses objects whose
 * meaning would depend on which duplicate a reader keeps.
 */
#include "payload.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

usher_err usher_payload_check(const char *json, size_t max_bytes, char *errbuf, size_t errlen)
{
    size_t len = strlen(json);
    json_error_t jerr;
    json_t *root;
    usher_err err = USHER_OK;

    if (len > max_bytes) {
        snprintf(errbuf, errlen, "payload is %zu bytes; the limit is %zu", len, max_bytes);
        return USHER_ERR_TOO_LARGE;
    }
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(errbuf, errlen, "payload is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return USHER_ERR_PAYLOAD;
    }
    if (!json_is_object(root)) {
        snprintf(errbuf, errlen, "payload must be a JSON object");
        err = USHER_ERR_PAYLOAD;
    }
    json_decref(root);
    return err;
}
