/*
 * Reading a request: its headers, its query string (strictly: a broken
 * escape is refused, not passed on), the scope its token allows.
 */
#include "request.h"

#include <ctype.h>
#include <sys/queue.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>
#include <time.h>

uint64_t api_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

const char *api_scope_org(const api_req *r, char out[USHER_INT_TEXT_MAX])
{
    return r->auth.role == USHER_ROLE_ADMIN ? NULL : api_id_text(r->auth.organizer_id, out);
}

bool api_may_manage(const api_req *r, int64_t organizer_id)
{
    if (r->auth.role == USHER_ROLE_ADMIN)
        return true;
    return r->auth.role == USHER_ROLE_ORGANIZER && r->auth.organizer_id == organizer_id;
}

const char *api_id_text(int64_t id, char out[USHER_INT_TEXT_MAX])
{
    return id == 0 ? NULL : usher_int_text(id, out);
}

api_loop *const *api_server_loops(api_server *srv, int *n)
{
    *n = atomic_load(&srv->nloops);
    return *n > 0 ? srv->loops : NULL;
}

int api_server_loops_without_db(api_server *srv)
{
    int n = 0, nloops = 0;
    api_loop *const *loops = api_server_loops(srv, &nloops);

    for (int i = 0; i < nloops; i++)
        n += atomic_load(&loops[i]->pg_up) == 0;
    return n;
}
