#!/usr/bin/env bash
# Reads from the synchronous standby ([database] read_url on the API hosts:
# both PostgreSQL hosts, target_session_attrs=standby, so it follows a
# failover). Public session reads (GET /v1/sessions/{id}) sent straight to
# api1 are answered by the standby while it is fresh; counted by api1's
# usher_db_reads_total{server="replica"|"primary"} (/metrics), exactly:
#   fresh               every read from the replica
#   replay paused       (pg_wal_replay_pause() on the standby; commits go on,
#                       synchronous_commit waits for the flush, not the
#                       replay) the replica is skipped: every read from the
#                       primary, none failed
#   replay resumed      from the replica again
#   standby stopped     (kill -9 of every process on pg2) every read answered
#                       by the primary, none failed. Commits wait until
#                       pg_auto_failover drops synchronous replication
#                       (the primary goes wait_primary; measured)
#   standby back        its keeper restarted: it rejoins as the synchronous
#                       standby, and reads go to it again
# The bed is left as it was found (pg2 the synchronous standby) for the
# tests after this one. Skipped (exit 77) with a build of Usher that has no
# read_url (the bed then configures none).
#
# Functions called through wait_for look unreachable to shellcheck.
# shellcheck disable=SC2317 source=tests/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

grep -q '^read_url' "$USHER_CLUSTER_DIR/api1/usher.conf" || {
    say "SKIPPED: this build of Usher has no [database] read_url, so the bed gave the API hosts none"
    exit 77
}

READS=50
API=api1
METRICS=http://$(addr "$API"):8081/metrics

primary=$("$BED" node-state pg1 | grep -q '^primary' && echo pg1 || echo pg2)
standby=$([[ $primary == pg1 ]] && echo pg2 || echo pg1)
"$BED" node-state "$standby" | grep -q '^secondary secondary$' || abort "$standby is not a healthy standby: $("$BED" node-state "$standby")"
say "primary $primary, standby $standby"

# metric NAME: its value on api1 (labels included in NAME), 0 if absent.
metric() {
    curl -fsS --max-time 5 "$METRICS" | awk -v m="$1" '$1 == m {print $2; found = 1} END {if (!found) print 0}'
}
reads_from() { metric "usher_db_reads_total{server=\"$1\"}"; }
replica_in_use() { [[ "$(metric usher_db_replica_in_use)" != 0 ]]; }
replica_skipped() { [[ "$(metric usher_db_replica_in_use)" == 0 ]]; }

on_standby() { "$PSQL" -X -q -tA -v ON_ERROR_STOP=1 -h "$(addr "$standby")" -U postgres -d usher -c "$1"; }

# read_sessions: READS public session reads through api1; prints how many answered 200.
read_sessions() {
    local i ok=0
    for ((i = 0; i < READS; i++)); do
        [[ "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
            "http://$(addr "$API"):8080/v1/sessions/$SESSION")" == 200 ]] && ok=$((ok + 1))
    done
    echo "$ok"
}

# phase NAME EXPECT_REPLICA EXPECT_PRIMARY: READS reads, checked against the counters' deltas.
phase() {
    local r0 p0 ok
    r0=$(reads_from replica)
    p0=$(reads_from primary)
    ok=$(read_sessions)
    check "$1: reads answered 200" "$READS" "$ok"
    check "$1: reads from the replica" "$2" "$(($(reads_from replica) - r0))"
    check "$1: reads from the primary" "$3" "$(($(reads_from primary) - p0))"
}

read -r _ TOKEN <<<"$(organizer_token)" || abort "no organizer token"
EVENT=$(api_event api1) || abort "no event created through api1"
SESSION=$(api_session api1 "$EVENT" "Replica reads $RUN_ID") || abort "no session created through api1"
TOKEN=
# The session is on the standby (synchronous commit) before the reads count.
wait_for 30 replica_in_use || abort "api1 never used its replica (usher_db_replica_in_use 0)"

phase "fresh replica" "$READS" 0

on_standby "SELECT pg_wal_replay_pause()" >/dev/null
START=$(now_ms)
wait_for 30 replica_skipped || fail "api1 still reads the replica 30 s after replay was paused"
say "replay paused on $standby: api1 stopped reading it after $(($(now_ms) - START)) ms"
sql "UPDATE sessions SET title = title WHERE id = $SESSION" >/dev/null || fail "a commit while replay was paused"
phase "replay paused" 0 "$READS"

on_standby "SELECT pg_wal_replay_resume()" >/dev/null
START=$(now_ms)
wait_for 30 replica_in_use || fail "api1 did not read the replica again within 30 s of the resume"
say "replay resumed: api1 reads it again after $(($(now_ms) - START)) ms"
phase "replay resumed" "$READS" 0

# The standby stopped: every process on its host killed.
"$BED" kill-host "$standby"
KILL_MS=$(now_ms)
wait_for 10 host_empty "$standby" || fail "processes left on $standby after kill -9"
# A commit sent now waits for a standby that is gone, until the monitor drops
# synchronous replication; the reads meanwhile do not wait.
COMMITTED=$(mktemp)
trap 'rm -f "$COMMITTED"' EXIT
(sql "UPDATE sessions SET title = title WHERE id = $SESSION" >/dev/null && now_ms >"$COMMITTED") &
COMMIT_PID=$!
phase "standby stopped" 0 "$READS"
wait "$COMMIT_PID" || fail "a commit after the standby was stopped"
say "a commit sent as the standby stopped returned after $(($(cat "$COMMITTED") - KILL_MS)) ms (pg_auto_failover: $primary $("$BED" node-state "$primary" | cut -d' ' -f1))"

# Back: its keeper restarts PostgreSQL, it catches up and is synchronous again.
"$BED" keeper-run "$standby"
START=$(now_ms)
rejoined() { "$BED" node-state "$standby" | grep -q '^secondary secondary$' && "$BED" node-state "$primary" | grep -q '^primary primary$'; }
wait_for 120 rejoined || fail "$standby did not rejoin as the standby within 120 s: $("$BED" node-state "$standby")"
in_sync() { sql "SELECT sync_state FROM pg_stat_replication" | grep -Eq '^(sync|quorum)$'; }
wait_for 60 in_sync || fail "replication to $standby is not synchronous again"
say "$standby the synchronous standby again $((($(now_ms) - START) / 1000)) s after its restart"
wait_for 60 replica_in_use || fail "api1 did not read the replica again within 60 s of its return"
phase "standby back" "$READS" 0
finish
