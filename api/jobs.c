#include "jobs.h"

static json_t *template_of(const usher_config *cfg, const char *kind)
{
    const usher_kind_conf *k = usher_config_kind(cfg, kind);

    return json_pack("{s:s,s:s,s:i,s:i,s:i}", "queue", k->queue[0] != '\0' ? k->queue : "default",
                     "kind", kind, "priority", k->priority, "max_attempts", k->max_attempts,
                     "timeout_ms", k->timeout_ms);
}

char *api_webhook_template(const usher_config *cfg)
{
    json_t *t = template_of(cfg, "notify.webhook");
    char *text = t != NULL ? json_dumps(t, JSON_COMPACT) : NULL;

    json_decref(t);
    return text;
}

int api_job_add(json_t *templates, const usher_config *cfg, const char *kind, json_t *payload,
                const char *id_field)
{
    const usher_kind_conf *k = usher_config_kind(cfg, kind);
    json_t *job =
        json_pack("{s:s,s:s,s:i,s:i,s:i,s:o}", "queue", k->queue[0] != '\0' ? k->queue : "default",
                  "kind", kind, "priority", k->priority, "max_attempts", k->max_attempts,
                  "timeout_ms", k->timeout_ms, "payload", payload);

    if (job == NULL)
        return -1;
    if (id_field != NULL && json_object_set_new(job, "id_field", json_string(id_field)) != 0) {
        json_decref(job);
        return -1;
    }
    return json_array_append_new(templates, job);
}

char *api_index_job(const usher_config *cfg, const char *type)
{
    json_t *jobs = json_array();
    char *text = NULL;

    if (jobs != NULL &&
        api_job_add(jobs, cfg, "index.document", json_pack("{s:s}", "type", type), "id") == 0)
        text = json_dumps(jobs, JSON_COMPACT);
    json_decref(jobs);
    return text;
}

int api_job_stamp(json_t *templates, const char *at_field)
{
    size_t n = json_array_size(templates);

    return n == 0 ? -1
                  : json_object_set_new(json_array_get(templates, n - 1), "at_field",
                                        json_string(at_field));
}
