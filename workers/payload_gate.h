/*
 * The child's gate before a handler: a job's payload against its kind's
 * schema (engine/job_schemas.h).
 */
#ifndef USHER_PAYLOAD_GATE_H
#define USHER_PAYLOAD_GATE_H

#include <jansson.h>
#include <stdbool.h>

#include "error.h"
#include "handler.h"

/*
 * True when the payload may run. Otherwise r is set: PERMANENT "invalid
 * payload: payload.x: ..." (a payload never gets better: straight to the
 * dead-letter queue), or RETRY when the schemas could not be loaded (out of
 * memory may heal).
 */
USHER_MUSTCHECK bool usher_job_payload_admitted(const char *kind, json_t *payload,
                                                usher_handler_result *r);

#endif
