/*
 * Children are found by scanning /proc/PID/stat for the parent pid, which
 * works without CONFIG_PROC_CHILDREN. Waiting polls with short pauses up
 * to a deadline: the condition, never the pause, decides the outcome.
 */
#include "testproc.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testdb.h"

pid_t testproc_start(const char *const argv[], const char *log_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid == 0) {
        int fd;

        /* Dies with the test: a test that fails before its cleanup left
         * usher-api or usher-worker running after the suite. Every caller
         * forks from the test's own thread, as PR_SET_PDEATHSIG requires. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127); /* the test ended before the line above */
        fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        perror("execv");
        _exit(127);
    }
    return pid;
}

static void pause_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

bool testproc_wait(pid_t pid, int timeout_ms, int *status)
{
    long long deadline = testdb_now_ms() + timeout_ms;

    do {
        pid_t r = waitpid(pid, status, WNOHANG);

        if (r == pid)
            return true;
        if (r < 0)
            return false;
        pause_ms(20);
    } while (testdb_now_ms() < deadline);
    return false;
}

void testproc_kill(pid_t pid)
{
    int status;

    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

/* The parent of /proc/PID_DIR and its name (comm, at most 15 bytes) into name. */
static pid_t parent_of(const char *pid_dir, char name[16])
{
    char path[300], buf[512];
    FILE *f;
    char *open_paren, *close_paren;
    int ppid = -1;

    name[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%s/stat", pid_dir);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    if (fgets(buf, sizeof(buf), f) != NULL && (open_paren = strchr(buf, '(')) != NULL &&
        (close_paren = strrchr(buf, ')')) != NULL) {
        sscanf(close_paren + 2, "%*c %d", &ppid);
        snprintf(name, 16, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
    }
    fclose(f);
    return ppid;
}

/* Children of pid whose name is (want_named) or is not (!want_named) name; NULL: all. */
static size_t children_named(pid_t pid, const char *name, bool want_named, pid_t *out, size_t max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    char comm[16];
    size_t n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < max) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (parent_of(e->d_name, comm) != pid)
            continue;
        if (name == NULL || (strcmp(comm, name) == 0) == want_named)
            out[n++] = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return n;
}

size_t testproc_children(pid_t pid, pid_t *out, size_t max)
{
    return children_named(pid, NULL, true, out, max);
}

size_t testproc_pool_children(pid_t pid, pid_t *out, size_t max)
{
    return children_named(pid, TESTPROC_MAINT_NAME, false, out, max);
}

pid_t testproc_maintenance(pid_t pid)
{
    pid_t found = 0;

    return children_named(pid, TESTPROC_MAINT_NAME, true, &found, 1) == 1 ? found : 0;
}

bool testproc_wait_for(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    long long deadline = testdb_now_ms() + timeout_ms;

    do {
        if (cond(arg))
            return true;
        pause_ms(20);
    } while (testdb_now_ms() < deadline);
    return cond(arg);
}

pid_t testproc_start_worker(const char *path, const char *config, const char *pool,
                            const char *database_url, const char *name, char workdir[64])
{
    const char *argv[] = { path, "--config", config, "--pool", pool, NULL };
    char log[128], docs[128], search[128];
    pid_t pid;

    snprintf(workdir, 64, "/tmp/usher-%s-XXXXXX", name);
    cr_assert_not_null(mkdtemp(workdir));
    snprintf(docs, sizeof(docs), "%s/documents", workdir);
    snprintf(log, sizeof(log), "%s/worker.log", workdir);
    snprintf(search, sizeof(search), "%s/search", workdir);
    cr_assert_eq(setenv("USHER_DOCUMENT_DIR", docs, 1), 0);
    cr_assert_eq(setenv("USHER_SEARCH_DIR", search, 1), 0);
    cr_assert_eq(setenv("USHER_DATABASE_URL", database_url, 1), 0);
    pid = testproc_start(argv, log);
    cr_assert_gt(pid, 0);
    return pid;
}

void testproc_stop_cleanly(pid_t pid)
{
    int status;

    kill(pid, SIGTERM);
    cr_assert(testproc_wait(pid, 60000, &status), "usher-worker did not stop");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "usher-worker exit %d", status);
}

int testproc_log_lines(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, text) != NULL;
    if (f != NULL)
        fclose(f);
    return n;
}
