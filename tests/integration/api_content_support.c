#include "api_content_support.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "docstore.h"
#include "testdb.h"
#include "testproc.h"
#include "testredis.h"

void content_start(content_world *w, usher_store *st, const usher_config *cfg,
                   const char *upload_max, int threads)
{
    long long org_a = testdb_organizer(st, "A");
    long long org_b = testdb_organizer(st, "B");
    testdb_event a = testdb_event_new(st, org_a, "Conf", 2, 100);
    testdb_event b = testdb_event_new(st, org_b, "Conf", 2, 100);
    int64_t id;

    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
    w->redis_pid = testredis_start();
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    if (upload_max != NULL)
        setenv("USHER_API_UPLOAD_MAX_BYTES", upload_max, 1);
    else
        unsetenv("USHER_API_UPLOAD_MAX_BYTES");
    w->event_a = a.id;
    w->ticket_type_a = a.ticket_type;
    w->event_b = b.id;
    w->ticket_type_b = b.ticket_type;
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ADMIN, 0, 0, "admin", w->admin, &id), USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org_a, 0, "a", w->org_a, &id),
                 USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org_b, 0, "b", w->org_b, &id),
                 USHER_OK);
    cr_assert_eq(usher_token_create(st, USHER_ROLE_SCANNER, org_a, 0, "s", w->scanner, &id),
                 USHER_OK);
    cr_assert_eq(usher_ticket_key_from_hex(cfg->ticket_secret, w->key), USHER_OK,
                 "USHER_TICKET_SECRET is not set (source .state/env)");
    testapi_start(&w->api, USHER_API_PATH, cfg->database_url, threads);
}

void content_stop(content_world *w)
{
    testapi_stop(&w->api);
    if (w->redis_pid > 0)
        testproc_kill(w->redis_pid);
}

long content_call(content_world *w, const char *method, const char *path, const char *token,
                  const char *body, const char *header, testhttp_resp *out)
{
    testhttp_resp dropped;
    long status;

    status = testhttp(&w->api, &(testhttp_req){ method, path, token, body, header, NULL },
                      out != NULL ? out : &dropped);
    if (out == NULL)
        testhttp_resp_free(&dropped);
    return status;
}

long content_get(content_world *w, long long doc, const char *token, const char *code_query,
                 const char *code_header)
{
    char path[256], header[160];

    snprintf(path, sizeof(path), "/v1/content/%lld%s%s", doc, code_query ? "?ticket_code=" : "",
             code_query ? code_query : "");
    snprintf(header, sizeof(header), "X-Ticket-Code: %s", code_header ? code_header : "");
    return content_call(w, "GET", path, token, NULL, code_header ? header : NULL, NULL);
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    char **body = arg;
    size_t have = *body != NULL ? strlen(*body) : 0;
    char *more = realloc(*body, have + size * n + 1);

    if (more == NULL)
        return 0;
    memcpy(more + have, p, size * n);
    more[have + size * n] = '\0';
    *body = more;
    return size * n;
}

long long content_upload(content_world *w, long long event, long long session, const char *filename,
                         const char *type, const void *data, size_t len, const char *token,
                         long expect)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    char url[512], line[256], *name, *body = NULL;
    long status = 0;
    long long id = 0;
    json_t *json;

    cr_assert_not_null(curl);
    name = curl_easy_escape(curl, filename, 0);
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/v1/events/%lld/content?session_id=%lld&filename=%s", w->api.port,
             event, session, name);
    curl_free(name);
    snprintf(line, sizeof(line), "Content-Type: %s", type);
    headers = curl_slist_append(headers, line);
    if (token != NULL) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, line);
    }
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    cr_assert_eq(status, expect, "upload %s as %s: %ld %s", filename, type, status,
                 body != NULL ? body : "");
    json = body != NULL ? json_loads(body, 0, NULL) : NULL;
    if (status == 201) {
        id = json_integer_value(json_object_get(json, "id"));
        cr_assert_gt(id, 0, "%s", body);
        cr_assert_eq(json_integer_value(json_object_get(json, "size")), (json_int_t)len);
        cr_assert_eq(json_integer_value(json_object_get(json, "session_id")), session);
        cr_assert_str_eq(json_string_value(json_object_get(json, "filename")), filename);
    }
    json_decref(json);
    free(body);
    return id;
}

const char *content_long_session(size_t abstract_chars, size_t speakers)
{
    static char body[16384];
    size_t n = (size_t)snprintf(body, sizeof(body),
                                "{\"title\":\"Long\",\"starts_at\":\"2026-12-01T09:00:00Z\","
                                "\"ends_at\":\"2026-12-01T10:00:00Z\",\"abstract\":\"");

    for (size_t i = 0; i < abstract_chars && n + 64 < sizeof(body); i++)
        body[n++] = i % 80 == 79 ? ' ' : 'a';
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\",\"speakers\":[");
    for (size_t i = 0; i < speakers; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"S%zu\"", i ? "," : "", i);
    snprintf(body + n, sizeof(body) - n, "]}");
    return body;
}

long long content_session(content_world *w, usher_store *st, long long event)
{
    char sql[256];

    (void)w;
    snprintf(sql, sizeof(sql),
             "INSERT INTO sessions (event_id, title, starts_at, ends_at)"
             " VALUES (%lld, 'Talk', now(), now() + interval '1 hour') RETURNING id",
             event);
    return testdb_scalar(st, sql);
}

long long content_registration(content_world *w, usher_store *st, long long event,
                               const char *status)
{
    char sql[384];

    snprintf(sql, sizeof(sql),
             "INSERT INTO registrations (event_id, ticket_type_id, name, email, status)"
             " VALUES (%lld, %lld, 'Attendee', 'a@example.org', '%s') RETURNING id",
             event, event == w->event_a ? w->ticket_type_a : w->ticket_type_b, status);
    return testdb_scalar(st, sql);
}

long long content_document(content_world *w, usher_store *st, const char *kind, long long event,
                           long long registration, const void *data, size_t len)
{
    usher_docstore_ref ref;
    char err[256], sql[512], reg[24] = "NULL";

    cr_assert_eq(usher_docstore_put_bytes(w->cfg, st, data, len, &ref, err, sizeof(err)), USHER_OK,
                 "%s", err);
    if (registration != 0)
        snprintf(reg, sizeof(reg), "%lld", registration);
    snprintf(sql, sizeof(sql),
             "INSERT INTO documents (kind, event_id, registration_id, filename, content_type,"
             " sha256, size) VALUES ('%s', %lld, %s, '%s.pdf', 'application/pdf', '%s', %zu)"
             " RETURNING id",
             kind, event, reg, kind, ref.sha256, ref.size);
    return testdb_scalar(st, sql);
}

void content_code(content_world *w, long long event, long long registration,
                  char code[USHER_TICKET_CODE_MAX])
{
    cr_assert_eq(usher_ticket_sign(w->key, event, registration, code, USHER_TICKET_CODE_MAX),
                 USHER_OK);
}

void content_forge(const char *code, char forged[USHER_TICKET_CODE_MAX])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    size_t mid = strlen(code) / 2;
    const char *at;

    snprintf(forged, USHER_TICKET_CODE_MAX, "%s", code);
    at = strchr(alphabet, forged[mid]);
    cr_assert_not_null(at);
    forged[mid] = alphabet[(at - alphabet) ^ 31]; /* every bit of that character flipped */
}

unsigned char *content_bytes(size_t n)
{
    unsigned char *data = malloc(n > 0 ? n : 1);

    cr_assert_not_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)((i * 131 + i / 256) & 0xff);
    return data;
}

long long content_metric(content_world *w, const char *prefix)
{
    testhttp_resp resp;
    const char *at;
    long long v = -1;

    testapi_scrape(&w->api, &resp);
    at = strstr(resp.body, prefix);
    if (at != NULL)
        v = atoll(at + strlen(prefix));
    testhttp_resp_free(&resp);
    return v;
}

const char *content_header(const testhttp_resp *resp, const char *name)
{
    static char value[512];
    size_t n = strlen(name);

    value[0] = '\0';
    for (const char *line = resp->headers; line != NULL && *line != '\0';) {
        const char *end = strstr(line, "\r\n");

        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;

            while (*v == ' ')
                v++;
            snprintf(value, sizeof(value), "%.*s", (int)((end != NULL ? end : v + strlen(v)) - v),
                     v);
            return value;
        }
        line = end != NULL ? end + 2 : NULL;
    }
    return value;
}
