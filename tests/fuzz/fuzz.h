/*
 * What every fuzz target shares. A target is one fuzz_NAME.c defining
 * LLVMFuzzerTestOneInput; it is linked either with libFuzzer (clang,
 * -DUSHER_FUZZ=ON: the fuzz_NAME binaries that scripts/fuzz.sh runs) or with
 * replay.c (every build: fuzz_replay_NAME, the ctest test that feeds it each
 * file of tests/fuzz/corpus/NAME/). A target checks properties of the code
 * under test with FUZZ_CHECK, which aborts, so a broken property is a crash
 * for libFuzzer and a failed test for ctest.
 */
#ifndef USHER_FUZZ_H
#define USHER_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                           \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/*
 * The input as a C string, cut at its first NUL (what a header, a file line
 * or a query reaches our code as). The caller frees it; NULL when out of memory.
 */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    size_t len = strnlen((const char *)data, size);
    char *text = malloc(len + 1);

    if (text != NULL) {
        memcpy(text, data, len);
        text[len] = '\0';
    }
    return text;
}

/* A 64-bit FNV-1a hash of the input: derives numbers (ids, times) from text inputs. */
static inline uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
    uint64_t h = 14695981039346656037u;

    for (size_t i = 0; i < size; i++) {
        h ^= data[i];
        h *= 1099511628211u;
    }
    return h;
}

#endif
