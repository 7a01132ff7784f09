/*
 * Starting and stopping tests/support/smtp_test_server.py (smtpserver.h).
 * The server writes its port to a file once it accepts connections; the
 * wait for that file is the only wait, with a deadline.
 */
#include "smtpserver.h"

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testproc.h"

#define PYTHON "/usr/bin/python3" /* Debian's, which has python3-aiosmtpd */

static bool make_cert(const smtpserver *s, char *err, size_t errlen)
{
    char cmd[512];

    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
             " -subj /CN=localhost -addext subjectAltName=DNS:localhost"
             " -keyout %s/key.pem -out %s >%s/openssl.log 2>&1",
             s->dir, s->cert, s->dir);
    if (system(cmd) != 0) {
        snprintf(err, errlen, "openssl req failed: see %s/openssl.log", s->dir);
        return false;
    }
    return true;
}

static bool port_written(void *arg)
{
    smtpserver *s = arg;
    char path[128];
    FILE *f;

    snprintf(path, sizeof path, "%s/port", s->dir);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    if (fscanf(f, "%d", &s->port) != 1)
        s->port = 0;
    fclose(f);
    return s->port > 0;
}

/* Runs the server in s->dir (set up), on port (0: a free one); waits for its port. */
static bool launch(smtpserver *s, bool tls, const char *only_auth, int port, char *err,
                   size_t errlen)
{
    char portfile[128], key[128], log[128], port_text[16];
    const char *argv[22];
    int n = 0;

    snprintf(portfile, sizeof portfile, "%s/port", s->dir);
    snprintf(key, sizeof key, "%s/key.pem", s->dir);
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    snprintf(port_text, sizeof port_text, "%d", port);
    unlink(portfile);
    s->port = 0;
    argv[n++] = PYTHON;
    argv[n++] = SMTP_TEST_SERVER;
    argv[n++] = "--out";
    argv[n++] = s->out;
    argv[n++] = "--port-file";
    argv[n++] = portfile;
    argv[n++] = "--port";
    argv[n++] = port_text;
    if (tls) {
        argv[n++] = "--cert";
        argv[n++] = s->cert;
        argv[n++] = "--key";
        argv[n++] = key;
        argv[n++] = "--user";
        argv[n++] = SMTPSERVER_USER;
        argv[n++] = "--password";
        argv[n++] = SMTPSERVER_PASSWORD;
    }
    if (tls && only_auth != NULL) {
        argv[n++] = "--only-auth";
        argv[n++] = only_auth;
    }
    argv[n] = NULL;
    s->pid = testproc_start(argv, log);
    if (s->pid <= 0 || !testproc_wait_for(port_written, s, 30000)) {
        snprintf(err, errlen, "the SMTP test server did not start: see %s", log);
        return false;
    }
    snprintf(s->url, sizeof s->url, "smtp://localhost:%d", s->port);
    return true;
}

bool smtpserver_start(smtpserver *s, bool tls, const char *only_auth, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/usher-smtpserver-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        snprintf(err, errlen, "mkdtemp failed");
        return false;
    }
    snprintf(s->out, sizeof s->out, "%s/out", s->dir);
    snprintf(s->cert, sizeof s->cert, "%s/cert.pem", s->dir);
    if (mkdir(s->out, 0700) != 0 || (tls && !make_cert(s, err, errlen))) {
        if (err[0] == '\0')
            snprintf(err, errlen, "cannot create %s", s->out);
        return false;
    }
    return launch(s, tls, only_auth, 0, err, errlen);
}

/* Stops the server process; the port is closed but kept, and so are the messages. */
static void halt(smtpserver *s)
{
    int status;

    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        if (!testproc_wait(s->pid, 10000, &status))
            testproc_kill(s->pid);
        s->pid = 0;
    }
}

void smtpserver_pause(smtpserver *s)
{
    int port = s->port;

    halt(s);
    s->port = port;
}

bool smtpserver_resume(smtpserver *s, char *err, size_t errlen)
{
    return launch(s, false, NULL, s->port, err, errlen);
}

void smtpserver_stop(smtpserver *s)
{
    char cmd[128];

    halt(s);
    if (strncmp(s->dir, "/tmp/usher-smtpserver-", 22) == 0 && getenv("SMTP_TEST_KEEP") == NULL) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s->dir);
    }
}

int smtpserver_count(const smtpserver *s)
{
    struct dirent *e;
    DIR *d = opendir(s->out);
    int n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);

        n += len > 4 && strcmp(e->d_name + len - 4, ".eml") == 0;
    }
    closedir(d);
    return n;
}

int smtpserver_sessions(const smtpserver *s)
{
    int total = smtpserver_count(s), distinct = 0;
    char(*peers)[64] = calloc((size_t)(total > 0 ? total : 1), sizeof(*peers));

    if (peers == NULL)
        return -1;
    for (int n = 1; n <= total; n++) {
        char path[160], peer[64] = "";
        FILE *f;
        bool seen = false;

        snprintf(path, sizeof path, "%s/%d.session", s->out, n);
        if ((f = fopen(path, "r")) == NULL || fgets(peer, sizeof peer, f) == NULL) {
            if (f != NULL)
                fclose(f);
            free(peers);
            return -1;
        }
        fclose(f);
        for (int i = 0; i < distinct && !seen; i++)
            seen = strcmp(peers[i], peer) == 0;
        if (!seen)
            memcpy(peers[distinct++], peer, sizeof peer);
    }
    free(peers);
    return distinct;
}

char *smtpserver_message(const smtpserver *s, int n)
{
    char path[160];
    char *data = NULL;
    FILE *f;
    long len;

    snprintf(path, sizeof path, "%s/%d.eml", s->out, n);
    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)len + 1)) != NULL)
        data[fread(data, 1, (size_t)len, f)] = '\0';
    fclose(f);
    return data;
}
