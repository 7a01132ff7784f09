/*
 * A real SMTP server for tests: tests/support/smtp_test_server.py (Debian's
 * aiosmtpd under /usr/bin/python3) in a process of its own, on a free port
 * of 127.0.0.1, storing what it accepts as DIR/out/N.eml. With TLS it gets
 * a fresh self-signed certificate for "localhost" (openssl req), requires
 * STARTTLS and accepts AUTH PLAIN/LOGIN for SMTPSERVER_USER and
 * SMTPSERVER_PASSWORD only.
 */
#ifndef USHER_SMTPSERVER_H
#define USHER_SMTPSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SMTPSERVER_USER     "usher"
#define SMTPSERVER_PASSWORD "s3cret-pass"

typedef struct smtpserver {
    pid_t pid;
    int port;
    char dir[64];  /* a mkdtemp directory holding everything below */
    char out[96];  /* the accepted messages */
    char cert[96]; /* the server's certificate (PEM), when tls */
    char url[64];  /* smtp://localhost:PORT */
} smtpserver;

/*
 * Starts the server and waits (up to 30 s) until it listens; false with err
 * on failure. only_auth ("PLAIN" or "LOGIN", with tls) offers that AUTH
 * mechanism alone; NULL offers both. SMTP_TEST_KEEP in the environment
 * keeps its directory (and server.log) after smtpserver_stop.
 */
bool smtpserver_start(smtpserver *s, bool tls, const char *only_auth, char *err, size_t errlen);

/* Stops it (SIGTERM, then SIGKILL) and removes its directory. */
void smtpserver_stop(smtpserver *s);

/*
 * An outage of a plain (no TLS) server: pause stops it, so its port
 * refuses connections; resume starts it again on the same port, numbering
 * its messages on after those it already stored.
 */
void smtpserver_pause(smtpserver *s);
bool smtpserver_resume(smtpserver *s, char *err, size_t errlen);

/* How many messages it has stored. */
int smtpserver_count(const smtpserver *s);

/* How many SMTP sessions carried the stored messages (distinct client ports). */
int smtpserver_sessions(const smtpserver *s);

/* The stored message n (from 1), malloc'd, NUL-terminated; NULL if there is none. */
char *smtpserver_message(const smtpserver *s, int n);

#endif
