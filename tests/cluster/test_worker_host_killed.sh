#!/usr/bin/env bash
# kill -9 of every Usher process on worker1 in the middle of a 10,000-job
# drain that both worker hosts serve: worker2 rescues the expired leases and
# finishes every job, maintenance leadership moves from worker1 to worker2,
# 0 jobs lost, 0 dead, none completed twice. A job that worker1 was running
# at the kill ran again on worker2 after its rescue (at-least-once: its
# completion never reached the database); every other job ran exactly once.
#
# Each test.noop job appends "ID ATTEMPT START_US" to runs-RUN.log, a path
# relative to the worker's directory, so each host keeps its own log.
# Functions called through wait_for look unreachable to shellcheck.
# shellcheck disable=SC2317 source=tests/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

JOBS=10000
DRAIN_DEADLINE=300
LOGNAME=runs-$RUN_ID.log
W1LOG=$USHER_CLUSTER_DIR/worker1/$LOGNAME
W2LOG=$USHER_CLUSTER_DIR/worker2/$LOGNAME
TMP=$(mktemp -d)
trap 'rm -rf "$TMP" "$W1LOG" "$W2LOG"' EXIT

completed_total() { sql "SELECT coalesce(sum(completed), 0) FROM usher_queue_stats WHERE queue = 'work'"; }
failed_total() { sql "SELECT coalesce(sum(failed), 0) FROM usher_queue_stats WHERE queue = 'work'"; }
left() { sql "SELECT count(*) FROM usher_jobs WHERE payload->>'run' = '$RUN_ID' AND state IN ('available', 'running')"; }
drained() { [[ "$(left)" == 0 ]]; }
done_at_least() { (($(completed_total) - COMPLETED0 >= $1)); }

# worker1 must lead when the test begins: if worker2 took over (a previous
# test restarted worker1), restart worker2 so that worker1 takes the lock.
if ! leader_is worker1; then
    say "worker2 leads; restarting it so that worker1 leads"
    "$BED" kill-host worker2
    wait_for 10 host_empty worker2 || abort "worker2's processes survived SIGKILL"
    wait_for 30 leader_is worker1 || abort "worker1 did not take the maintenance lock"
    "$BED" start-usher worker2
fi
W1PID=$(cat "$USHER_CLUSTER_DIR/worker1/usher.pid")
say "maintenance leader before: $("$BED" lock-holder) (worker1)"

COMPLETED0=$(completed_total)
FAILED0=$(failed_total)
sql "SELECT id FROM usher_enqueue_templates((SELECT jsonb_agg(jsonb_build_object(
        'queue', 'work', 'kind', 'test.noop', 'priority', 1, 'max_attempts', 5,
        'timeout_ms', 2000, 'payload', jsonb_build_object('log', '$LOGNAME', 'run', '$RUN_ID', 'n', g)))
        FROM generate_series(1, $JOBS) g))" >"$TMP/enqueued"
sql "SELECT usher_wake(ARRAY['work'])" >/dev/null
check "jobs enqueued" "$JOBS" "$(wc -l <"$TMP/enqueued")"

# The kill comes once a tenth is done, while worker1 holds running jobs.
wait_for 120 done_at_least $((JOBS / 10)) || abort "the drain did not reach $((JOBS / 10)) jobs in 120 s"
"$BED" kill-host worker1
KILL_US=${EPOCHREALTIME/./} # every process of worker1 has had its SIGKILL
wait_for 10 host_empty worker1 || abort "worker1's processes survived SIGKILL"
sql "SELECT id FROM usher_jobs WHERE payload->>'run' = '$RUN_ID' AND state = 'running'
     AND locked_by LIKE '%:$W1PID'" | sort -n >"$TMP/held"
say "completed before the kill: $(($(completed_total) - COMPLETED0)); leases worker1 held: $(wc -l <"$TMP/held")"

START=$(now_ms)
wait_for 60 leader_is worker2 || fail "worker2 did not take maintenance over within 60 s"
say "maintenance leader after: $("$BED" lock-holder) (worker2), $((($(now_ms) - START) / 1000)) s after the kill"
check "maintenance leader" "$(addr worker2)" "$("$BED" lock-holder)"
wait_for "$DRAIN_DEADLINE" drained || fail "jobs left after $DRAIN_DEADLINE s: $(left)"
say "drained $((($(now_ms) - START) / 1000)) s after the kill"
# The supervisors flush their completion counts in batches.
wait_for 30 done_at_least "$JOBS" || true

# Every job in the logs; which ran twice, and where.
cut -d' ' -f1 "$W1LOG" "$W2LOG" 2>/dev/null | sort -n | uniq -c | awk '{print $2, $1}' >"$TMP/runs"
awk '{print $1}' "$TMP/runs" >"$TMP/ran"
awk '$2 > 1 {print $1}' "$TMP/runs" >"$TMP/twice"
check "jobs lost (enqueued, never ran)" 0 "$(sort -n "$TMP/enqueued" | comm -23 - "$TMP/ran" | wc -l)"
check "jobs dead" 0 "$(sql "SELECT count(*) FROM usher_jobs WHERE payload->>'run' = '$RUN_ID' AND state = 'dead'")"
check "jobs left waiting or running" 0 "$(left)"
check "jobs completed (queue statistics)" "$JOBS" "$(($(completed_total) - COMPLETED0))"
check "jobs run three times or more" 0 "$(awk '$2 > 2' "$TMP/runs" | wc -l)"
check "jobs run twice that worker1 did not hold at the kill" 0 "$(comm -23 "$TMP/twice" "$TMP/held" | wc -l)"
check "runs started on worker1 after the kill" 0 "$(awk -v k="$KILL_US" '$3 > k' "$W1LOG" | wc -l)"
say "ran on worker1: $(wc -l <"$W1LOG"), on worker2: $(wc -l <"$W2LOG"), on worker2 after the kill: $(awk -v k="$KILL_US" '$3 > k' "$W2LOG" | wc -l)"
say "held by worker1 at the kill and run again after rescue: $(wc -l <"$TMP/twice") of $(wc -l <"$TMP/held") held; rescued attempts counted failed: $(($(failed_total) - FAILED0))"
# A rescued job runs again as a later attempt, on worker2.
while read -r id; do
    a1=$(awk -v id="$id" '$1 == id {print $2}' "$W1LOG")
    a2=$(awk -v id="$id" '$1 == id {print $2}' "$W2LOG")
    [[ -n "$a1" && -n "$a2" && "$a2" -gt "$a1" ]] || fail "job $id ran twice but not as worker1 then a later attempt on worker2 ($a1, $a2)"
done <"$TMP/twice"

# The bed as it was: worker1 back (worker2 keeps the lead).
"$BED" start-usher worker1
finish
