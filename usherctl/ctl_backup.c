/*
 * usherctl backup FILE: pg_dump's custom format of the whole database, read
 * from a snapshot taken behind the send barrier (engine/backup.h), so that
 * every mail the relay took before the snapshot is recorded in it and a
 * restored system does not send it again. pg_dump (postgresql-client-15)
 * reads the snapshot that this process's transaction exports and keeps
 * open until the dump is done. README "Backup and restore" says how to
 * restore.
 */
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "backup.h"
#include "ctl.h"

extern char **environ;

/* Runs pg_dump of url into file from snapshot; its exit status, or -1 if it did not run. */
static int pg_dump(const char *url, const char *file, const char *snapshot)
{
    char snap_arg[USHER_SNAPSHOT_MAX + 16], file_arg[4096],
        prog[] = "pg_dump", format[] = "--format=custom", dbname[] = "--dbname";
    char *argv[] = { prog, format, snap_arg, file_arg, dbname, (char *)url, NULL };
    pid_t pid;
    int status;

    snprintf(snap_arg, sizeof(snap_arg), "--snapshot=%s", snapshot);
    snprintf(file_arg, sizeof(file_arg), "--file=%s", file);
    if (posix_spawnp(&pid, "pg_dump", NULL, NULL, argv, environ) != 0)
        return -1;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int ctl_backup(usher_store *st, int argc, char **argv)
{
    char snapshot[USHER_SNAPSHOT_MAX];
    usher_err err;
    int rc;

    if (argc != 1) {
        fprintf(stderr, "usage: usherctl backup FILE\n");
        return 2;
    }
    err = usher_backup_snapshot_open(st, snapshot);
    if (err == USHER_OK)
        err = usher_backup_barrier_release(st);
    if (err != USHER_OK)
        return ctl_fail(st, err, "backup");
    rc = pg_dump(usher_store_config(st)->database_url, argv[0], snapshot);
    err = usher_backup_snapshot_close(st);
    if (rc != 0) {
        fprintf(stderr, "usherctl: backup: pg_dump failed (%d)\n", rc);
        return 1;
    }
    if (err != USHER_OK)
        return ctl_fail(st, err, "backup");
    printf("backup written to %s (snapshot %s)\n", argv[0], snapshot);
    return 0;
}
