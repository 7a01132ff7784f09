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
