#!/usr/bin/env bash
# The cluster tests: brings the bed up (scripts/cluster.sh up), runs each
# test in order, takes the bed down again (unless USHER_KEEP_CLUSTER=1 or it
# was up before), and ends with the line "N passed, N failed" (one test per
# script) that scripts/test.sh counts. A test that exits 77 (what it needs
# is not in this build) is skipped: counted on a line of its own, not there.
#
#   tests/cluster/run.sh [TEST...]     e.g. worker_host_killed; default: all, in order
#
# Needs root, and usher-api, usher-worker and usherctl in $USHER_BUILD_DIR
# (default build/). Each test's output goes to its log in $USHER_CLUSTER_DIR/test-logs/
# and to stdout.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
BED=$ROOT/scripts/cluster.sh
# The order matters: a test may leave the bed changed (a promoted standby,
# a restarted host) in a way the next ones take as it comes.
ALL=(worker_host_killed registrations_mailed content_across_hosts search_every_host replica_reads api_link_cut primary_killed)
TEST_DEADLINE=${USHER_CLUSTER_TEST_DEADLINE:-600}

PASSED=0
FAILED=0
SKIPPED=0
TAKE_DOWN=1

if "$BED" status >/dev/null 2>&1; then
    TAKE_DOWN=0
fi
if [[ "${USHER_KEEP_CLUSTER:-0}" == 1 ]]; then
    TAKE_DOWN=0
fi
take_down() {
    if ((TAKE_DOWN)); then
        "$BED" down
    fi
}
trap take_down EXIT

tests=("$@")
((${#tests[@]})) || tests=("${ALL[@]}")

# A bed a killed run left behind (seen on a CI machine used before) is taken
# down and built again rather than failing every test.
if ! USHER_CLUSTER_RECLAIM=${USHER_CLUSTER_RECLAIM:-1} "$BED" up; then
    echo "cluster: the bed did not come up"
    echo "0 passed, 1 failed"
    exit 1
fi
eval "$("$BED" env)"
LOGS=$USHER_CLUSTER_DIR/test-logs
mkdir -p "$LOGS"

for t in "${tests[@]}"; do
    start=$SECONDS
    echo "---- $t"
    timeout -k 10 "$TEST_DEADLINE" bash "$HERE/test_$t.sh" 2>&1 | tee "$LOGS/$t.log"
    rc=${PIPESTATUS[0]}
    if ((rc == 0)); then
        PASSED=$((PASSED + 1))
        echo "---- $t: ok ($((SECONDS - start)) s)"
    elif ((rc == 77)); then
        SKIPPED=$((SKIPPED + 1))
        echo "---- $t: skipped (exit 77: what it tests is not in this build)"
    else
        FAILED=$((FAILED + 1))
        echo "---- $t: FAILED, exit $rc ($((SECONDS - start)) s; log $LOGS/$t.log)"
        "$BED" status || true
    fi
done
((SKIPPED == 0)) || echo "$SKIPPED skipped (counted neither way)"
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
