#!/usr/bin/env bash
# Search on every API host: worker1 indexes (the index queue's pool runs
# there alone) and serves its index with xapian-replicate-server; each API
# host searches its own replica (xapian-replicate). An event and sessions
# created through api1's HTTP API are found by a search on api2 within a
# few seconds (the propagation time is measured, from the 201 to the first
# search on api2 that finds it); then api3, a host that joins late (its
# namespace, address, usher-api and an empty replica), catches up and
# serves the same searches with the same hits.
#
# Functions called through wait_for look unreachable to shellcheck.
# shellcheck disable=SC2317 source=tests/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHANGES=${SEARCH_CHANGES:-5}
FOUND_WITHIN_S=30       # a deadline, not the goal
MEDIAN_MAX_MS=5000      # the goal: a change searchable everywhere within 5 s
TAG=run$RUN_ID          # one word in every title of this run

read -r _ TOKEN <<<"$(organizer_token)" || abort "no organizer token"
[[ -n "$TOKEN" ]] || abort "no organizer token"

# hits HOST TYPE WORD: the search's "total" on HOST.
hits() {
    curl -fsS --max-time 5 "http://$(addr "$1"):8080/v1/search?q=$3&type=$2&limit=100" | jq -er .total
}
# ids HOST TYPE WORD: the hits' ids, in order.
ids() {
    curl -fsS --max-time 5 "http://$(addr "$1"):8080/v1/search?q=$3&type=$2&limit=100" | jq -r '.hits[].id' | xargs
}
finds() { [[ "$(hits "$1" "$2" "$3")" == "$4" ]]; }

# ms_until_found HOST TYPE WORD TOTAL SINCE_MS: polls every 50 ms.
ms_until_found() {
    local end=$(($(now_ms) + FOUND_WITHIN_S * 1000))
    until finds "$1" "$2" "$3" "$4" 2>/dev/null; do
        (($(now_ms) < end)) || return 1
        sleep 0.05
    done
    echo $(($(now_ms) - $5))
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

EVENT=$(api api1 POST /v1/events "{\"name\":\"Cluster $TAG\",
    \"starts_at\":\"2030-05-04T09:00:00Z\",\"ends_at\":\"2030-05-05T18:00:00Z\"}" | jq -er .id) ||
    abort "no event created through api1"
CREATED=$(now_ms)
if took=$(ms_until_found api2 event "$TAG" 1 "$CREATED"); then
    say "event $EVENT created through api1, found on api2 after $took ms"
else
    fail "event $EVENT not found on api2 within $FOUND_WITHIN_S s"
fi

TOOK=$(mktemp)
trap 'rm -f "$TOOK"' EXIT
for ((i = 1; i <= CHANGES; i++)); do
    word=zebra${RUN_ID}q$i
    api_session api1 "$EVENT" "Propagation $TAG $word" >/dev/null || abort "session $i not created through api1"
    CREATED=$(now_ms)
    if took=$(ms_until_found api2 session "$word" 1 "$CREATED"); then
        echo "$took" >>"$TOOK"
        say "session $i created through api1, found on api2 after $took ms (on api1: $(hits api1 session "$word") hit)"
    else
        fail "session $i not found on api2 within $FOUND_WITHIN_S s"
    fi
done
check "sessions found on api2" "$CHANGES" "$(hits api2 session "$TAG")"
check "sessions found on api1" "$CHANGES" "$(hits api1 session "$TAG")"
MEDIAN=$(median <"$TOOK")
say "propagation api1 -> api2: median $MEDIAN ms over $(wc -l <"$TOOK") changes (all: $(xargs <"$TOOK"))"
check_le "propagation median in ms" "$MEDIAN_MAX_MS" "${MEDIAN:-999999}"

# A host that joins late.
START=$(now_ms)
"$BED" add-api api3 >/dev/null || abort "api3 did not start"
READY=$(now_ms)
if took=$(ms_until_found api3 session "$TAG" "$CHANGES" "$READY"); then
    say "api3 ready $((READY - START)) ms after add-api; its replica caught up $took ms later"
else
    fail "api3 did not catch up within $FOUND_WITHIN_S s of being ready"
fi
check "sessions found on api3" "$CHANGES" "$(hits api3 session "$TAG")"
check "events found on api3" 1 "$(hits api3 event "$TAG")"
check "api3's hits, in order, as api2's" "$(ids api2 session "$TAG")" "$(ids api3 session "$TAG")"
# A change after it joined reaches it too.
word=zebra${RUN_ID}late
api_session api1 "$EVENT" "Propagation $TAG $word" >/dev/null || abort "the late session not created through api1"
CREATED=$(now_ms)
if took=$(ms_until_found api3 session "$word" 1 "$CREATED"); then
    say "a session created after api3 joined: found on api3 after $took ms"
else
    fail "a session created after api3 joined not found on it within $FOUND_WITHIN_S s"
fi
"$BED" kill-host api3
finish
