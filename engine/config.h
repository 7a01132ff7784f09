/*
 * Usher's configuration: an INI file (conf/usher.conf) parsed with inih
 * through one table of {section, key, type, offset, default, reloadable},
 * then USHER_DATABASE_URL, USHER_REDIS_URL, USHER_SMTP_URL (and the other
 * variables the table names, e.g. USHER_SMTP_PASSWORD) override the file. A bad file is refused
 * with "FILE:LINE: reason". The value parsers are in config_values.c.
 *
 * Sections:
 *   [database] [redis] [smtp]  url; [smtp] also the sender, STARTTLS and AUTH
 *   [log]        level
 *   [webhooks]   allow_private_targets (platform/netguard.h's classes refused or not)
 *   [messages]   batch_size (registrations per message.fanout job)
 *   [schedules]  the default offsets of schedules anchored to an event, and
 *                how late one may still fire
 *   [engine]     queue-engine settings (payload limit, wake-ups, leases, retention)
 *   [defaults]   the retry policy and priority of a kind not listed below
 *   [queue.NAME] one per queue: pool (a declared [pool.NAME])
 *   [pool.NAME]  one per worker pool: tiers, size limits, autoscaling
 *                thresholds and rates, protection windows, a downstream
 *                cap, and the supervisor's timings (see usher_pool_conf)
 *   [kind.NAME]  one per job kind: queue, priority, max_attempts, timeout_ms,
 *                backoff_base_ms, backoff_cap_ms, deadline_ms, deadline_drop
 *                (unset keys take [defaults])
 *   [periodic.NAME] one per periodic job: cron, queue, kind, payload,
 *                priority (see usher_periodic_conf and engine/periodic.h)
 */
#ifndef USHER_CONFIG_H
#define USHER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cron.h"
#include "error.h"

#define USHER_NAME_MAX 64 /* queue, kind and pool names, with the NUL */

typedef struct usher_kind_conf {
    char name[USHER_NAME_MAX];
    char queue[USHER_NAME_MAX]; /* default queue for this kind ("" = none) */
    int priority;               /* 0 high, 1 medium, 2 low */
    int max_attempts;           /* >= 1 */
    int timeout_ms;             /* a run longer than this fails the attempt */
    int backoff_base_ms;        /* first retry waits up to this */
    int backoff_cap_ms;         /* no retry waits longer than this */
    int deadline_ms;            /* a job's deadline, this long after its enqueue; 0: none */
    int deadline_drop;          /* 1: a job claimed after its deadline is cancelled, not run */
} usher_kind_conf;

typedef struct usher_queue_conf {
    char name[USHER_NAME_MAX];
    char pool[USHER_NAME_MAX]; /* the worker pool that serves it */
    int age_budget_s;          /* an available job older than this is late (alerts) */
} usher_queue_conf;

/* A pool's tier picks its default depth thresholds (ARCHITECTURE.md). */
enum usher_pool_tier {
    USHER_TIER_HIGH,   /* scale out past 100 waiting jobs, in below 10, floor 2 */
    USHER_TIER_MEDIUM, /* past 500, below 50 */
    USHER_TIER_LOW,    /* past 1000, below 100 */
};

/* The event tier picks a pool's default ceiling. */
enum usher_event_tier {
    USHER_EVENT_SMALL,  /* 10 children */
    USHER_EVENT_MEDIUM, /* 50 */
    USHER_EVENT_LARGE,  /* 200 */
    USHER_EVENT_MEGA,   /* 500 */
};

/* A 199-character line holds four "START/END" windows in the strict format. */
#define USHER_PROTECT_MAX 4

/* The instants start_ms <= t < end_ms, in ms since the epoch (UTC). */
typedef struct usher_window {
    int64_t start_ms;
    int64_t end_ms;
} usher_window;

typedef struct usher_windows {
    int count;
    usher_window window[USHER_PROTECT_MAX];
} usher_windows;

/*
 * The supervisor counts a pool's depth up to this many jobs, once a second,
 * on the connection it claims with: an uncapped count(*) over a backlog of a
 * million jobs took ~70 ms (and both cores) every second. Thresholds stay
 * below half of it ([pool] scale_out_depth), so every rule still sees them
 * crossed, and a backlog at the cap still asks for cap / scale_out_depth
 * more children (more than any max allows at the default thresholds).
 */
#define USHER_AUTOSCALE_DEPTH_CAP 100000

/*
 * [pool.NAME]: one worker pool (usher-worker --pool NAME). Every key is
 * reloadable; conf/usher.conf documents units and ranges. After loading,
 * min <= initial <= max, max >= 1 and scale_in_depth < scale_out_depth.
 * A flat value without pointers: a reload can copy it whole.
 */
/*
 * [pool.NAME] prefetch and child_queue when neither is set (the pool adapts
 * up to them). The window of a child is at most their sum, 256 jobs, which
 * only jobs shorter than 8 µs reach (the window is 2 ms of work): one claim
 * connection feeds a pool, and larger claims drain short jobs faster
 * (bench/README.md, warm drain).
 */
#define USHER_ADAPTIVE_PREFETCH    240
#define USHER_ADAPTIVE_CHILD_QUEUE 16

typedef struct usher_pool_conf {
    char name[USHER_NAME_MAX];
    int tier;                        /* enum usher_pool_tier */
    int event_tier;                  /* enum usher_event_tier */
    int min;                         /* floor: never fewer children */
    int max;                         /* ceiling: never more children */
    int initial;                     /* children forked at start */
    int scale_out_depth;             /* scale out while depth stays above this... */
    int scale_in_depth;              /* ...scale in while it stays below this... */
    int sustain_ms;                  /* ...for this long */
    int scale_out_per_minute;        /* children added in any 60 s, at most */
    int scale_in_interval_ms;        /* at most one child removed per this */
    usher_windows protect;           /* no scale-in inside these (launches) */
    char downstream[USHER_NAME_MAX]; /* a shared resource, e.g. "smtp" ("" = none) */
    int downstream_limit;            /* its concurrent jobs of this pool, all hosts; 0 = no cap */
    int shutdown_grace_ms;           /* SIGTERM: running jobs get this long to finish */
    int claim_batch;                 /* jobs claimed per statement, at most */
    int prefetch;                    /* jobs claimed ahead per child, waiting in the supervisor */
    int child_queue;                 /* jobs handed to one child at once (1 = one at a time) */
    bool adaptive;                   /* neither set: both are maxima the supervisor adapts to */
    bool claim_window; /* adaptive, claim_batch unset: a claim fills the free window */
    int metrics_port;  /* TCP port of the metrics endpoint; 0 = off */
    int heartbeat_ms;  /* lease heartbeat period */
    int smtp_rate;     /* messages per second to the relay, this host; 0 = no limit */
} usher_pool_conf;

/*
 * [periodic.NAME]: a job that the maintenance leader enqueues at each slot
 * of a cron expression (UTC), once per slot across all hosts
 * (engine/periodic.h). After loading, queue is a declared queue and
 * payload a JSON object within payload_max_bytes.
 */
typedef struct usher_periodic_conf {
    char name[USHER_NAME_MAX];
    usher_cron cron;            /* the slots, in UTC; cron.text is the expression */
    char queue[USHER_NAME_MAX]; /* required: a declared [queue.NAME] */
    char kind[USHER_NAME_MAX];  /* required: a valid name (a [kind.NAME] is optional) */
    char *payload;              /* JSON object text, owned by the config; "{}" when unset */
    int priority;               /* 0..2, or -1: the kind's (its [kind.NAME] or [defaults]) */
} usher_periodic_conf;

/* [smtp] starttls: indexes of its words. */
enum usher_smtp_starttls {
    USHER_STARTTLS_NO,           /* never */
    USHER_STARTTLS_IF_AVAILABLE, /* when the relay offers it (then the certificate must verify) */
    USHER_STARTTLS_REQUIRED,     /* no mail goes out without it */
};

/* [documents] store: indexes of its words. */
enum usher_document_store {
    USHER_DOCUMENTS_DATABASE,  /* chunked rows in PostgreSQL, read by every host */
    USHER_DOCUMENTS_DIRECTORY, /* files under document_dir (a volume the hosts share) */
};

typedef struct usher_config {
    char *path; /* the file it came from, or NULL for built-in defaults */
    char *database_url;
    int database_max_connections_per_process; /* the budget of engine/conn_budget.h; 0 = none */
    char *database_read_url;         /* replicas for reads that tolerate lag; NULL = none */
    int database_max_replica_lag_ms; /* a replica further behind is not read */
    int database_replica_check_ms;   /* how often usher-api measures its replicas */
    char *redis_url;
    char *smtp_url;
    char *smtp_from_address;      /* envelope and From: of outgoing mail */
    char *smtp_from_name;         /* From: display name */
    char *smtp_message_id_domain; /* right side of the Message-IDs we derive from job ids */
    int smtp_timeout_ms;          /* per SMTP protocol step */
    int smtp_starttls;            /* enum usher_smtp_starttls */
    char *smtp_username;          /* AUTH user; NULL = the URL's, if any */
    char *smtp_password;          /* AUTH password; NULL = the URL's, if any */
    char *smtp_ca_file;           /* PEM CAs that STARTTLS trusts; NULL = the system's */
    char *mail_template_dir;      /* NAME.subject, NAME.txt, NAME.html */
    char *document_dir;           /* the directory store's root (tickets, badges, reports...) */
    int document_store;           /* enum usher_document_store */
    char *ticket_secret;          /* 64 hex digits: the master key of ticket codes */
    char *search_index_dir;       /* the Xapian index */
    char *search_language;        /* its stemming language */
    int log_level;                /* syslog level 3 (err) .. 7 (debug) */

    /* [search] of several hosts: the indexer's replication, each API host's replica */
    char *search_replica_dir;        /* usher-api reads this replica; NULL: index_dir */
    int search_changesets;           /* XAPIAN_MAX_CHANGESETS of the indexer; 0: leave it */
    char *search_replication_listen; /* ADDR:PORT of the indexer's xapian-replicate-server */
    char *search_master;             /* HOST:PORT that an API host's xapian-replicate polls */
    int search_replicate_interval_s; /* seconds between its polls */

    /* [api]: usher-api */
    char *api_listen;         /* HOST:PORT; port 0 picks a free one (tests) */
    char *api_metrics_listen; /* HOST:PORT of /metrics, a listener of its own */
    int api_threads;          /* loop threads; 0 = one per core */
    int api_db_connections;   /* PostgreSQL connections per loop thread */
    int api_body_max_bytes;   /* JSON request bodies, at most */
    int api_upload_max_bytes; /* session content uploads, at most */
    int api_header_max_bytes; /* request line + headers, at most */
    int api_timeout_s;        /* a client silent this long is dropped */
    int api_header_timeout_s; /* a request's head must be in this long after its first byte */
    int api_body_timeout_s;   /* a body must be in this long after its head... */
    int api_body_rate_bytes;  /* ...plus a second per this many of its bytes */
    int api_inflight_body_max_bytes; /* bodies being received at once, the whole process */
    int api_connections_per_address; /* open connections from one client address; 0: any */
    int api_db_wait_ms;              /* a statement waits this long for a connection to come up */
    int api_token_cache_ms;          /* a verified token is trusted this long per thread */
    int api_cache_event_ttl_s;       /* Redis cache of event details: fresh this long... */
    int api_cache_access_ttl_s;      /* ...and of session access checks */
    int api_cache_stale_s;           /* then served stale this long while one refresh runs */
    int api_cache_warm_window_s;     /* door answers of sessions starting this soon kept warm */
    int api_redis_timeout_ms;        /* a cache or rate-limit answer slower than this: none */
    int api_rate_per_minute;      /* registrations + check-ins per address / token; 0: no limits */
    int api_rate_read_per_minute; /* other public reads per client address */
    int api_rate_manage_per_minute;   /* organizer and admin routes per token */
    int api_auth_failures_per_minute; /* unknown bearer tokens per address */
    char *api_trusted_proxies;        /* addresses/CIDRs whose X-Forwarded-For is believed */
    int api_access_log;               /* 1: a line per request (api/access_log.h) */
    int api_scale_tier;             /* usher_event_tier: the fleet's ceiling (engine/api_scale.h) */
    int api_launch_hold_before_min; /* no scale-in this long before an event's launch_at */
    int api_launch_hold_after_min;  /* ... nor this long after it */

    /* [webhooks]: POST /v1/webhooks and the notify.webhook deliveries */
    int webhooks_allow_private_targets; /* 1: endpoints may be loopback, private, link-local... */

    /* [worker]: usher-worker */
    int worker_test_handlers;     /* 1: the test.* kinds run (tests and benchmarks only) */
    int worker_job_log;           /* 1: a line per finished attempt (workers/supervisor.c) */
    char *worker_metrics_address; /* where every pool's metrics_port listens */

    /* [messages]: messages to attendees and event cancellations */
    int messages_batch_size; /* registrations per message.fanout job */

    /* [schedules]: schedules anchored to an event or session (seconds; < 0: before) */
    int schedules_reminder_offset_s;  /* a reminder without offset_s: from the start */
    int schedules_message_offset_s;   /* a message (survey) without offset_s: from the end */
    int schedules_door_list_offset_s; /* a door list without offset_s: from the start */
    int schedules_late_limit_s;       /* found later than this past due: skipped */

    /* [engine] */
    int payload_max_bytes;     /* enqueue refuses larger payloads */
    int notify_debounce_ms;    /* at most one NOTIFY per queue per process per window */
    int poll_interval_ms;      /* a waiting claimer polls this often without NOTIFY */
    int lease_grace_ms;        /* lease = job timeout + this */
    int deadline_lead_ms;      /* a job this close to its deadline is claimed first */
    int dead_retention_hours;  /* dead and cancelled jobs are pruned after this */
    int stats_retention_hours; /* per-minute statistics are pruned after this */

    /* [retention]: the data lifecycle (platform/retention.h); days, 0 keeps forever */
    int retention_interval_minutes; /* the maintenance leader runs retention this often */
    int retention_partitions_ahead; /* days of partitions created ahead of now */
    int retention_webhook_days;     /* webhook deliveries (with payloads) */
    int retention_reporting_days;   /* scans, inbox entries, rollups: after their event ends */
    int retention_document_days;    /* documents: after their event ends */
    int retention_effects_days;     /* usher_effects rows (at least dead_retention_hours) */

    usher_kind_conf defaults; /* [defaults]; name is "" */
    usher_queue_conf *queues;
    size_t nqueues;
    usher_kind_conf *kinds;
    size_t nkinds;
    usher_pool_conf *pools;
    size_t npools;
    usher_periodic_conf *periodics;
    size_t nperiodics;
} usher_config;

/*
 * Fills *out with the built-in defaults, then the file at path (NULL: no
 * file), then the environment. On failure returns USHER_ERR_CONFIG and
 * writes "FILE:LINE: reason" into errbuf; *out is left empty.
 * The caller frees *out with usher_config_free.
 */
USHER_MUSTCHECK usher_err usher_config_load(usher_config *out, const char *path, char *errbuf,
                                            size_t errlen);

/* Frees what usher_config_load allocated; accepts a zeroed or NULL config. */
void usher_config_free(usher_config *cfg);

/* The policy of kind, or &cfg->defaults when kind is not configured. Never NULL. */
const usher_kind_conf *usher_config_kind(const usher_config *cfg, const char *kind);

/* The queue of a job whose [kind.KIND] names none and whose caller has no queue of its own. */
#define USHER_DEFAULT_QUEUE "default"

/* Whether [database] read_url names replicas (unset and empty both mean none). */
bool usher_config_has_read_url(const usher_config *cfg);

/*
 * The queue a job of kind goes to: the one [kind.KIND] names, else
 * otherwise (USHER_DEFAULT_QUEUE, or a family's own: "reports", "email").
 */
const char *usher_config_kind_queue(const usher_config *cfg, const char *kind,
                                    const char *otherwise);

/* The queue named name, or NULL when it is not declared. */
const usher_queue_conf *usher_config_queue(const usher_config *cfg, const char *name);

/* The pool named name, or NULL when it is not declared. */
const usher_pool_conf *usher_config_pool(const usher_config *cfg, const char *name);

/* The ceiling of an event tier (enum usher_event_tier): 10, 50, 200 or 500. */
int usher_config_event_tier_max(int event_tier);

/*
 * The path binaries use when no --config is given: $USHER_CONFIG if set,
 * else the installed one (/etc/usher/usher.conf under the prefix /usr).
 */
const char *usher_config_default_path(void);

/* True when name is a valid queue, kind or pool name: [a-z0-9_.-], 1..63 chars. */
bool usher_config_valid_name(const char *name);

#endif
