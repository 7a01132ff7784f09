#!/usr/bin/env bash
# Checks the unit files of systemd/ offline, as CI runs it (scripts/test.sh):
#
#   systemd/verify.sh [BUILD_DIR]        BUILD_DIR defaults to build (of the repo)
#
# 1. systemd-analyze verify on usher.target, usher-api.service, one instance
#    of usher-worker@.service per pool, and the search replication units
#    (usher-search-server.service, usher-search-replica.service). verify insists that every Exec*= binary
#    exists, so the units are copied to a temporary directory with
#    /usr/bin/ rewritten to a directory of symlinks to BUILD_DIR's binaries
#    (nothing is installed). It needs neither systemd as PID 1 nor the usher user.
#    verify exits 0 on an unknown key ("Unknown key 'ProtectSytem' ..., ignoring")
#    or an unparsable value ("Failed to parse sec value, ignoring"), which would
#    silently drop a hardening line; so ANY output counts as a failure, not only
#    the exit status. A clean unit set prints nothing.
# 2. Self-test: the same check on a copy with "ProtectSystem=" misspelt must fail,
#    or this script fails (a systemd that stopped reporting unknown keys would
#    otherwise turn the check into a silent pass).
# 3. systemd-analyze security --offline: the exposure level of each service stays
#    at or below $USHER_SYSTEMD_MAX_EXPOSURE tenths (default 17, i.e. 1.7: today's
#    level of the API and pool services), so dropping a hardening line fails too.
# 4. The pools that usher.target starts are exactly the pools conf/usher.conf
#    assigns queues to (a queue in a pool that no unit runs is never served).
#
# Exits 0 if everything passed, 1 otherwise; prints what failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
UNITS_SRC=$ROOT/systemd
CONF=$ROOT/conf/usher.conf
BUILD=${1:-$ROOT/build}
MAX_EXPOSURE=${USHER_SYSTEMD_MAX_EXPOSURE:-17}
SEARCH_UNITS=(usher-search-server.service usher-search-replica.service)
UNITS=(usher.target usher-api.service usher-worker@.service "${SEARCH_UNITS[@]}")
BINARIES=(usher-api usher-worker usherctl)

FAILURES=0
fail() {
    echo "verify: FAIL: $*" >&2
    FAILURES=$((FAILURES + 1))
}

TMP=
cleanup() { [[ -z "$TMP" ]] || rm -rf "$TMP"; }
trap cleanup EXIT

# stage DIR: copies the units to DIR with /usr/bin/ pointing at $TMP/bin.
stage() {
    local dir=$1 unit text
    mkdir -p "$dir"
    for unit in "${UNITS[@]}"; do
        text=$(<"$UNITS_SRC/$unit")
        # Bash substitution, not sed: the temporary path may hold any character.
        printf '%s\n' "${text//\/usr\/bin\//"$TMP/bin/"}" >"$dir/$unit"
    done
}

# pools_of_target DIR: the instance names of usher-worker@NAME.service that
# usher.target names outside comments, one a line.
pools_of_target() {
    grep -vE '^[[:space:]]*[#;]' "$1/usher.target" |
        grep -oE 'usher-worker@[^[:space:]]+\.service' |
        sed 's/^usher-worker@\(.*\)\.service$/\1/' | sort -u
}

# words: joins stdin's lines with spaces.
words() { paste -sd ' ' -; }

# pools_of_conf: the pool names conf/usher.conf assigns queues to (or declares
# with a [pool.NAME] section), one a line.
pools_of_conf() {
    sed -n -e 's/^pool[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' \
        -e 's/^\[pool\.\([^]]*\)\].*/\1/p' "$CONF" | sort -u
}

# analyze DIR OUT: systemd-analyze verify on the units in DIR; its output goes to
# OUT. Fails if it exits non-zero or prints anything at all.
analyze() {
    local dir=$1 out=$2 rc=0 pool unit
    local -a args=("$dir/usher.target" "$dir/usher-api.service")
    for unit in "${SEARCH_UNITS[@]}"; do
        args+=("$dir/$unit")
    done
    while read -r pool; do
        # An instance file need not exist: verify instantiates the template
        # usher-worker@.service found beside it.
        args+=("$dir/usher-worker@$pool.service")
    done < <(pools_of_target "$dir")
    (cd "$dir" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --no-pager --man=no \
        --generators=no --recursive-errors=yes "${args[@]}") >"$out" 2>&1 || rc=$?
    ((rc == 0)) && [[ ! -s "$out" ]]
}

main() {
    local bin out pool rc level unit before
    command -v systemd-analyze >/dev/null || {
        echo "verify: systemd-analyze not found (Debian package systemd: scripts/install-deps.sh)" >&2
        exit 1
    }
    [[ -d "$BUILD" ]] || {
        echo "verify: no build directory $BUILD (build first: scripts/build.sh)" >&2
        exit 1
    }
    BUILD=$(cd "$BUILD" && pwd -P)
    echo "verify: $(systemd-analyze --version | head -n 1); units from $UNITS_SRC, binaries from $BUILD"

    TMP=$(mktemp -d "${TMPDIR:-/tmp}/usher-systemd.XXXXXX")
    mkdir "$TMP/bin"
    for bin in "${BINARIES[@]}"; do
        [[ -x "$BUILD/$bin" ]] || fail "$BUILD/$bin is missing or not executable (build first)"
        ln -s "$BUILD/$bin" "$TMP/bin/$bin"
    done

    # ---- 1. systemd-analyze verify, strict
    stage "$TMP/units"
    if grep -nE '^Exec[A-Za-z]*=.*/usr/bin/' "$TMP"/units/* >&2; then
        fail "an Exec line still points to /usr/bin after the rewrite"
    fi
    out=$TMP/verify.out
    if analyze "$TMP/units" "$out"; then
        echo "verify: systemd-analyze verify: clean (no output, exit 0) on" \
            "usher.target usher-api.service $(pools_of_target "$TMP/units" | sed 's/.*/usher-worker@&.service/' | words)" \
            "${SEARCH_UNITS[*]}"
    else
        cat "$out" >&2
        fail "systemd-analyze verify reported the above (any output counts: unknown keys and bad values are only warnings to it)"
    fi

    # ---- 2. self-test: a misspelt key must be caught
    stage "$TMP/canary"
    sed -i 's/^ProtectSystem=/ProtectSytem=/' "$TMP/canary/usher-worker@.service"
    if grep -q '^ProtectSytem=' "$TMP/canary/usher-worker@.service" &&
        ! analyze "$TMP/canary" "$TMP/canary.out" &&
        grep -q "Unknown key 'ProtectSytem'" "$TMP/canary.out"; then
        echo "verify: self-test: a misspelt ProtectSystem= is caught"
    else
        cat "$TMP/canary.out" >&2 || true
        fail "self-test: a misspelt ProtectSystem= was NOT caught; this check is toothless"
    fi

    # ---- 3. hardening level
    for unit in usher-api.service "usher-worker@$(pools_of_target "$TMP/units" | head -n 1).service" \
        "${SEARCH_UNITS[@]}"; do
        rc=0
        out=$(cd "$TMP/units" && SYSTEMD_LOG_COLOR=0 systemd-analyze security --no-pager --offline=yes \
            --threshold="$MAX_EXPOSURE" "./$unit" 2>&1) || rc=$?
        level=$(grep -o 'Overall exposure level for .*' <<<"$out" || true)
        if ((rc == 0)) && [[ -n "$level" ]]; then
            echo "verify: security: $level (limit $((MAX_EXPOSURE / 10)).$((MAX_EXPOSURE % 10)))"
        else
            grep -E '^✗|Overall' <<<"$out" >&2 || printf '%s\n' "$out" >&2
            fail "systemd-analyze security: $unit is above the exposure limit of" \
                "$((MAX_EXPOSURE / 10)).$((MAX_EXPOSURE % 10)) (a hardening line was dropped?)"
        fi
    done

    # ---- 4. usher.target runs exactly the pools of conf/usher.conf
    local target_pools conf_pools
    before=$FAILURES
    target_pools=$(pools_of_target "$TMP/units")
    conf_pools=$(pools_of_conf)
    if [[ -z "$conf_pools" ]]; then
        fail "no pool found in $CONF"
    fi
    while read -r pool; do
        [[ -z "$pool" ]] || grep -qxF "$pool" <<<"$target_pools" ||
            fail "pool '$pool' of $CONF is not started by usher.target (add usher-worker@$pool.service to its Wants=)"
    done <<<"$conf_pools"
    while read -r pool; do
        [[ -z "$pool" ]] || grep -qxF "$pool" <<<"$conf_pools" ||
            fail "usher.target starts usher-worker@$pool.service but no queue of $CONF is in pool '$pool'"
    done <<<"$target_pools"
    ((FAILURES > before)) || echo "verify: usher.target pools match $CONF: $(words <<<"$target_pools")"

    if ((FAILURES > 0)); then
        echo "verify: $FAILURES check(s) failed"
        exit 1
    fi
    echo "verify: all checks passed"
}

main "$@"
