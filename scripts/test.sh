#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run):
#
#   1 deps            scripts/install-deps.sh
#   2 build           build/ with -Werror
#   3 systemd verify  systemd/verify.sh build: systemd-analyze verify (strict)
#                     and security on the unit files, with build/'s binaries
#   4 monitoring      scripts/check-monitoring.sh: promtool checks and tests
#                     the alert rules and the Grafana dashboard's queries
#   5 stack           scripts/stack.sh start (stopped again on exit unless
#                     USHER_KEEP_STACK=1 or it was already running before)
#   6 migrate         build/usherctl --config conf/usher.conf migrate
#   7 ctest           every test in build/ (unit and integration), one at a time
#   8 asan build      build-asan/ with -DUSHER_SANITIZE=ON (ASan + UBSan)
#   9 asan ctest      every test in build-asan/, leak detection on
#  10 valgrind        each unit test binary of build/ under valgrind
#  11 cluster         tests/cluster/run.sh: the cluster test bed (network
#                     namespaces, scripts/cluster.sh) and its tests, with
#                     build/'s binaries; needs root (skipped otherwise)
#  12 install         tests/install/test_install.sh: build/ packed into the
#                     .deb (scripts/package.sh), installed in a fresh root (an
#                     overlay over /, in namespaces of its own) and run as
#                     systemd/README.md says; needs root (skipped otherwise)
#
# Each phase prints a banner and its duration. The last line of output is
# "N passed, N failed": tests counted from ctest's own summary (and one per
# binary for valgrind, one for systemd verify, one for monitoring, one per
# cluster test and install check), plus one failure for each phase that failed
# without running tests (a broken build, a stack that would not start...).
# Exits non-zero if anything failed. Logs go to $STATE/test-logs/.
# Phases and the exit trap are called indirectly, which shellcheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

STATE=${USHER_STATE_DIR:-$ROOT/.state}
LOGS=$STATE/test-logs
CONF=$ROOT/conf/usher.conf
VALGRIND_TIMEOUT=${USHER_VALGRIND_TIMEOUT:-1800}

PASSED=0
FAILED=0
SUMMARY=()
STOP_STACK=0
PHASE_NO=0
PHASE_TOTAL=12

# ---------------------------------------------------------------- plumbing

banner() { printf '\n==================== %s ====================\n' "$*"; }

fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

stop_stack() {
    if ((STOP_STACK)) && [[ "${USHER_KEEP_STACK:-0}" != 1 ]]; then
        banner "stopping the stack"
        scripts/stack.sh stop || true
    fi
    STOP_STACK=0
}
trap stop_stack EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_phase NAME FUNCTION [ARGS]: runs FUNCTION in a subshell with errexit
# active, times it and records its result. Returns the function's status.
run_phase() {
    local name=$1 start rc secs
    shift
    PHASE_NO=$((PHASE_NO + 1))
    banner "[$PHASE_NO/$PHASE_TOTAL] $name"
    start=$(date +%s)
    set +e
    (
        set -e
        "$@"
    )
    rc=$?
    set -e
    secs=$(($(date +%s) - start))
    if ((rc == 0)); then
        echo "---- $name: ok ($(fmt_secs "$secs"))"
        SUMMARY+=("$(printf '%-14s ok      %s' "$name" "$(fmt_secs "$secs")")")
    else
        echo "---- $name: FAILED, exit $rc ($(fmt_secs "$secs"))"
        SUMMARY+=("$(printf '%-14s FAILED  %s' "$name" "$(fmt_secs "$secs")")")
    fi
    return "$rc"
}

skip_phase() {
    PHASE_NO=$((PHASE_NO + 1))
    banner "[$PHASE_NO/$PHASE_TOTAL] $1: skipped ($2)"
    SUMMARY+=("$(printf '%-14s skipped (%s)' "$1" "$2")")
}

# count_ctest LOG RC: adds the counts of ctest's summary line in LOG.
count_ctest() {
    local line failed total
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -n 1 || true)
    if [[ "$line" =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
        failed=${BASH_REMATCH[1]}
        total=${BASH_REMATCH[2]}
        PASSED=$((PASSED + total - failed))
        FAILED=$((FAILED + failed))
        if ((failed == 0 && $2 != 0)); then
            FAILED=$((FAILED + 1)) # ctest failed for another reason
        fi
    elif (($2 != 0)); then
        FAILED=$((FAILED + 1)) # no summary: no tests, or ctest itself failed
    fi
}

# ---------------------------------------------------------------- phases

phase_deps() { scripts/install-deps.sh; }

phase_build() { scripts/build.sh "$@"; }

# The unit files of systemd/, checked offline against build/'s binaries.
phase_systemd_verify() { systemd/verify.sh build 2>&1 | tee "$LOGS/systemd-verify.log"; }

phase_monitoring() { scripts/check-monitoring.sh 2>&1 | tee "$LOGS/monitoring.log"; }

phase_stack() { scripts/stack.sh start; }

phase_migrate() { build/usherctl --config "$CONF" migrate; }

# phase_ctest DIR LOG [ENV...]
phase_ctest() {
    local dir=$1 log=$2
    shift 2
    env "$@" ctest --test-dir "$dir" --output-on-failure --no-tests=error -j1 2>&1 | tee "$log"
}

# Prints one line per unit test of build/: the working directory, then the
# command, tab-separated, from ctest's JSON listing.
unit_test_commands() {
    ctest --test-dir build -L unit --show-only=json-v1 | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin).get("tests", []):
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    wd = props.get("WORKING_DIRECTORY", sys.argv[1])
    print("\t".join([t["name"], wd] + t["command"]))
' "$ROOT/build"
}

# A valgrind log counts as an error when it holds more than warnings: Criterion
# runs each test in a forked worker whose exit status it ignores once the test
# has reported, so --error-exitcode alone would miss errors in the tests.
valgrind_log_has_errors() {
    grep -vE '^==[0-9]+==( *$| Warning: )' "$1" | grep -q .
}

# Writes "pass NAME" or "fail NAME" lines to $1.
phase_valgrind() {
    local results=$1 name wd vlogs rc f bad
    local -a cmd
    : >"$results"
    while IFS=$'\t' read -r -a cmd; do
        name=${cmd[0]}
        wd=${cmd[1]}
        cmd=("${cmd[@]:2}")
        vlogs=$LOGS/valgrind/$name
        rm -rf "$vlogs"
        mkdir -p "$vlogs"
        echo "-- $name"
        rc=0
        (cd "$wd" && timeout "$VALGRIND_TIMEOUT" valgrind --error-exitcode=1 --leak-check=full \
            --errors-for-leak-kinds=definite --trace-children=yes -q \
            --log-file="$vlogs/vg.%p.log" "${cmd[@]}") || rc=$?
        bad=0
        for f in "$vlogs"/vg.*.log; do
            if [[ -e "$f" ]] && valgrind_log_has_errors "$f"; then
                cat "$f"
                bad=1
            fi
        done
        if ((rc != 0 || bad)); then
            echo "-- $name: FAILED (exit $rc, valgrind errors: $bad; logs in $vlogs)"
            echo "fail $name" >>"$results"
        else
            echo "-- $name: ok"
            echo "pass $name" >>"$results"
        fi
    done < <(unit_test_commands)
    [[ -s "$results" ]] || {
        echo "no unit tests found"
        return 1
    }
    ! grep -q '^fail ' "$results"
}

count_valgrind() {
    local n
    n=$(grep -c '^pass ' "$1" || true)
    PASSED=$((PASSED + n))
    n=$(grep -c '^fail ' "$1" || true)
    FAILED=$((FAILED + n))
    if (($2 != 0 && n == 0)); then
        FAILED=$((FAILED + 1))
    fi
}

# The cluster tests print "N passed, N failed" last.
phase_cluster() { tests/cluster/run.sh 2>&1 | tee "$1"; }

count_cluster() {
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1 || true)
    if [[ "$line" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        PASSED=$((PASSED + BASH_REMATCH[1]))
        FAILED=$((FAILED + BASH_REMATCH[2]))
        if ((BASH_REMATCH[2] == 0 && $2 != 0)); then
            FAILED=$((FAILED + 1))
        fi
    elif (($2 != 0)); then
        FAILED=$((FAILED + 1))
    fi
}

# The install test prints "N passed, N failed" last too.
phase_install() { tests/install/test_install.sh build 2>&1 | tee "$1"; }

# root_phase NAME FUNCTION: a phase that needs root (skipped otherwise), whose
# last line, in $LOGS/NAME.log, is "N passed, N failed".
root_phase() {
    local rc=0
    if ((EUID != 0)); then
        skip_phase "$1" "needs root"
        return
    fi
    run_phase "$1" "$2" "$LOGS/$1.log" || rc=$?
    count_cluster "$LOGS/$1.log" "$rc"
}

# ---------------------------------------------------------------- main

finish() {
    stop_stack
    banner "summary"
    printf '%s\n' "${SUMMARY[@]}"
    echo "logs: $LOGS"
    echo "$PASSED passed, $FAILED failed"
    if ((FAILED > 0)); then
        exit 1
    fi
    exit 0
}

main() {
    local rc
    rm -rf "$LOGS"
    mkdir -p "$LOGS"

    run_phase deps phase_deps || {
        FAILED=$((FAILED + 1))
        finish
    }
    run_phase build phase_build build || {
        FAILED=$((FAILED + 1))
        finish
    }
    # One test in the summary, passed or failed; the other phases run either way.
    if run_phase "systemd verify" phase_systemd_verify; then
        PASSED=$((PASSED + 1))
    else
        FAILED=$((FAILED + 1))
    fi
    if run_phase monitoring phase_monitoring; then
        PASSED=$((PASSED + 1))
    else
        FAILED=$((FAILED + 1))
    fi
    if ! scripts/stack.sh status >/dev/null 2>&1; then
        STOP_STACK=1
    fi
    run_phase stack phase_stack || {
        FAILED=$((FAILED + 1))
        finish
    }
    eval "$(scripts/stack.sh env)"
    # The worker tests restart PostgreSQL under a running pool with this.
    export USHER_PG_RESTART="$ROOT/scripts/stack.sh restart-pg"
    run_phase migrate phase_migrate || FAILED=$((FAILED + 1))

    rc=0
    run_phase ctest phase_ctest build "$LOGS/ctest.log" || rc=$?
    count_ctest "$LOGS/ctest.log" "$rc"

    if run_phase "asan build" phase_build build-asan -DUSHER_SANITIZE=ON; then
        rc=0
        run_phase "asan ctest" phase_ctest build-asan "$LOGS/ctest-asan.log" \
            ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 || rc=$?
        count_ctest "$LOGS/ctest-asan.log" "$rc"
    else
        FAILED=$((FAILED + 1))
        skip_phase "asan ctest" "asan build failed"
    fi

    rc=0
    run_phase valgrind phase_valgrind "$LOGS/valgrind.results" || rc=$?
    count_valgrind "$LOGS/valgrind.results" "$rc"

    root_phase cluster phase_cluster
    root_phase install phase_install

    finish
}

main "$@"
