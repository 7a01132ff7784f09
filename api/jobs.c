#include "jobs.h"

#include "alloc.h"
#include "enqueue.h"

/* The template, r's request id added when r is not NULL; NULL out of memory. */
static json_t *webhook_json(const usher_config *cfg, const api_req *r)
{
    json_t *t = usher_enqueue_template(cfg, "notify.webhook", USHER_DEFAULT_QUEUE, NULL);

    if (t != NULL && r != NULL && r->request_id[0] != '\0' &&
        json_object_set_new(t, "request_id", json_string(r->request_id)) != 0) {
        json_decref(t);
        t = NULL;
    }
    return t;
}

/* The same as JSON text; NULL out of memory. */
static char *webhook_text(const usher_config *cfg, const api_req *r)
{
    json_t *t = webhook_json(cfg, r);
    char *text = t != NULL ? usher_need(json_dumps(t, JSON_COMPACT)) : NULL;

    json_decref(t);
    return text;
}

char *api_webhook_template(const usher_config *cfg)
{
    return webhook_text(cfg, NULL);
}

char *api_request_webhook_template(const api_req *r)
{
    return webhook_text(r->loop->srv->cfg, r);
}

json_t *api_request_webhook(const api_req *r)
{
    return webhook_json(r->loop->srv->cfg, r);
}

json_t *api_job_template(const usher_config *cfg, const char *kind, json_t *payload,
                         const char *id_field, const char *request_id)
{
    json_t *job =
        payload != NULL ? usher_enqueue_template(cfg, kind, USHER_DEFAULT_QUEUE, payload) : NULL;

    if (job != NULL &&
        ((id_field != NULL && json_object_set_new(job, "id_field", json_string(id_field)) != 0) ||
         (request_id != NULL && request_id[0] != '\0' &&
          json_object_set_new(job, "request_id", json_string(request_id)) != 0))) {
        json_decref(job);
        job = NULL;
    }
    return job;
}

int api_job_add(json_t *templates, const api_req *r, const char *kind, json_t *payload,
                const char *id_field)
{
    json_t *job = api_job_template(r->loop->srv->cfg, kind, payload, id_field, r->request_id);

    return job != NULL ? json_array_append_new(templates, job) : -1;
}

json_t *api_counted_job(const api_req *r, json_t *payload)
{
    json_t *jobs = usher_need(json_array());

    if (api_job_add(jobs, r, "analytics.rollup", payload, NULL) != 0 ||
        api_job_stamp(jobs, "at") != 0) {
        json_decref(jobs);
        return NULL;
    }
    json_object_del(json_array_get(jobs, 0), "request_id"); /* -1: it had none */
    return jobs;
}

char *api_one_job(const api_req *r, const char *kind, json_t *payload, const char *id_field)
{
    json_t *jobs = usher_need(json_array());
    char *text = NULL;

    if (api_job_add(jobs, r, kind, payload, id_field) == 0)
        text = usher_need(json_dumps(jobs, JSON_COMPACT));
    json_decref(jobs);
    return text;
}

char *api_index_job(const api_req *r, const char *type)
{
    return api_one_job(r, "index.document", json_pack("{s:s}", "type", type), "id");
}

int api_job_stamp(json_t *templates, const char *at_field)
{
    size_t n = json_array_size(templates);

    return n == 0 ? -1
                  : json_object_set_new(json_array_get(templates, n - 1), "at_field",
                                        json_string(at_field));
}

int api_job_for_event(json_t *templates, const char *event_field)
{
    size_t n = json_array_size(templates);

    return n == 0 ? -1
                  : json_object_set_new(json_array_get(templates, n - 1), "event_field",
                                        json_string(event_field));
}
