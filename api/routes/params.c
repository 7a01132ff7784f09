/* One query-string parameter of a request, copied out (api_query_params parses them all). */
#include <sys/queue.h>

#include <event2/keyvalq_struct.h>
#include <string.h>

#include "../validate.h"
#include "routes.h"

int api_query_param(const api_req *r, const char *name, char *out, size_t len)
{
    struct evkeyvalq params;
    const char *value;
    int rc = 0;

    TAILQ_INIT(&params);
    if (api_query_params(r, &params) != 0) {
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

bool api_query_whole(api_req *r, const char *name, int64_t min, int64_t max, int64_t *out)
{
    char text[32];
    int found = api_query_param(r, name, text, sizeof(text));

    if (found == 0)
        return true;
    if (found < 0 || !api_parse_whole(text, min, max, out)) {
        api_reply_invalid(r, name, "%s must be a whole number from %lld to %lld", name,
                          (long long)min, (long long)max);
        return false;
    }
    return true;
}
