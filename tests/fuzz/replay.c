/*
 * The corpus replay: a main() for a fuzz target, so every build (gcc, its
 * ASan build, valgrind) runs the target over its corpus as a ctest test.
 *
 *   fuzz_replay_NAME PATH...     each PATH a file, or a directory whose
 *                                files are fed in name order
 *
 * An input that breaks a property aborts (the test fails, naming the file
 * on stderr first); a directory without files is an error too, so a corpus
 * that went missing is not a silent pass.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads the whole file into *data (malloc'd; the caller frees it). */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0, n;

    if (f == NULL)
        return -1;
    do {
        if (len == cap) {
            uint8_t *grown = realloc(buf, cap = cap * 2 + 4096);

            if (grown == NULL) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = grown;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    *data = buf;
    *size = len;
    return 0;
}

static int run_file(const char *path)
{
    uint8_t *data;
    size_t size;

    if (read_file(path, &data, &size) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    /* A copy of exactly size bytes, as libFuzzer passes it: ASan sees reads past the end. */
    uint8_t *exact = malloc(size > 0 ? size : 1);

    if (exact == NULL) {
        free(data);
        return -1;
    }
    memcpy(exact, data, size);
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Feeds every regular file of dir; returns how many, or -1. */
static int run_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name), count = 0;

    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (count >= 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            count = run_file(path) == 0 ? count + 1 : -1;
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    int total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int n;

        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) == 0 ? 1 : -1;
        if (n <= 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], n == 0 ? "no inputs" : "failed");
            return 1;
        }
        total += n;
    }
    printf("replay: %d inputs, every property held\n", total);
    return 0;
}
