#include "testredis.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testproc.h"

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static bool answers(void *arg)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t) * (int *)arg),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool up = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    if (fd >= 0)
        close(fd);
    return up;
}

pid_t testredis_start_on(int port, const char *const *extra)
{
    char port_text[16], url[64], log[128];
    const char *argv[32] = {
        "/usr/bin/redis-server", "--port", port_text, "--bind", "127.0.0.1", "--save", "",
        "--appendonly",          "no"
    };
    size_t argc = 9;
    pid_t pid;

    for (; extra != NULL && *extra != NULL; extra++) {
        cr_assert_lt(argc, sizeof(argv) / sizeof(argv[0]) - 1, "too many redis-server arguments");
        argv[argc++] = *extra;
    }
    argv[argc] = NULL;
    snprintf(port_text, sizeof(port_text), "%d", port);
    snprintf(log, sizeof(log), "/tmp/usher-redis-test-%d.log", (int)getpid());
    pid = testproc_start(argv, log);
    cr_assert_gt(pid, 0);
    cr_assert(testproc_wait_for(answers, &port, 30000), "redis did not start; see %s", log);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    setenv("USHER_REDIS_URL", url, 1);
    return pid;
}

pid_t testredis_start_with(const char *const *extra, int *port)
{
    *port = free_port();
    return testredis_start_on(*port, extra);
}

pid_t testredis_start(void)
{
    return testredis_start_on(free_port(), NULL);
}
