/*
 * Waiting is poll() on the connection's socket, then PQconsumeInput and
 * PQnotifies to drain whatever arrived. Notifications that came in while
 * the claimer was busy are already buffered, so a wait returns at once
 * for them instead of losing the wake-up.
 */
#include "listener.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pgconnect.h"
#include "wake.h"

struct usher_listener {
    PGconn *conn;
};

static USHER_MUSTCHECK usher_err listen_all(PGconn *conn, const char *const *queues, size_t n,
                                            char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        char channel[USHER_NAME_MAX + 8], sql[USHER_NAME_MAX * 2 + 32];
        char *ident;
        PGresult *res;
        bool ok;

        usher_wake_channel(queues[i], channel, sizeof(channel));
        ident = PQescapeIdentifier(conn, channel, strlen(channel));
        if (ident == NULL) {
            snprintf(errbuf, errlen, "cannot quote channel: %s", PQerrorMessage(conn));
            return USHER_ERR_DB;
        }
        snprintf(sql, sizeof(sql), "LISTEN %s", ident);
        PQfreemem(ident);
        res = PQexec(conn, sql);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
            snprintf(errbuf, errlen, "LISTEN failed: %s", PQerrorMessage(conn));
            return USHER_ERR_DB;
        }
    }
    return USHER_OK;
}

usher_err usher_listener_open(const usher_config *cfg, const char *const *queues, size_t n,
                              usher_listener **out, char *errbuf, size_t errlen)
{
    usher_listener *l = usher_calloc(1, sizeof(*l));
    usher_err err;

    *out = NULL;
    l->conn = usher_pg_connectdb(cfg->database_url); /* connect_timeout (pgconnect.h) */
    if (l->conn == NULL || PQstatus(l->conn) != CONNECTION_OK) {
        snprintf(errbuf, errlen, "cannot connect: %s",
                 l->conn != NULL ? PQerrorMessage(l->conn) : "out of memory");
        usher_listener_free(l);
        return USHER_ERR_DB;
    }
    err = listen_all(l->conn, queues, n, errbuf, errlen);
    if (err != USHER_OK) {
        usher_listener_free(l);
        return err;
    }
    *out = l;
    return USHER_OK;
}

void usher_listener_free(usher_listener *l)
{
    if (l == NULL)
        return;
    PQfinish(l->conn);
    free(l);
}

/* Consumes every pending notification; true if there was at least one. */
static bool drain(PGconn *conn)
{
    PGnotify *note;
    bool any = false;

    while ((note = PQnotifies(conn)) != NULL) {
        any = true;
        PQfreemem(note);
    }
    return any;
}

usher_err usher_listener_wait(usher_listener *l, int timeout_ms)
{
    struct pollfd pfd = { .fd = PQsocket(l->conn), .events = POLLIN };
    int ready;

    if (PQconsumeInput(l->conn) == 0)
        return USHER_ERR_DB;
    if (drain(l->conn))
        return USHER_OK;
    ready = poll(&pfd, 1, timeout_ms);
    if (ready < 0)
        return USHER_ERR_IO;
    if (ready == 0)
        return USHER_ERR_TIMEOUT;
    if (PQconsumeInput(l->conn) == 0)
        return USHER_ERR_DB;
    return drain(l->conn) ? USHER_OK : USHER_ERR_TIMEOUT;
}
