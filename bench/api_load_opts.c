/*
 * usher-bench-api-load's command line (see api_load.c for what it means):
 * numbers, the URL, the tokens and the files of ticket codes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_load.h"

static const char usage[] =
    "usage: usher-bench-api-load --url http://HOST:PORT --profile steady|peak|spike|endurance\n"
    "    [--seconds N] [--scale X] [--connections N] [--drain-s N] [--tag TEXT]\n"
    "    [--event ID --ticket-type ID] [--scanner TOKEN --codes FILE]\n"
    "    [--access-codes FILE [--session ID] [--content ID]]\n"
    "    [--sold-out-event ID --sold-out-ticket-type ID]\n";

typedef struct int_opt {
    const char *name;
    long long *value, min, max;
} int_opt;

/* Reads FILE's non-empty lines; -1 after a message. */
static int read_lines(const char *path, load_lines *out)
{
    FILE *f = fopen(path, "r");
    long size;
    long long n = 0;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "usher-bench-api-load: %s: %s\n", path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return -1;
    }
    out->text = malloc((size_t)size + 1);
    out->lines = malloc(((size_t)size / 2 + 1) * sizeof(*out->lines));
    if (out->text == NULL || out->lines == NULL ||
        fread(out->text, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "usher-bench-api-load: cannot read %s\n", path);
        fclose(f);
        return -1;
    }
    fclose(f);
    out->text[size] = '\0';
    for (char *line = strtok(out->text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        out->lines[n++] = line;
    out->n = n;
    if (n == 0) {
        fprintf(stderr, "usher-bench-api-load: %s has no codes\n", path);
        return -1;
    }
    return 0;
}

static int parse_url(const char *url, load_opts *o)
{
    const char *hostport = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    const char *colon = hostport != NULL ? strrchr(hostport, ':') : NULL;
    char *end;
    long port;

    if (colon == NULL || (size_t)(colon - hostport) >= sizeof(o->host_name) ||
        strlen(hostport) >= sizeof(o->host))
        return -1;
    port = strtol(colon + 1, &end, 10);
    if ((*end != '\0' && strcmp(end, "/") != 0) || port < 1 || port > 65535)
        return -1;
    memcpy(o->host_name, hostport, (size_t)(colon - hostport));
    o->host_name[colon - hostport] = '\0';
    snprintf(o->host, sizeof(o->host), "%.*s", (int)(end - hostport), hostport);
    o->port = (int)port;
    return 0;
}

static int parse_profile(const char *name, load_opts *o)
{
    static const long long default_seconds[4] = { 30, 30, 45, 60 };

    for (int i = 0; i < 4; i++) {
        if (strcmp(name, load_profile_name[i]) == 0) {
            o->profile = (load_profile)i;
            if (o->seconds == 0)
                o->seconds = default_seconds[i];
            return 0;
        }
    }
    return -1;
}

static int bearer(char *out, size_t len, const char *token)
{
    return snprintf(out, len, "Bearer %s", token) < (int)len ? 0 : -1;
}

/* One "--name value" pair; 0, 1 for a bad value, -1 for an unknown name. */
static int parse_one(const char *name, const char *value, load_opts *o, const char **texts)
{
    const int_opt ints[] = {
        { "--seconds", &o->seconds, 1, 86400 },
        { "--connections", &o->connections, 1, LOAD_CONNECTIONS_MAX },
        { "--drain-s", &o->drain_s, 0, 3600 },
        { "--event", &o->event, 1, INT64_MAX },
        { "--ticket-type", &o->ticket_type, 1, INT64_MAX },
        { "--session", &o->session, 1, INT64_MAX },
        { "--content", &o->content, 1, INT64_MAX },
        { "--sold-out-event", &o->sold_out_event, 1, INT64_MAX },
        { "--sold-out-ticket-type", &o->sold_out_ticket_type, 1, INT64_MAX },
    };
    static const char *const text_names[] = { "--url",     "--profile", "--tag",
                                              "--scanner", "--codes",   "--access-codes" };

    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        char *end;
        long long v;

        if (strcmp(name, ints[i].name) != 0)
            continue;
        errno = 0;
        v = strtoll(value, &end, 10);
        if (errno != 0 || *end != '\0' || end == value || v < ints[i].min || v > ints[i].max) {
            fprintf(stderr, "usher-bench-api-load: %s must be %lld..%lld\n", name, ints[i].min,
                    ints[i].max);
            return 1;
        }
        *ints[i].value = v;
        return 0;
    }
    if (strcmp(name, "--scale") == 0) {
        char *end;

        errno = 0;
        o->scale = strtod(value, &end);
        if (errno != 0 || *end != '\0' || end == value ||
            !(o->scale >= 0.01 && o->scale <= 10000)) {
            fprintf(stderr, "usher-bench-api-load: --scale must be 0.01..10000\n");
            return 1;
        }
        return 0;
    }
    for (size_t i = 0; i < sizeof(text_names) / sizeof(text_names[0]); i++) {
        if (strcmp(name, text_names[i]) == 0) {
            texts[i] = value;
            return 0;
        }
    }
    return -1;
}

int load_parse_options(int argc, char **argv, load_opts *o)
{
    const char *texts[6] = { NULL }; /* url, profile, tag, scanner, codes, access codes */
    static char tag[32];

    o->scale = 1;
    o->connections = 512;
    o->drain_s = 10;
    for (int i = 1; i < argc; i += 2) {
        int rc = i + 1 < argc ? parse_one(argv[i], argv[i + 1], o, texts) : -1;

        if (rc != 0) {
            fputs(usage, stderr);
            return rc == 1 ? 1 : 2;
        }
    }
    if (texts[0] == NULL || parse_url(texts[0], o) != 0 || texts[1] == NULL ||
        parse_profile(texts[1], o) != 0) {
        fputs(usage, stderr);
        return 2;
    }
    snprintf(tag, sizeof(tag), "%lld-%d", (long long)time(NULL), (int)getpid());
    o->tag = texts[2] != NULL ? texts[2] : tag;
    o->enabled[LOAD_REGISTRATION] = o->event != 0 && o->ticket_type != 0;
    o->enabled[LOAD_CHECKIN] = texts[3] != NULL && texts[4] != NULL;
    o->enabled[LOAD_ACCESS] = o->session != 0 && texts[5] != NULL;
    o->enabled[LOAD_CONTENT] = o->content != 0 && texts[5] != NULL;
    o->enabled[LOAD_EVENT] = o->sold_out_event != 0 && o->sold_out_ticket_type != 0;
    o->enabled[LOAD_SOLD_OUT] = o->enabled[LOAD_EVENT];
    if ((o->enabled[LOAD_CHECKIN] &&
         (bearer(o->scanner_auth, sizeof(o->scanner_auth), texts[3]) != 0 ||
          read_lines(texts[4], &o->codes) != 0)) ||
        ((o->enabled[LOAD_ACCESS] || o->enabled[LOAD_CONTENT]) &&
         read_lines(texts[5], &o->access_codes) != 0))
        return 1;
    for (int t = 0; t < LOAD_NTYPES; t++) {
        if (o->enabled[t])
            return 0;
    }
    fprintf(stderr, "usher-bench-api-load: no request type has its options\n");
    return 2;
}
