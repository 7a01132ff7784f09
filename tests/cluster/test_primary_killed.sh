#!/usr/bin/env bash
# The PostgreSQL primary dies during a registration storm through HAProxy:
# kill -9 of its postmaster and its link cut. pg_auto_failover promotes the
# synchronous standby; usher-api and usher-worker on every host reconnect by
# themselves (nothing is restarted). Clients retry with their Idempotency-Key.
# Measured: RTO, the longest time without a successful registration, and
# RPO, registrations acknowledged (201) that are missing afterwards: 0.
# Then the old primary's link comes back and it rejoins as the new standby.
#
# Functions called through wait_for look unreachable to shellcheck.
# shellcheck disable=SC2317 source=tests/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENTS=6
BEFORE=${PRIMARY_KILLED_BEFORE:-100} # registrations acknowledged before the kill
AFTER=${PRIMARY_KILLED_AFTER:-100}   # and after the promotion, before the storm stops
RTO_MAX_S=30
trap 'storm_stop 2>/dev/null || true; rm -rf "$STORM_DIR"' EXIT

primary=$("$BED" node-state pg1 | grep -q '^primary' && echo pg1 || echo pg2)
standby=$([[ $primary == pg1 ]] && echo pg2 || echo pg1)
"$BED" node-state "$standby" | grep -q '^secondary secondary$' || abort "$standby is not a healthy standby: $("$BED" node-state "$standby")"
say "primary $primary, synchronous standby $standby"

read -r EVENT TT <<<"$(new_event 100000)"
storm_start "$CLIENTS" 0 "$EVENT" "$TT"
wait_for 120 acked_at_least "$BEFORE" || abort "only $(storm_acked_count) registrations in 120 s before the kill"

# The kill: the cable (its end on the bridge) and the postmaster within a
# millisecond, so that no client sees the host refuse before it vanishes;
# then the host's own end of the link too.
PGPID=$(head -n 1 "$USHER_CLUSTER_DIR/$primary/pgdata/postmaster.pid")
ip link set "usher-$primary" down
kill -KILL "$PGPID"
KILL_MS=$(now_ms)
"$BED" link "$primary" down
ACKED_AT_KILL=$(storm_acked_count)
say "killed postmaster $PGPID on $primary and cut its link with $ACKED_AT_KILL registrations acknowledged"

promoted() { "$BED" node-state "$standby" | grep -Eq '^(wait_primary|primary) (wait_primary|primary)$'; }
wait_for 90 promoted || fail "$standby not promoted within 90 s: $("$BED" node-state "$standby")"
say "$standby promoted $((($(now_ms) - KILL_MS) / 1000)) s after the kill ($("$BED" node-state "$standby"))"
TARGET=$(($(storm_acked_count) + AFTER))
wait_for 120 acked_at_least "$TARGET" || fail "registrations stalled after the promotion: $(storm_acked_count) acknowledged"
storm_stop
storm_wait

# RTO: the longest gap between two successive acknowledgements, over the storm.
RTO_MS=$(storm_lines | awk '$3 == 201 {print $1}' | sort -n |
    awk 'NR > 1 && $1 - prev > gap {gap = $1 - prev} {prev = $1} END {printf "%d", gap / 1000}')
say "RTO (longest time without a successful registration): $RTO_MS ms"
check_le "RTO in seconds" "$RTO_MAX_S" $((RTO_MS / 1000))
say "answers while the primary was gone: $(storm_count 503) x 503, $(storm_count 502) x 502, $(storm_count 504) x 504, $(storm_count 000) cut or timed out"

# RPO: every acknowledged registration is there, once, with the id the client was given.
storm_acked >"$STORM_DIR/acked"
ACKED=$(wc -l <"$STORM_DIR/acked")
sql "SELECT substr(split_part(email, '@', 1), 3), id FROM registrations
     WHERE event_id = $EVENT" | tr '|' ' ' | sort >"$STORM_DIR/stored"
say "registrations acknowledged: $ACKED (by key: $(cut -d' ' -f1 "$STORM_DIR/acked" | sort -u | wc -l))"
check "RPO: acknowledged registrations missing" 0 "$(comm -23 "$STORM_DIR/acked" "$STORM_DIR/stored" | wc -l)"
check "registrations stored that no client was acknowledged" 0 "$(comm -13 "$STORM_DIR/acked" "$STORM_DIR/stored" | wc -l)"
check "attendees registered twice" 0 "$(sql "SELECT count(*) FROM (SELECT email FROM registrations
     WHERE event_id = $EVENT GROUP BY email HAVING count(*) > 1) d")"
check "seats sold" "$ACKED" "$(sql "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = $TT")"
check "clients that gave up" 0 "$(storm_count gave-up)"
check "other answers (not 201, 5xx or a cut)" 0 "$(storm_lines | awk '$3 !~ /^(201|502|503|504|000|gave-up)$/' | wc -l)"

# Every Usher process is connected to the new primary, none restarted.
connected() { [[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE host(client_addr) = '$(addr "$1")'")" -gt 0 ]]; }
for host in api1 api2 worker1 worker2; do
    wait_for 60 connected "$host" || fail "$host has no connection to the new primary"
done
check "usher processes restarted" 0 "$(for h in api1 api2 worker1 worker2; do
    pid=$(cat "$USHER_CLUSTER_DIR/$h/usher.pid")
    kill -0 "$pid" 2>/dev/null || echo "$h"
done | wc -l)"
wait_for 30 "$BED" lb-up || true
check "API hosts behind HAProxy" "api1 api2" "$("$BED" lb-up)"
# The workers run the storm's ticket and mail jobs on the new primary.
chain_left() { sql "SELECT count(*) FROM usher_jobs WHERE kind IN ('pdf.ticket', 'email.send')
    AND state IN ('available', 'running')"; }
chain_done() { [[ "$(chain_left)" == 0 ]]; }
wait_for 180 chain_done || fail "ticket and mail jobs still waiting after 180 s: $(chain_left)"
check "ticket and mail jobs dead" 0 "$(sql "SELECT count(*) FROM usher_jobs WHERE kind IN ('pdf.ticket', 'email.send') AND state = 'dead'")"

# The old primary comes back as the new standby.
"$BED" link "$primary" up
rejoined() { "$BED" node-state "$primary" | grep -q '^secondary secondary$'; }
START=$(now_ms)
wait_for 180 rejoined || fail "$primary did not rejoin as a standby within 180 s: $("$BED" node-state "$primary")"
say "$primary is the standby again $((($(now_ms) - START) / 1000)) s after its link came back"
in_sync() { "$PSQL" -X -tA "$USHER_CLUSTER_DATABASE_URL" -c "SELECT sync_state FROM pg_stat_replication" | grep -Eq '^(sync|quorum)$'; }
wait_for 120 in_sync || fail "replication to $primary is not synchronous"
standby_count() { "$PSQL" -X -tA -h "$(addr "$primary")" -U postgres -d usher -c \
    "SELECT count(*) FROM registrations WHERE event_id = $EVENT"; }
caught_up() { [[ "$(standby_count)" == "$ACKED" ]]; }
wait_for 60 caught_up || true
check "registrations on the rejoined standby $primary" "$ACKED" "$(standby_count)"
# The new primary leaves wait_primary once the monitor has seen its standby back.
new_primary_settled() { "$BED" node-state "$standby" | grep -q '^primary primary$'; }
wait_for 60 new_primary_settled || true
check "replication" "$standby primary, $primary secondary" \
    "$standby $("$BED" node-state "$standby" | cut -d' ' -f1), $primary $("$BED" node-state "$primary" | cut -d' ' -f1)"
finish
