/*
 * usherctl: the operators' command line. main() loads the configuration,
 * finds the command in a table, connects, and hands over. Errors go to
 * stderr with a non-zero exit status: 1 for a failure, 2 for bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctl.h"

typedef struct ctl_command {
    const char *name;
    ctl_command_fn run;
    const char *usage;
} ctl_command;

/* Commands that open what they need themselves, or nothing (they exec a daemon). */
typedef struct ctl_config_command {
    const char *name;
    ctl_config_fn run;
    const char *usage;
} ctl_config_command;

static const ctl_command commands[] = {
    { "migrate", ctl_migrate, "migrate [--dir DIR]  apply schema migrations, declare queues" },
    { "enqueue", ctl_enqueue,
      "enqueue QUEUE KIND JSON [--priority N] [--delay S | --run-at TIME]\n"
      "        [--unique-key K] [--max-attempts N] [--timeout-ms N]  prints the job id" },
    { "queues", ctl_queues, "queues [--json]  per-queue statistics" },
    { "jobs", ctl_jobs,
      "jobs list [--state S] [--queue Q] [--kind K] [--limit N] [--before ID] [--json]\n"
      "jobs show ID | jobs cancel ID" },
    { "dead", ctl_dead,
      "dead list|retry|discard [ID] [--queue Q] [--kind K] [--error TEXT]\n"
      "        [--since TIME] [--until TIME] [--json]  (retry/discard: an ID or --all)" },
    { "pause", ctl_pause, "pause QUEUE" },
    { "resume", ctl_resume, "resume QUEUE" },
    { "seed", ctl_seed, "seed --demo [--registrations N]  an organizer, an event, registrations" },
    { "organizer", ctl_organizer,
      "organizer create NAME  prints the new organizer's id\n"
      "organizer list [--json]  id, name, events, live tokens" },
    { "token", ctl_token,
      "token create --role admin|organizer|scanner [--organizer ID] [--event ID] [--name N]\n"
      "        prints the token (once) | token revoke ID\n"
      "token list [--role R] [--organizer ID] [--revoked|--live] [--json]  never the secret" },
    { "maintain", ctl_maintain,
      "maintain  rescue expired leases, prune and run retention, if no one else leads" },
    { "backup", ctl_backup,
      "backup FILE  pg_dump (custom format) from a snapshot behind the send barrier" },
    { "webhook", ctl_webhook,
      "webhook deliveries [--endpoint ID] [--limit N]  the latest attempts, JSON lines\n"
      "webhook replay ID  send delivery ID's event again (a new job; prints its id)" },
};

static const ctl_config_command config_commands[] = {
    { "search", ctl_search,
      "search rebuild [--wait-ms N]  the index again from the database, replaced at once\n"
      "search serve | search replicate [--once]  run xapian-replicate-server on the\n"
      "        indexer host, or xapian-replicate into replica_dir on an API host" },
};

/* Prints text with every line indented, so that a command's second form lines
 * up with its first. */
static void print_indented(FILE *out, const char *text)
{
    while (*text != '\0') {
        size_t len = strcspn(text, "\n");

        fprintf(out, "  %.*s\n", (int)len, text);
        text += len + (text[len] == '\n');
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: usherctl [--config FILE] COMMAND ...\n\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        print_indented(out, commands[i].usage);
    for (size_t i = 0; i < sizeof(config_commands) / sizeof(config_commands[0]); i++)
        print_indented(out, config_commands[i].usage);
    fprintf(out, "\nTIME: 2026-11-27T18:00:00Z, 2026-11-27T18:00:00+01:00, 2026-11-27 or "
                 "@UNIXSECONDS\n");
}

static const ctl_config_command *find_config_command(const char *name)
{
    for (size_t i = 0; i < sizeof(config_commands) / sizeof(config_commands[0]); i++) {
        if (strcmp(config_commands[i].name, name) == 0)
            return &config_commands[i];
    }
    return NULL;
}

static const ctl_command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    usher_config cfg = { 0 };
    usher_store *st = NULL;
    const ctl_command *cmd;
    const ctl_config_command *config_cmd;
    char errbuf[512];
    int status;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (usher_cli_version("usherctl", argc, argv))
        return 0;
    if (usher_cli_load_config("usherctl", &argc, argv, &cfg) != 0)
        return 1;
    config_cmd = argc > 1 ? find_config_command(argv[1]) : NULL;
    if (config_cmd != NULL) {
        status = config_cmd->run(&cfg, argc - 2, argv + 2);
        usher_config_free(&cfg);
        return status;
    }
    cmd = argc > 1 ? find_command(argv[1]) : NULL;
    if (cmd == NULL) {
        if (argc > 1)
            fprintf(stderr, "usherctl: unknown command '%s'\n", argv[1]);
        usage(stderr);
        usher_config_free(&cfg);
        return 2;
    }
    if (usher_store_open(&cfg, &st, errbuf, sizeof(errbuf)) != USHER_OK) {
        fprintf(stderr, "usherctl: %s\n", errbuf);
        usher_config_free(&cfg);
        return 1;
    }
    status = cmd->run(st, argc - 2, argv + 2);
    usher_store_free(st);
    usher_config_free(&cfg);
    return status;
}
