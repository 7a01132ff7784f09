/*
 * Query-string parameters of a request, copied out (api_query_params
 * parses them all): any text, whole numbers, and words from a list.
 */
#include <sys/queue.h>

#include <event2/keyvalq_struct.h>
#include <stdio.h>
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

bool api_query_word(api_req *r, const char *name, const char *const *words, const char **out)
{
    char buf[API_QUERY_WORD_MAX], list[160] = "";
    int found = api_query_param(r, name, buf, sizeof(buf));

    *out = NULL;
    if (found == 0)
        return true;
    for (size_t i = 0; words[i] != NULL; i++) {
        if (found > 0 && strcmp(buf, words[i]) == 0) {
            *out = words[i];
            return true;
        }
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i > 0 ? ", " : "",
                 words[i]);
    }
    api_reply_invalid(r, name, "%s must be one of %s", name, list);
    return false;
}
