/*
 * engine/log.c's two forms: logfmt with a timestamp when stderr is not the
 * journal, "<N>message" when it is (JOURNAL_STREAM names stderr's device
 * and inode). Each test runs in its own process, so each decides anew.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static char path[] = "/tmp/usher-test-log-XXXXXX";

/* stderr into a file of the test's own. */
static void capture(void)
{
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    fflush(stderr);
    cr_assert_geq(dup2(fd, STDERR_FILENO), 0);
    close(fd);
}

static char *captured(char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;

    fflush(stderr);
    cr_assert_not_null(f);
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
    return buf;
}

Test(log, outside_the_journal_a_line_is_logfmt_with_a_timestamp)
{
    char out[1024];
    regex_t re;

    unsetenv("JOURNAL_STREAM");
    capture();
    usher_log(USHER_LOG_WARNING, "pool=%s said \"hi\" \\ twice\nsecond line", "std");
    usher_log(USHER_LOG_DEBUG, "dropped: above the level");
    cr_assert_not(usher_log_to_journal());
    captured(out, sizeof(out));
    cr_assert_eq(regcomp(&re,
                         "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"
                         " level=warning pid=[0-9]+"
                         " msg=\"pool=std said \\\\\"hi\\\\\" \\\\\\\\ twice second line\"\n$",
                         REG_EXTENDED),
                 0);
    cr_assert_eq(regexec(&re, out, 0, NULL, 0), 0, "not logfmt: %s", out);
    regfree(&re);
}

Test(log, to_the_journal_a_line_keeps_its_priority_prefix)
{
    char out[1024], stream[64];
    struct stat st;

    capture();
    cr_assert_eq(fstat(STDERR_FILENO, &st), 0);
    snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", stream, 1);
    usher_log(USHER_LOG_ERR, "job=%d failed", 7);
    cr_assert(usher_log_to_journal());
    cr_assert_str_eq(captured(out, sizeof(out)), "<3>job=7 failed\n");
}

Test(log, a_journal_stream_that_is_not_stderr_is_not_the_journal)
{
    char out[1024];

    capture();
    setenv("JOURNAL_STREAM", "1:2", 1);
    usher_log(USHER_LOG_ERR, "x");
    cr_assert_not(usher_log_to_journal());
    cr_assert(strncmp(captured(out, sizeof(out)), "ts=", 3) == 0, "%s", out);
}
