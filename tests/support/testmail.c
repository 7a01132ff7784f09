/*
 * Mail counting (testmail.h): each file of the Maildir's new/ is one mail;
 * its To: header, before the blank line that ends the headers, names the
 * attendee.
 */
#include "testmail.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Index i of an address PREFIXi@ in a mail's To: header, or -1. */
static int recipient_index(const char *path, const char *prefix)
{
    char line[512];
    FILE *f = fopen(path, "r");
    int index = -1;

    while (f != NULL && index < 0 && fgets(line, sizeof(line), f) != NULL) {
        const char *at;

        if (line[0] == '\r' || line[0] == '\n')
            break; /* the headers end */
        if (strncmp(line, "To:", 3) == 0 && (at = strstr(line, prefix)) != NULL)
            index = atoi(at + strlen(prefix));
    }
    if (f != NULL)
        fclose(f);
    return index;
}

int testmail_count(const char *prefix, int *counts, int n)
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
        if ((i = recipient_index(path, prefix)) >= 0 && i < n) {
            counts[i]++;
            total++;
        }
    }
    if (d != NULL)
        closedir(d);
    return total;
}
