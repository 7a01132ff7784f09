/*
 * Shared start-up of the binaries. The --config option is taken out of
 * argv so each program's own parser only sees its own arguments.
 */
#include "cli.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "install_paths.h"
#include "log.h"

/* Index of the --config option in argv and its value, or -1. */
static int find_config(int argc, char **argv, const char **path, int *width)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return -1;
        if (strncmp(argv[i], "--config=", 9) == 0) {
            *path = argv[i] + 9;
            *width = 1;
            return i;
        }
        if (strcmp(argv[i], "--config") == 0) {
            *path = i + 1 < argc ? argv[i + 1] : NULL;
            *width = i + 1 < argc ? 2 : 1;
            return i;
        }
    }
    return -1;
}

int usher_cli_load_config(const char *program, int *argc, char **argv, usher_config *cfg)
{
    const char *path = usher_config_default_path();
    char errbuf[512];
    int width = 0;
    int at = find_config(*argc, argv, &path, &width);

    if (at >= 0 && path == NULL) {
        fprintf(stderr, "%s: --config needs a file\n", program);
        return 1;
    }
    if (at >= 0) {
        memmove(&argv[at], &argv[at + width], (size_t)(*argc - at - width + 1) * sizeof(*argv));
        *argc -= width;
    }
    if (usher_config_load(cfg, path, errbuf, sizeof(errbuf)) != USHER_OK) {
        fprintf(stderr, "%s: %s\n", program, errbuf);
        return 1;
    }
    usher_log_set_level((usher_log_level)cfg->log_level);
    return 0;
}

bool usher_cli_version(const char *program, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--version") != 0)
        return false;
    printf("%s %s\n", program, USHER_VERSION);
    return true;
}

int usher_cli_stub(const char *program, const char *usage, int argc, char **argv)
{
    usher_config cfg = { 0 };
    int status;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    status = usher_cli_load_config(program, &argc, argv, &cfg);
    if (status == 0) {
        fputs(usage, stderr);
        status = 2;
    }
    usher_config_free(&cfg);
    return status;
}

/* Seconds east of UTC from "Z", "+HH:MM" or "-HH:MM" (two digits each); -1 on anything else. */
static int parse_offset(const char *s, long *seconds)
{
    long hh, mm;

    if (strcmp(s, "Z") == 0 || s[0] == '\0') {
        *seconds = 0;
        return 0;
    }
    if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 || s[3] != ':' ||
        strspn(s + 1, "0123456789") != 2 || strspn(s + 4, "0123456789") != 2)
        return -1;
    hh = (s[1] - '0') * 10 + (s[2] - '0');
    mm = (s[4] - '0') * 10 + (s[5] - '0');
    if (hh > 23 || mm > 59)
        return -1;
    *seconds = (s[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    return 0;
}

int usher_cli_parse_time(const char *text, int64_t *us)
{
    struct tm tm = { 0 };
    const char *rest;
    long offset;
    char *end;

    if (text[0] == '@') {
        long long secs = strtoll(text + 1, &end, 10);

        if (end == text + 1 || *end != '\0' || secs < 0 || secs > INT64_MAX / 1000000)
            return -1; /* beyond INT64_MAX µs (the year 294247) */
        *us = (int64_t)secs * 1000000;
        return 0;
    }
    rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL) {
        memset(&tm, 0, sizeof(tm));
        rest = strptime(text, "%Y-%m-%d", &tm);
        if (rest == NULL || *rest != '\0')
            return -1;
    }
    if (parse_offset(rest, &offset) != 0)
        return -1;
    *us = ((int64_t)timegm(&tm) - offset) * 1000000;
    return 0;
}
