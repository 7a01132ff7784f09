/*
 * Allocation. Usher's policy is redis's: running out of memory is not an
 * error a caller handles. Every allocation in engine/, platform/, search/,
 * api/, workers/ and usherctl/ goes through these wrappers, which never
 * return NULL: on failure they write "usher: out of memory allocating N
 * bytes" to stderr and abort(). No function returns USHER_ERR_NOMEM for
 * memory of its own, and no caller tests these results for NULL.
 *
 * Why: the paths that handled a failed malloc were never run by any test,
 * and a process that cannot allocate cannot log, answer or roll back
 * reliably either. usher-worker's supervisor respawns a child that aborts;
 * systemd restarts the programs. Free what these return with free().
 *
 * Libraries: where a call's only failure is memory (jansson's json_object,
 * json_array and json_deep_copy, json_dumps of a value we built, libevent's
 * event_new, evtimer_new, evsignal_new, evbuffer_new, evhttp_new, and
 * evbuffer_add to a buffer of our own), its result goes through
 * usher_need(), which makes a NULL usher_oom too. A call that can also fail
 * for another reason keeps its error path: json_pack (a format, a NULL or
 * invalid UTF-8 string), json_string and json_loads (their input),
 * json_object_set_new and json_array_append_new (a NULL value),
 * event_base_new (no backend, no descriptor), event_add, evhttp_bind_* and
 * evhttp_accept_* (the system). USHER_ERR_NOMEM remains for a library that
 * reports running out of memory through its own error codes among other
 * failures (FreeType, libharu, OpenSSL, libesmtp), which we translate
 * rather than abort on. Search (C++) allocates through new: xapian_wrap.cc
 * catches std::bad_alloc (Xapian's included) at its C boundary and calls
 * usher_oom(), since no exception may cross into C.
 *
 * Tests and benches may use plain malloc.
 */
#ifndef USHER_ALLOC_H
#define USHER_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes "usher: out of memory allocating SIZE bytes" to stderr and aborts. */
__attribute__((noreturn)) void usher_oom(size_t size);

/*
 * p, the result of a library call whose only failure is memory (above):
 * `json_t *list = usher_need(json_array());`. NULL is usher_oom(0), since
 * the library does not say how much it wanted.
 */
__attribute__((returns_nonnull)) static inline void *usher_need(void *p)
{
    if (p == NULL)
        usher_oom(0);
    return p;
}

__attribute__((malloc, returns_nonnull, warn_unused_result)) void *usher_malloc(size_t size);
/* n * size, checked for overflow (an overflow is an out-of-memory too). */
__attribute__((malloc, returns_nonnull, warn_unused_result)) void *usher_calloc(size_t n,
                                                                                size_t size);
__attribute__((returns_nonnull, warn_unused_result)) void *usher_realloc(void *p, size_t size);
__attribute__((malloc, returns_nonnull, warn_unused_result)) char *usher_strdup(const char *s);
__attribute__((malloc, returns_nonnull, warn_unused_result)) char *usher_strndup(const char *s,
                                                                                 size_t n);

/*
 * Keeps freed memory in the process instead of returning it to the kernel
 * at every free: blocks under 1 MiB come from the heap (not a fresh mmap
 * each), and up to 16 MiB free at the heap's top stay mapped. A ticket
 * render opens several zlib streams of ~270 KB each (cairo compresses
 * every PDF stream), and glibc's defaults handed each back with brk:
 * every render then paid page faults, zeroing and a TLB shootdown across
 * the CPUs, over half its time on a busy 2-core machine (bench/README.md).
 * For long-running processes that allocate in bursts (usher-worker);
 * false when the allocator ignores it (sanitizers replace malloc).
 */
bool usher_alloc_keep_heap(void);

#ifdef __cplusplus
}
#endif

#endif
