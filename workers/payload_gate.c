#include "payload_gate.h"

#include "job_schemas.h"

bool usher_job_payload_admitted(const char *kind, json_t *payload, usher_handler_result *r)
{
    char why[1024];
    usher_err err = usher_job_schema_check(kind, payload, why, sizeof(why));

    if (err == USHER_ERR_PAYLOAD)
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "invalid payload: %s", why);
    else if (err != USHER_OK)
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "payload schemas: %s", why);
    return err == USHER_OK;
}
