/*
 * Failure handling. The decision (retry after backoff, dead, or snooze) is
 * made here in C by the pure retry module, from each job's kind policy and
 * attempt; the statement then writes all decisions at once, appends the
 * error with its attempt, start and end time and worker to the job's
 * history (the dashboard's attempts and their durations), gives the
 * attempt back on a snooze, and counts failed attempts in the per-minute
 * statistics.
 */
#include "fate.h"

#include <stdio.h>
#include <stdlib.h>

/* An error longer than this is cut: the history is for people to read. */
#define ERROR_MAX 4000

static const char fate_sql[] =
    "WITH input AS ("
    "  SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::bool[], $5::text[])"
    "  AS t(id, next, delay_ms, spend, error)),"
    " upd AS ("
    "  UPDATE usher_jobs j SET"
    "    state = CASE WHEN i.next = 'dead' THEN 'dead' ELSE 'available' END::usher_job_state,"
    "    run_at = CASE WHEN i.next = 'dead' THEN j.run_at"
    "             ELSE now() + i.delay_ms * interval '1 millisecond' END,"
    "    attempt = CASE WHEN i.spend THEN j.attempt ELSE j.attempt - 1 END,"
    "    errors = CASE WHEN i.error IS NULL THEN j.errors"
    "             ELSE j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempt,"
    "               'started_at', j.attempted_at, 'at', now(), 'error', i.error,"
    "               'worker', j.locked_by)) END,"
    "    finished_at = CASE WHEN i.next = 'dead' THEN now() END,"
    "    locked_by = NULL, locked_until = NULL"
    "  FROM input i"
    "  WHERE j.id = i.id AND j.state = 'running'"
    "    AND (j.locked_by = $6 OR ($6 IS NULL AND j.locked_until < now()))"
    "  RETURNING j.queue, i.spend),"
    " counted AS ("
    "  INSERT INTO usher_queue_stats AS s (queue, minute, shard, failed)"
    "  SELECT queue, date_trunc('minute', now()), pg_backend_pid() % 8, count(*)"
    "  FROM upd WHERE spend GROUP BY queue"
    "  ON CONFLICT (queue, minute, shard) DO UPDATE SET failed = s.failed + EXCLUDED.failed)"
    " SELECT count(*) FROM upd";

static const char *const next_names[] = {
    [USHER_NEXT_RETRY] = "retry",
    [USHER_NEXT_DEAD] = "dead",
    [USHER_NEXT_SNOOZE] = "snooze",
};

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t utf8_sequence(const unsigned char *s)
{
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xE0) == 0xC0 ? 2
                 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4
                                         : 0;

    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    }
    return len;
}

/*
 * Handlers' errors may hold anything (a server's reply, a cut message);
 * PostgreSQL refuses invalid UTF-8 and would fail the whole batch, so
 * every invalid byte becomes '?'.
 */
static void utf8_scrub(char *text)
{
    unsigned char *s = (unsigned char *)text;

    while (*s != '\0') {
        size_t len = utf8_sequence(s);

        if (len == 0) {
            *s++ = '?';
            continue;
        }
        s += len;
    }
}

static void add_result(usher_buf **cols, const usher_config *cfg, const usher_job_result *r)
{
    const usher_job *job = r->job;
    usher_retry_decision d =
        usher_retry_decide(usher_config_kind(cfg, job->kind), job->attempt, job->max_attempts,
                           r->outcome, r->delay_ms, arc4random());
    char error[ERROR_MAX + 1];

    usher_buf_array_int(cols[0], job->id);
    usher_buf_array_text(cols[1], next_names[d.next]);
    usher_buf_array_int(cols[2], d.delay_ms);
    usher_buf_array_text(cols[3], d.next == USHER_NEXT_SNOOZE ? "f" : "t");
    if (d.next == USHER_NEXT_SNOOZE) {
        usher_buf_array_text(cols[4], NULL);
        return;
    }
    snprintf(error, sizeof(error), "%s", r->error != NULL ? r->error : "failed");
    utf8_scrub(error);
    usher_buf_array_text(cols[4], error);
}

usher_err usher_fate_stmt(usher_stmt *s, const usher_config *cfg, const char *worker,
                          const usher_job_result *results, size_t n)
{
    usher_buf *cols[5];

    for (int i = 0; i < 5; i++)
        cols[i] = usher_stmt_array(s, i);
    for (size_t i = 0; i < n; i++)
        add_result(cols, cfg, &results[i]);
    usher_stmt_text(s, 5, worker);
    s->sql = fate_sql;
    return usher_stmt_finish(s, 6);
}
