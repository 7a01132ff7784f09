/*
 * The world of test_api_content.c: a Redis of its own, a usher-api on it,
 * two organizers with an event each, tokens for every role, and helpers
 * for sessions, registrations, ticket codes, binary uploads and headers.
 */
#ifndef USHER_TEST_API_CONTENT_SUPPORT_H
#define USHER_TEST_API_CONTENT_SUPPORT_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "store.h"
#include "testhttp.h"
#include "ticket.h"
#include "token.h"

typedef struct content_world {
    testapi api;
    pid_t redis_pid;
    const usher_config *cfg;
    long long event_a, event_b; /* of organizers A and B */
    long long ticket_type_a, ticket_type_b;
    char admin[USHER_TOKEN_MAX], org_a[USHER_TOKEN_MAX], org_b[USHER_TOKEN_MAX];
    char scanner[USHER_TOKEN_MAX]; /* organizer A's */
    unsigned char key[USHER_TICKET_KEY_BYTES];
} content_world;

/* upload_max: USHER_API_UPLOAD_MAX_BYTES, or NULL for the default; threads: loop threads. */
void content_start(content_world *w, usher_store *st, const usher_config *cfg,
                   const char *upload_max, int threads);
void content_stop(content_world *w);

/* One request; out may be NULL (the answer is then dropped). Returns the status. */
long content_call(content_world *w, const char *method, const char *path, const char *token,
                  const char *body, const char *header, testhttp_resp *out);

/* GET /v1/content/{doc} with a token, a ?ticket_code= and/or an X-Ticket-Code. */
long content_get(content_world *w, long long doc, const char *token, const char *code_query,
                 const char *code_header);

/*
 * Uploads len bytes as a session's content and checks the status; returns
 * the new document's id (0 unless 201).
 */
long long content_upload(content_world *w, long long event, long long session, const char *filename,
                         const char *type, const void *data, size_t len, const char *token,
                         long expect);

/* A session body with an abstract of that many characters and that many speakers (static). */
const char *content_long_session(size_t abstract_chars, size_t speakers);

long long content_session(content_world *w, usher_store *st, long long event);
long long content_registration(content_world *w, usher_store *st, long long event,
                               const char *status);
/* A document row of kind for the event (and registration, if not 0), its file stored. */
long long content_document(content_world *w, usher_store *st, const char *kind, long long event,
                           long long registration, const void *data, size_t len);

void content_code(content_world *w, long long event, long long registration,
                  char code[USHER_TICKET_CODE_MAX]);
/* code with one data character changed: its tag no longer matches. */
void content_forge(const char *code, char forged[USHER_TICKET_CODE_MAX]);

/* n bytes of every value, zeros included (malloc'd). */
unsigned char *content_bytes(size_t n);

/* The value of the first line of /metrics that starts with prefix, or -1. */
long long content_metric(content_world *w, const char *prefix);

/* A response header's value (static buffer), or "" when absent. */
const char *content_header(const testhttp_resp *resp, const char *name);

#endif
