/*
 * A job's payload is parsed only when its text holds "request_ids": the
 * lines are written for failures and with [worker] job_log, and most jobs
 * have their own id.
 */
#include "job_requests.h"

#include <jansson.h>
#include <string.h>

void usher_job_requests_each(const usher_job *job, void (*line)(const char *rid, void *arg),
                             void *arg)
{
    json_t *payload, *id;
    size_t i, named = 0;

    if (job->request_id[0] != '\0') {
        line(job->request_id, arg);
        return;
    }
    if (job->payload != NULL && strstr(job->payload, "\"request_ids\"") != NULL &&
        (payload = json_loads(job->payload, 0, NULL)) != NULL) {
        json_array_foreach(json_object_get(payload, "request_ids"), i, id)
        {
            if (json_string_length(id) > 0) {
                line(json_string_value(id), arg);
                named++;
            }
        }
        json_decref(payload);
    }
    if (named == 0)
        line("-", arg);
}
