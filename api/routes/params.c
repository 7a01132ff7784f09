/* Query-string parameters of a request (decoded by evhttp). */
#include <sys/queue.h>

#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>

#include "routes.h"

int api_query_param(const api_req *r, const char *name, char *out, size_t len)
{
    const struct evhttp_uri *uri = r->http != NULL ? evhttp_request_get_evhttp_uri(r->http) : NULL;
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    struct evkeyvalq params;
    const char *value;
    int rc = 0;

    if (query == NULL)
        return 0;
    TAILQ_INIT(&params);
    if (evhttp_parse_query_str(query, &params) != 0) {
        evhttp_clear_headers(&params);
        return -1;
    }
    value = evhttp_find_header(&params, name);
    if (value != NULL) {
        size_t n = strlen(value);

        rc = n < len ? 1 : -1;
        if (rc == 1)
            memcpy(out, value, n + 1);
    }
    evhttp_clear_headers(&params);
    return rc;
}
