/*
 * Ending a request: the answer, its headers, its metrics, and freeing it.
 * A client that went away while its statement ran is noticed through the
 * connection's close callback, which forgets the evhttp request (libevent
 * frees it); the route still finishes and its answer is dropped.
 */
#include <ctype.h>
#include <sys/queue.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "pgpool.h"
#include "router.h"

uint64_t api_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void finish(api_req *r, int status, struct evbuffer *out)
{
    size_t route = r->route != NULL ? (size_t)(r->route - api_routes) : api_nroutes;
    double seconds = (double)(api_now_ns() - r->start_ns) / 1e9;

    if (r->http != NULL) {
        evhttp_connection_set_closecb(r->conn, NULL, NULL);
        evhttp_send_reply(r->http, status, NULL, out);
    }
    api_metrics_request(r->loop->srv->metrics, route, status, seconds);
    r->loop->inflight--;
    json_decref(r->body);
    free(r);
}

void api_add_header(api_req *r, const char *name, const char *value)
{
    if (r->http != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(r->http), name, value);
}

/*
 * True when every '%' of a query string starts an escape of two hex
 * digits. libevent decodes a broken escape ("%zz") as itself, so a query
 * like q=%zz% would otherwise pass as if it had been written that way.
 */
static bool escapes_valid(const char *query)
{
    for (const char *p = strchr(query, '%'); p != NULL; p = strchr(p + 1, '%')) {
        if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
            return false;
    }
    return true;
}

int api_query_parse(const char *query, struct evkeyvalq *q)
{
    if (query != NULL && !escapes_valid(query)) {
        TAILQ_INIT(q); /* empty, as evhttp leaves it on its own failures */
        return -1;
    }
    return evhttp_parse_query_str(query != NULL ? query : "", q);
}

int api_query_params(const api_req *r, struct evkeyvalq *q)
{
    const struct evhttp_uri *uri = r->http != NULL ? evhttp_request_get_evhttp_uri(r->http) : NULL;

    return api_query_parse(uri != NULL ? evhttp_uri_get_query(uri) : NULL, q);
}

const char *api_header(const api_req *r, const char *name)
{
    if (r->http == NULL)
        return NULL;
    return evhttp_find_header(evhttp_request_get_input_headers(r->http), name);
}

void api_reply_raw(api_req *r, int status, const char *content_type, const char *data, size_t len)
{
    struct evbuffer *out = evbuffer_new();

    api_add_header(r, "Content-Type", content_type);
    if (out == NULL || evbuffer_add(out, data, len) != 0) {
        evbuffer_free(out);
        out = NULL;
        status = 500;
    }
    finish(r, status, out);
    if (out != NULL)
        evbuffer_free(out);
}

void api_reply_json(api_req *r, int status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

        api_reply_raw(r, 500, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    api_reply_raw(r, status, "application/json", text, strlen(text));
    free(text);
}

void api_reply_error(api_req *r, int status, const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    api_reply_json(r, status,
                   json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
}

bool api_query(api_req *r, const char *sql, int nparams, const char *const *params,
               usher_pg_result_fn done)
{
    usher_err err = api_pgpool_query(r->loop->pg, sql, nparams, params, done, r);

    if (err == USHER_OK)
        return true;
    api_reply_error(r, 503, "unavailable", "the database is not reachable; try again shortly");
    return false;
}

bool api_result_ok(api_req *r, PGresult *res, const char *errmsg)
{
    ExecStatusType status = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (res != NULL && (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK))
        return true;
    if (res == NULL) {
        api_reply_error(r, 503, "unavailable", "the database connection was lost; try again");
        return false;
    }
    /* Data the checks let through but the schema refuses: the client's fault. */
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (state != NULL && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)) {
        api_reply_error(r, 422, "invalid", "the data was refused: %s",
                        PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        return false;
    }
    /* The database going away or backing off (a restart, a deadlock victim, out
     * of connections): nothing was written, and the client may simply retry. */
    if (state != NULL && (strncmp(state, "08", 2) == 0 || strncmp(state, "40", 2) == 0 ||
                          strncmp(state, "53", 2) == 0 || strncmp(state, "57", 2) == 0)) {
        usher_log(USHER_LOG_WARNING, "route=%s database said %s: %s",
                  r->route ? r->route->pattern : "?", state, errmsg != NULL ? errmsg : "?");
        api_add_header(r, "Retry-After", "1");
        api_reply_error(r, 503, "unavailable", "the database asked us to retry; try again");
        return false;
    }
    usher_log(USHER_LOG_ERR, "route=%s statement failed: %s", r->route ? r->route->pattern : "?",
              errmsg != NULL ? errmsg : "?");
    api_reply_error(r, 500, "internal", "the request failed; it has been logged");
    return false;
}

void api_reply_row(api_req *r, PGresult *res, const char *errmsg, int status, const char *what)
{
    if (!api_result_ok(r, res, errmsg))
        return;
    if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0)) {
        api_reply_error(r, 404, "not_found", "no such %s", what);
        return;
    }
    api_reply_raw(r, status, "application/json", PQgetvalue(res, 0, 0),
                  (size_t)PQgetlength(res, 0, 0));
}

const char *api_scope_org(const api_req *r, char out[24])
{
    return r->auth.role == USHER_ROLE_ADMIN ? NULL : api_id_text(r->auth.organizer_id, out);
}

bool api_may_manage(const api_req *r, int64_t organizer_id)
{
    if (r->auth.role == USHER_ROLE_ADMIN)
        return true;
    return r->auth.role == USHER_ROLE_ORGANIZER && r->auth.organizer_id == organizer_id;
}

const char *api_id_text(int64_t id, char out[24])
{
    if (id == 0)
        return NULL;
    snprintf(out, 24, "%lld", (long long)id);
    return out;
}
