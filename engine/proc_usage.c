#include "proc_usage.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*
 * /proc/PID/stat: "pid (comm) state ppid ..." where comm may hold spaces
 * and parentheses, so the fields are counted from the last ')': utime and
 * stime are fields 14 and 15 (in clock ticks), rss field 24 (in pages).
 */
bool usher_proc_usage(pid_t pid, double *cpu_s, double *rss_bytes)
{
    char path[64], line[1024];
    unsigned long utime, stime;
    long rss, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    const char *after;
    FILE *f;
    bool ok;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    if (!ok || (after = strrchr(line, ')')) == NULL || ticks <= 0 || page <= 0)
        return false;
    /* After ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
       utime(14) stime(15) cutime cstime priority nice num_threads itrealvalue starttime vsize
       rss(24). */
    if (sscanf(after + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d"
               " %*u %*u %ld",
               &utime, &stime, &rss) != 3)
        return false;
    *cpu_s = (double)(utime + stime) / (double)ticks;
    *rss_bytes = (double)rss * (double)page;
    return true;
}

int usher_host_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n > 0 ? (int)n : 1;
}

double usher_host_memory_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);

    return pages > 0 && page > 0 ? (double)pages * (double)page : 0;
}
