/*
 * usher-bench-hello: the machine's ceiling for an HTTP server built like
 * usher-api. It answers every request with 200 "ok", from one libevent
 * evhttp loop per thread, each on its own SO_REUSEPORT listener (as
 * api/server.c does), and nothing else: no routing, database or cache.
 * bench/api measures it with the same wrk settings as the API's routes.
 *
 *   usher-bench-hello --listen HOST:PORT [--threads N]   (default: one per core)
 *
 * Runs until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROGRAM     "usher-bench-hello"
#define THREADS_MAX 64

typedef struct hello_loop {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
} hello_loop;

static void answer(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    (void)arg;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    if (evbuffer_add(out, "ok", 2) != 0) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evhttp_send_reply(req, 200, "OK", NULL);
}

/* A listening SO_REUSEPORT socket on HOST:PORT, or -1 (reported). */
static int listen_on(const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    int fd, one = 1, rc;

    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) {
        fprintf(stderr, "%s: --listen '%s' is not HOST:PORT\n", PROGRAM, addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "%s: %s: %s\n", PROGRAM, addr, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "%s: %s: %s\n", PROGRAM, addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static void *run_loop(void *arg)
{
    hello_loop *loop = arg;

    if (event_base_dispatch(loop->base) < 0)
        fprintf(stderr, "%s: event loop failed\n", PROGRAM);
    return NULL;
}

/* Sets up loop i on its own listener; 0 or -1 (reported). */
static int loop_init(hello_loop *loop, const char *addr)
{
    int fd = listen_on(addr);

    if (fd < 0)
        return -1;
    loop->base = event_base_new();
    loop->http = loop->base != NULL ? evhttp_new(loop->base) : NULL;
    if (loop->http == NULL || evhttp_accept_socket(loop->http, fd) != 0) {
        fprintf(stderr, "%s: cannot set up an HTTP loop\n", PROGRAM);
        close(fd);
        return -1;
    }
    evhttp_set_gencb(loop->http, answer, NULL);
    return 0;
}

static int parse_args(int argc, char **argv, const char **addr, long *threads)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        char *end;

        if (strcmp(argv[i], "--listen") == 0) {
            *addr = argv[i + 1];
        } else if (strcmp(argv[i], "--threads") == 0) {
            *threads = strtol(argv[i + 1], &end, 10);
            if (*end != '\0' || *threads < 1 || *threads > THREADS_MAX)
                return -1;
        } else {
            return -1;
        }
    }
    return argc % 2 == 1 && *addr != NULL ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *addr = NULL;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    hello_loop loops[THREADS_MAX] = { 0 };
    sigset_t stop;
    int sig, rc = 0;

    if (parse_args(argc, argv, &addr, &threads) != 0) {
        fprintf(stderr, "usage: %s --listen HOST:PORT [--threads 1..%d]\n", PROGRAM, THREADS_MAX);
        return 2;
    }
    if (threads < 1)
        threads = 1;
    if (evthread_use_pthreads() != 0) { /* loopbreak comes from the main thread */
        fprintf(stderr, "%s: libevent has no thread support\n", PROGRAM);
        return 1;
    }
    /* Block the stop signals before any thread starts, so only sigwait takes them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (long i = 0; i < threads; i++) {
        if (loop_init(&loops[i], addr) != 0 ||
            pthread_create(&loops[i].thread, NULL, run_loop, &loops[i]) != 0) {
            fprintf(stderr, "%s: cannot start loop %ld\n", PROGRAM, i);
            threads = i;
            rc = 1;
            break;
        }
    }
    if (rc == 0) {
        fprintf(stderr, "%s: listening on %s with %ld threads\n", PROGRAM, addr, threads);
        sigwait(&stop, &sig);
    }
    for (long i = 0; i < threads; i++) {
        event_base_loopbreak(loops[i].base);
        pthread_join(loops[i].thread, NULL);
    }
    for (long i = 0; i < THREADS_MAX; i++) {
        if (loops[i].http != NULL)
            evhttp_free(loops[i].http);
        if (loops[i].base != NULL)
            event_base_free(loops[i].base);
    }
    return rc;
}
