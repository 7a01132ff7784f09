# shellcheck shell=bash disable=SC2034
# Shared by the tests of tests/cluster/ (sourced). A test talks to the bed
# through scripts/cluster.sh and to PostgreSQL through the bed's multi-host
# URL, so it always reaches the primary of the moment.
#
# A test prints what it counts, one "name: value" line each, then
# "RESULT: ok" or "RESULT: FAILED (n checks)" and exits 0 or 1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BED=$ROOT/scripts/cluster.sh
PSQL=/usr/lib/postgresql/15/bin/psql
eval "$("$BED" env)"
TEST_NAME=$(basename "$0" .sh)
CHECKS_FAILED=0
# A name for this run's rows and files.
RUN_ID=$(date +%s)$$

say() { printf '%s: %s\n' "$TEST_NAME" "$*"; }

# sql QUERY: one value (or rows, tab-separated) from the primary of the moment.
sql() { "$PSQL" -X -q -tA -v ON_ERROR_STOP=1 "$USHER_CLUSTER_DATABASE_URL" -c "$1"; }

# check WHAT EXPECTED ACTUAL: prints the count; a mismatch fails the test.
check() {
    if [[ "$2" == "$3" ]]; then
        say "$1: $3"
    else
        say "$1: $3 (expected $2) FAILED"
        CHECKS_FAILED=$((CHECKS_FAILED + 1))
    fi
}

# check_le WHAT MAX ACTUAL
check_le() {
    if (($3 <= $2)); then
        say "$1: $3 (at most $2)"
    else
        say "$1: $3 (expected at most $2) FAILED"
        CHECKS_FAILED=$((CHECKS_FAILED + 1))
    fi
}

fail() {
    say "$* FAILED"
    CHECKS_FAILED=$((CHECKS_FAILED + 1))
}

# Ends the test: a line with the verdict, exit status 0 or 1.
finish() {
    if ((CHECKS_FAILED == 0)); then
        say "RESULT: ok"
        exit 0
    fi
    say "RESULT: FAILED ($CHECKS_FAILED checks)"
    exit 1
}

# A step that cannot go on: the verdict now.
abort() {
    fail "$*"
    finish
}

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# wait_for SECONDS CMD...: polls every 0.2 s; false past the deadline.
wait_for() {
    local end=$(($(now_ms) + $1 * 1000))
    shift
    until "$@" >/dev/null 2>&1; do
        (($(now_ms) < end)) || return 1
        sleep 0.2
    done
}

addr() { "$BED" addr "$1"; }

leader_is() { [[ "$("$BED" lock-holder)" == "$(addr "$1")" ]]; }

# Every process on HOST gone (after kill-host).
host_empty() { [[ -z "$(ip netns pids "usher-$1")" ]]; }

# ---------------------------------------------------------------- events

# new_event CAPACITY: "EVENT_ID TICKET_TYPE_ID" of a new event with one ticket type.
new_event() {
    sql "WITH o AS (INSERT INTO organizers (name) VALUES ('cluster $RUN_ID') RETURNING id),
              e AS (INSERT INTO events (organizer_id, name, starts_at, ends_at)
                    SELECT id, 'Cluster $TEST_NAME $RUN_ID', now(), now() + interval '1 day' FROM o
                    RETURNING id)
         INSERT INTO ticket_types (event_id, name, capacity) SELECT id, 'GA', $1 FROM e
         RETURNING event_id || ' ' || id"
}

# ---------------------------------------------------------------- the storm

# Clients register attendees through HAProxy, each attendee with its own
# Idempotency-Key, retried with the same key (and body) after a cut
# connection, a timeout, 502, 503 or 504 until an answer, for at most
# STORM_RETRY_S. Every attempt is a line of the client's log:
#   EPOCH_US KEY STATUS [REGISTRATION_ID]
# Keys (and emails) are RUN-CLIENT-I, so a mail's recipient names its key.
STORM_DIR=
STORM_RETRY_S=${STORM_RETRY_S:-120}
STORM_PIDS=()

storm_client() {
    local c=$1 per=$2 event=$3 tt=$4 i=0 key status body deadline now
    local log=$STORM_DIR/client-$c.log out=$STORM_DIR/body-$c
    while [[ ! -e "$STORM_DIR/stop" ]] && ((per == 0 || i < per)); do
        i=$((i + 1))
        key=$RUN_ID-$c-$i
        body="{\"ticket_type_id\":$tt,\"name\":\"Attendee $key\",\"email\":\"c-$key@example.org\"}"
        deadline=$(($(now_ms) + STORM_RETRY_S * 1000))
        while :; do
            status=$(curl -sS -o "$out" -D "$out.head" -w '%{http_code}' --max-time 10 -X POST \
                -H 'Content-Type: application/json' -H "Idempotency-Key: $key" \
                --data "$body" "$USHER_CLUSTER_LB/v1/events/$event/registrations" 2>/dev/null) || true
            [[ "$status" =~ ^[0-9]{3}$ ]] || status=000
            now=${EPOCHREALTIME/./}
            if [[ "$status" == 201 ]]; then
                echo "$now $key 201 $(grep -o '"registration_id": *[0-9]*' "$out" | grep -o '[0-9]*$')" \
                    "$(grep -qi '^Idempotent-Replayed: *true' "$out.head" && echo replayed)" >>"$log"
                break
            fi
            echo "$now $key $status" >>"$log"
            case $status in
            000 | 502 | 503 | 504) ;;
            *) break ;;
            esac
            if ((now / 1000 >= deadline)); then
                echo "$now $key gave-up" >>"$log"
                break
            fi
            sleep 0.2
        done
    done
}

# storm_start CLIENTS PER_CLIENT EVENT TICKET_TYPE (PER_CLIENT 0: until storm_stop)
storm_start() {
    local c
    STORM_DIR=$(mktemp -d)
    STORM_PIDS=()
    for ((c = 1; c <= $1; c++)); do
        storm_client "$c" "$2" "$3" "$4" &
        STORM_PIDS+=($!)
    done
}

storm_stop() { touch "$STORM_DIR/stop"; }

storm_wait() {
    local pid
    for pid in "${STORM_PIDS[@]}"; do
        wait "$pid" || true
    done
}

storm_lines() { cat "$STORM_DIR"/client-*.log 2>/dev/null || true; }

# Acknowledged registrations: "KEY ID" per 201 answer.
storm_acked() { storm_lines | awk '$3 == 201 {print $2, $4}' | sort; }

storm_count() { storm_lines | awk -v s="$1" '$3 == s' | wc -l; }

storm_acked_count() { storm_count 201; }

storm_replayed_count() { storm_lines | awk '$3 == 201 && $5 == "replayed"' | wc -l; }

acked_at_least() { (($(storm_acked_count) >= $1)); }

# ---------------------------------------------------------------- the HTTP API

# organizer_token: "ORGANIZER_ID TOKEN" of a new organizer (usherctl on worker1).
organizer_token() {
    local org token
    org=$("$BED" ctl organizer create "cluster $TEST_NAME $RUN_ID") || return 1
    token=$("$BED" ctl token create --role organizer --organizer "$org" --name "$TEST_NAME" 2>/dev/null) || return 1
    echo "$org $token"
}

# api HOST METHOD PATH [JSON]: a request straight to an API host (no HAProxy),
# with $TOKEN if set; the body on stdout, and false unless 2xx.
api() {
    local host=$1 method=$2 path=$3 body=${4:-}
    local -a args=(-fsS --max-time 10 -X "$method")
    [[ -z "${TOKEN:-}" ]] || args+=(-H "Authorization: Bearer $TOKEN")
    [[ -z "$body" ]] || args+=(-H 'Content-Type: application/json' --data "$body")
    curl "${args[@]}" "http://$(addr "$host"):8080$path"
}

# api_event HOST: the id of a new event of $TOKEN's organizer, created through HOST.
api_event() {
    api "$1" POST /v1/events "{\"name\":\"Cluster $TEST_NAME $RUN_ID\",
        \"starts_at\":\"2030-05-04T09:00:00Z\",\"ends_at\":\"2030-05-05T18:00:00Z\"}" | jq -er .id
}

# api_session HOST EVENT TITLE: the id of a new session, created through HOST.
api_session() {
    api "$1" POST "/v1/events/$2/sessions" "{\"title\":\"$3\",
        \"starts_at\":\"2030-05-04T09:00:00Z\",\"ends_at\":\"2030-05-04T10:00:00Z\"}" | jq -er .id
}
