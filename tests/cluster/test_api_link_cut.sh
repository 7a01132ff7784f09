#!/usr/bin/env bash
# api1's link cut (ip link set ... down) during a registration storm through
# HAProxy for a ticket type with fewer seats than attendees: HAProxy stops
# sending to api1 within a few seconds (its health checks on /readyz fail);
# clients whose request was cut off retry it with their Idempotency-Key,
# through HAProxy, to api2. Counted afterwards: no attendee registered twice,
# none acknowledged and lost, every seat sold once and no more (no oversell),
# and everyone else told "sold out". Then api1's link comes back and
# HAProxy sends to it again.
#
# Functions called through wait_for look unreachable to shellcheck.
# shellcheck disable=SC2317 source=tests/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENTS=6
PER_CLIENT=40
SEATS=150
DETECT_MAX_S=5
trap 'storm_stop 2>/dev/null || true; rm -rf "$STORM_DIR"; "$BED" link api1 up 2>/dev/null || true' EXIT

# Field 8 of HAProxy's CSV is a server's total sessions, 18 its status.
lb_field() {
    curl -fsS --max-time 2 "$USHER_CLUSTER_LB_STATS" |
        awk -F, -v s="$1" -v f="$2" '$1 == "api" && $2 == s {print $f}'
}
api1_out() { [[ "$(lb_field api1 18)" != UP ]]; }
api1_in() { [[ "$(lb_field api1 18)" == UP ]]; }

wait_for 60 api1_in || abort "api1 is not UP behind HAProxy before the test"
read -r EVENT TT <<<"$(new_event "$SEATS")"
storm_start "$CLIENTS" "$PER_CLIENT" "$EVENT" "$TT"
wait_for 120 acked_at_least 30 || abort "only $(storm_acked_count) registrations in 120 s before the cut"

# Requests in flight on api1 at the cut: registrations wait on a lock the
# test holds for a few seconds; once api1 has some waiting, its link goes.
# Those transactions commit when the lock goes, but their answers are lost
# with the link, so their clients time out and retry through api2, which
# must answer with the same registration.
"$PSQL" -X -q "$USHER_CLUSTER_DATABASE_URL" -c 'BEGIN' -c 'LOCK TABLE ticket_stripes IN EXCLUSIVE MODE' \
    -c 'SELECT pg_sleep(6)' -c 'COMMIT' >/dev/null &
HOLDER=$!
waiting_on_api1() { (($(sql "SELECT count(*) FROM pg_stat_activity WHERE host(client_addr) = '$(addr api1)'
    AND wait_event_type = 'Lock'") > 0)); }
wait_for 5 waiting_on_api1 || fail "no registration of api1 waited on the lock"
IN_FLIGHT=$(sql "SELECT count(*) FROM pg_stat_activity WHERE host(client_addr) = '$(addr api1)' AND wait_event_type = 'Lock'")
API1_BEFORE=$(lb_field api1 8)
"$BED" link api1 down
CUT_MS=$(now_ms)
wait_for 30 api1_out || fail "HAProxy still sends to api1 30 s after the cut"
DETECT_MS=$(($(now_ms) - CUT_MS))
API1_AT_DOWN=$(lb_field api1 8)
say "HAProxy took api1 out $DETECT_MS ms after the cut (status $(lb_field api1 18)); api1 sessions: $API1_BEFORE before, $API1_AT_DOWN when out"
check_le "seconds until HAProxy stopped sending to api1" "$DETECT_MAX_S" $((DETECT_MS / 1000))
wait "$HOLDER" || fail "the lock holder failed"
say "registrations in flight on api1 at the cut: $IN_FLIGHT"
storm_wait
check "sessions HAProxy sent to api1 once it was out" 0 $(($(lb_field api1 8) - API1_AT_DOWN))

storm_acked >"$STORM_DIR/acked"
sql "SELECT substr(split_part(email, '@', 1), 3), id FROM registrations
     WHERE event_id = $EVENT" | tr '|' ' ' | sort >"$STORM_DIR/stored"
ATTEMPTED=$((CLIENTS * PER_CLIENT))
check "attendees acknowledged (201)" "$SEATS" "$(cut -d' ' -f1 "$STORM_DIR/acked" | sort -u | wc -l)"
check "attendees told sold out (409)" $((ATTEMPTED - SEATS)) "$(storm_lines | awk '$3 == 409 {print $2}' | sort -u | wc -l)"
check "attendees acknowledged and then sold out" 0 "$(comm -12 <(cut -d' ' -f1 "$STORM_DIR/acked" | sort -u) <(storm_lines | awk '$3 == 409 {print $2}' | sort -u) | wc -l)"
check "acknowledged registrations missing" 0 "$(comm -23 "$STORM_DIR/acked" "$STORM_DIR/stored" | wc -l)"
check "registrations stored that no client was acknowledged" 0 "$(comm -13 "$STORM_DIR/acked" "$STORM_DIR/stored" | wc -l)"
check "registrations stored" "$SEATS" "$(wc -l <"$STORM_DIR/stored")"
check "seats sold (capacity $SEATS)" "$SEATS" "$(sql "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = $TT")"
check "clients that gave up" 0 "$(storm_count gave-up)"
check "other answers (not 201, 409, 5xx or a cut)" 0 "$(storm_lines | awk '$3 !~ /^(201|409|502|503|504|000|gave-up)$/' | wc -l)"
say "retries: $(storm_count 000) cut or timed out, $(storm_count 502) x 502, $(storm_count 503) x 503, $(storm_count 504) x 504"
# Cut off on api1, committed there, answered again by api2 from the key.
REPLAYED=$(storm_replayed_count)
say "registrations answered again from their Idempotency-Key after a retry: $REPLAYED"
((REPLAYED >= 1)) || fail "no retried registration was answered from its Idempotency-Key"

"$BED" link api1 up
START=$(now_ms)
wait_for 60 api1_in || fail "api1 not back behind HAProxy 60 s after its link came back"
say "api1 back behind HAProxy $((($(now_ms) - START) / 1000)) s after its link came back"
check "API hosts behind HAProxy" "api1 api2" "$("$BED" lb-up)"
finish
