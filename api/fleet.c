/*
 * The API fleet's scaling signals; fleet.h says what and why. One statement
 * every FLEET_READ_S seconds: upsert this instance's row, delete rows
 * silent for an hour, and read the live rows' averages with this
 * instance's own values counted in (a data-modifying CTE's rows are not
 * visible to its own statement's SELECT) and whether a launch is near.
 */
#include "fleet.h"

#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "api_scale.h"
#include "pgpool.h"
#include "proc_usage.h"

#define FLEET_READ_S 5

#define FLEET_SQL                                                                                  \
    "WITH me AS (INSERT INTO usher_api_hosts (id, cpu, mem, queue) VALUES ($1, $2, $3, $4)"        \
    "  ON CONFLICT (id) DO UPDATE SET cpu = EXCLUDED.cpu, mem = EXCLUDED.mem,"                     \
    "  queue = EXCLUDED.queue, heartbeat_at = now()),"                                             \
    " gone AS (DELETE FROM usher_api_hosts"                                                        \
    "  WHERE heartbeat_at < now() - interval '1 hour' AND id <> $1)"                               \
    " SELECT count(*) + 1, (coalesce(sum(cpu), 0) + $2) / (count(*) + 1),"                         \
    "  (coalesce(sum(mem), 0) + $3) / (count(*) + 1), (coalesce(sum(queue), 0) + $4) / (count(*) " \
    "+ 1),"                                                                                        \
    "  EXISTS (SELECT 1 FROM events WHERE launch_at > now() - make_interval(mins => $6)"           \
    "   AND launch_at < now() + make_interval(mins => $5))"                                        \
    " FROM usher_api_hosts WHERE id <> $1 AND heartbeat_at > now() - interval '15 seconds'"

struct api_fleet {
    api_loop *loop;
    struct event *timer;
    usher_api_scale *policy;
    char id[320];
    double cpu_s;    /* this process's CPU seconds at the last sample */
    double wall_s;   /* monotonic seconds at the last sample */
    double cpu, mem; /* this instance's last sample */
    int queue;
    bool fleet_known; /* the last read answered */
    int instances, desired;
    double fleet_cpu, fleet_mem, fleet_queue;
    bool launch;
    bool reading, closing;
};

static double now_s(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * This instance's CPU use since the last sample, of all the host's cores,
 * and its resident memory, of the host's.
 */
static void measure(api_fleet *f)
{
    double cpu = f->cpu_s, rss = 0, wall = now_s(CLOCK_MONOTONIC), host = usher_host_memory_bytes();
    double use = 0;

    if (!usher_proc_usage(getpid(), &cpu, &rss))
        cpu = f->cpu_s;
    if (wall > f->wall_s)
        use = (cpu - f->cpu_s) / (wall - f->wall_s) / (double)usher_host_cores();
    f->cpu_s = cpu;
    f->wall_s = wall;
    f->cpu = use < 0 ? 0 : use > 1 ? 1 : use;
    f->mem = host > 0 ? rss / host : 0;
}

static void fleet_read(PGresult *res, const char *errmsg, void *arg)
{
    api_fleet *f = arg;
    const usher_config *cfg;
    usher_api_scale_conf conf;

    (void)errmsg;
    f->reading = false;
    if (f->closing) {
        usher_api_scale_free(f->policy);
        free(f);
        return;
    }
    f->fleet_known = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (!f->fleet_known)
        return;
    f->instances = atoi(PQgetvalue(res, 0, 0));
    f->fleet_cpu = strtod(PQgetvalue(res, 0, 1), NULL);
    f->fleet_mem = strtod(PQgetvalue(res, 0, 2), NULL);
    f->fleet_queue = strtod(PQgetvalue(res, 0, 3), NULL);
    f->launch = PQgetvalue(res, 0, 4)[0] == 't';
    cfg = atomic_load(&f->loop->srv->cfg);
    conf = usher_api_scale_seed(usher_config_event_tier_max(cfg->api_scale_tier));
    usher_api_scale_observe(
        f->policy, &(usher_api_scale_sample){ (int64_t)(now_s(CLOCK_REALTIME) * 1000), f->fleet_cpu,
                                              f->fleet_mem, f->fleet_queue });
    f->desired = usher_api_scale_desired(f->policy, &conf, f->instances, f->launch,
                                         (int64_t)(now_s(CLOCK_REALTIME) * 1000));
}

static void sample(evutil_socket_t fd, short what, void *arg)
{
    api_fleet *f = arg;
    const usher_config *cfg = atomic_load(&f->loop->srv->cfg);
    int nloops = 0;
    api_loop *const *loops = api_server_loops(f->loop->srv, &nloops);
    char cpu[32], mem[32], queue[16], before[16], after[16];
    const char *params[] = { f->id, cpu, mem, queue, before, after };

    (void)fd;
    (void)what;
    measure(f);
    f->queue = 0;
    for (int i = 0; i < nloops; i++)
        f->queue += atomic_load(&loops[i]->inflight);
    if (f->reading)
        return; /* the last read still waits for a connection */
    snprintf(cpu, sizeof(cpu), "%.4f", f->cpu);
    snprintf(mem, sizeof(mem), "%.4f", f->mem);
    snprintf(queue, sizeof(queue), "%d", f->queue);
    snprintf(before, sizeof(before), "%d", cfg->api_launch_hold_before_min);
    snprintf(after, sizeof(after), "%d", cfg->api_launch_hold_after_min);
    f->reading = true; /* first: fleet_read may run within the call */
    if (api_pgpool_query(f->loop->pg, FLEET_SQL, 6, params, fleet_read, f) != USHER_OK) {
        f->reading = false;
        f->fleet_known = false;
    }
}

usher_err api_fleet_start(api_loop *loop, api_fleet **out)
{
    api_fleet *f = usher_calloc(1, sizeof(*f));
    struct timeval every = { FLEET_READ_S, 0 };
    char host[256];
    double rss;

    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    snprintf(f->id, sizeof(f->id), "%s:%d", host, (int)getpid());
    f->loop = loop;
    f->wall_s = now_s(CLOCK_MONOTONIC);
    if (!usher_proc_usage(getpid(), &f->cpu_s, &rss))
        f->cpu_s = 0;
    if (usher_api_scale_new(&f->policy) != USHER_OK) {
        free(f);
        return USHER_ERR_NOMEM;
    }
    f->timer = usher_need(event_new(loop->base, -1, EV_PERSIST, sample, f));
    if (event_add(f->timer, &every) != 0) {
        api_fleet_free(f);
        return USHER_ERR_SYSTEM;
    }
    *out = f;
    return USHER_OK;
}

int api_fleet_render(const api_fleet *f, struct evbuffer *out)
{
    char fleet[512] = "", instances[64] = "", launch[64] = "", desired[64] = "";

    /* Until the first read answers the families have no sample. */
    if (f->fleet_known) {
        snprintf(fleet, sizeof(fleet),
                 "usher_api_fleet_average{signal=\"cpu\"} %.4f\n"
                 "usher_api_fleet_average{signal=\"memory\"} %.4f\n"
                 "usher_api_fleet_average{signal=\"requests_waiting\"} %.2f\n",
                 f->fleet_cpu, f->fleet_mem, f->fleet_queue);
        snprintf(instances, sizeof(instances), "usher_api_fleet_instances %d\n", f->instances);
        snprintf(launch, sizeof(launch), "usher_api_launch_hold %d\n", f->launch ? 1 : 0);
        snprintf(desired, sizeof(desired), "usher_api_desired_instances %d\n", f->desired);
    }
    return evbuffer_add_printf(
               out,
               "# HELP usher_api_cpu_ratio This usher-api's CPU use over the last %d s, of all the"
               " host's cores (0..1).\n"
               "# TYPE usher_api_cpu_ratio gauge\nusher_api_cpu_ratio %.4f\n"
               "# HELP usher_api_memory_ratio This usher-api's resident memory, of the host's"
               " (0..1).\n"
               "# TYPE usher_api_memory_ratio gauge\nusher_api_memory_ratio %.4f\n"
               "# HELP usher_api_fleet_instances usher-api instances heard from in the last 15 s.\n"
               "# TYPE usher_api_fleet_instances gauge\n%s"
               "# HELP usher_api_fleet_average The fleet's average CPU use, memory use and"
               " requests in flight per instance: the scaling rules' inputs.\n"
               "# TYPE usher_api_fleet_average gauge\n%s"
               "# HELP usher_api_launch_hold 1 while an event's registration launch holds"
               " scale-in.\n"
               "# TYPE usher_api_launch_hold gauge\n%s"
               "# HELP usher_api_desired_instances The usher-api instances the fleet should have"
               " (engine/api_scale.h), for an outside autoscaler.\n"
               "# TYPE usher_api_desired_instances gauge\n%s",
               FLEET_READ_S, f->cpu, f->mem, instances, fleet, launch, desired) < 0
               ? -1
               : 0;
}

void api_fleet_free(api_fleet *f)
{
    if (f == NULL)
        return;
    if (f->timer != NULL)
        event_free(f->timer);
    f->timer = NULL;
    if (f->reading) {
        f->closing = true; /* fleet_read frees it when the pool answers the read */
        return;
    }
    usher_api_scale_free(f->policy);
    free(f);
}
