/*
 * Mail counting (testmail.h): each file of the Maildir's new/ is one mail;
 * its To: header, before the blank line that ends the headers, names the
 * attendee.
 */
#include "testmail.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAIL_MAX (256 * 1024) /* bytes of a mail read at most */

/*
 * Index i of an address PREFIXi@ in a mail's To: header, or -1; also -1
 * when subject is not NULL and the Subject: header does not contain it.
 */
static int recipient_index(const char *path, const char *prefix, const char *subject)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    int index = -1;
    bool subject_seen = subject == NULL;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        const char *at;

        if (line[0] == '\r' || line[0] == '\n')
            break; /* the headers end */
        if (strncmp(line, "To:", 3) == 0 && (at = strstr(line, prefix)) != NULL)
            index = atoi(at + strlen(prefix));
        if (subject != NULL && strncmp(line, "Subject:", 8) == 0 && strstr(line, subject) != NULL)
            subject_seen = true;
    }
    if (f != NULL)
        fclose(f);
    return subject_seen ? index : -1;
}

int testmail_count(const char *prefix, int *counts, int n)
{
    return testmail_count_subject(prefix, NULL, counts, n);
}

int testmail_count_subject(const char *prefix, const char *subject, int *counts, int n)
{
    const char *maildir = getenv("USHER_MAILDIR");
    char dir[512];
    DIR *d;
    struct dirent *e;
    int total = 0;

    memset(counts, 0, (size_t)n * sizeof(*counts));
    snprintf(dir, sizeof(dir), "%s/new", maildir != NULL ? maildir : ".");
    d = opendir(dir);
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[1024];
        int i;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if ((i = recipient_index(path, prefix, subject)) >= 0 && i < n) {
            counts[i]++;
            total++;
        }
    }
    if (d != NULL)
        closedir(d);
    return total;
}

/* Decodes quoted-printable src (a text part) into out, cut to fit; soft line breaks vanish. */
static void qp_decode(const char *src, char *out, size_t len)
{
    size_t n = 0;

    for (const char *p = src; *p != '\0' && n + 1 < len; p++) {
        unsigned int byte;

        if (*p == '\r')
            continue;
        if (*p == '=' && p[1] == '\r' && p[2] == '\n')
            p += 2;
        else if (*p == '=' && p[1] == '\n')
            p += 1;
        else if (*p == '=' && sscanf(p + 1, "%2x", &byte) == 1) {
            out[n++] = (char)byte;
            p += 2;
        } else
            out[n++] = *p;
    }
    out[n] = '\0';
}

/* The text/plain part of the mail at path, decoded; false when it has none. */
static bool plain_part(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    char *mail = calloc(1, MAIL_MAX + 1), *part = NULL, *start = NULL, *end;
    size_t got = f != NULL && mail != NULL ? fread(mail, 1, MAIL_MAX, f) : 0;

    if (f != NULL)
        fclose(f);
    if (got > 0)
        part = strstr(mail, "Content-Type: text/plain");
    if (part != NULL) { /* the part's headers end at a blank line */
        char *crlf = strstr(part, "\r\n\r\n"), *lf = strstr(part, "\n\n");

        start = crlf != NULL && (lf == NULL || crlf < lf) ? crlf + 4 : lf != NULL ? lf + 2 : NULL;
    }
    if (start == NULL) {
        free(mail);
        return false;
    }
    if ((end = strstr(start, "\n--=_")) != NULL)
        *end = '\0';
    qp_decode(start, out, len);
    free(mail);
    return true;
}

bool testmail_text(const char *prefix, int i, const char *subject, char *out, size_t len)
{
    const char *maildir = getenv("USHER_MAILDIR");
    char dir[512];
    DIR *d;
    struct dirent *e;
    bool found = false;

    snprintf(dir, sizeof(dir), "%s/new", maildir != NULL ? maildir : ".");
    d = opendir(dir);
    while (!found && d != NULL && (e = readdir(d)) != NULL) {
        char path[1024];

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (recipient_index(path, prefix, subject) == i)
            found = plain_part(path, out, len);
    }
    if (d != NULL)
        closedir(d);
    return found;
}
