#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang and runs each one.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS (default 60) is each target's run time; TARGETs default to every
# tests/fuzz/fuzz_*.c. A run starts from tests/fuzz/corpus/TARGET/, and the
# inputs it finds that reach new code are merged back there (libFuzzer's
# -merge=1, which adds only inputs that add coverage): commit them, and the
# replay tests (fuzz_replay_TARGET in ctest) run them on every build.
# A crash, leak, timeout or broken property stops that target; its input is
# left in DIR/fuzz/artifacts/TARGET/ and the script exits 1 after the rest.
#
# Environment: USHER_FUZZ_DIR, the build directory (default build-fuzz-clang);
# USHER_FUZZ_ARGS, extra libFuzzer flags (e.g. "-max_len=512");
# USHER_FUZZ_MINIMIZE=1 rewrites each corpus as a minimal one (keeping its
# regress-* files) rather than adding to it, for a corpus grown past 300
# files or 1 MB; with SECONDS 0 it only does that.
# Needs clang and libFuzzer (Debian: clang-14 libclang-rt-14-dev); CI does
# not fuzz, so scripts/install-deps.sh does not install them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

SECONDS_EACH=60
if (($# > 0)) && [[ "$1" =~ ^[0-9]+$ ]]; then
    SECONDS_EACH=$1
    shift
fi
DIR=${USHER_FUZZ_DIR:-build-fuzz-clang}
read -r -a EXTRA <<<"${USHER_FUZZ_ARGS:-}"

all_targets() {
    local f
    for f in tests/fuzz/fuzz_*.c; do
        f=${f#tests/fuzz/fuzz_}
        printf '%s\n' "${f%.c}"
    done
}

check_toolchain() {
    if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
        echo "fuzz: clang is missing: apt-get install clang-14 libclang-rt-14-dev" >&2
        return 1
    fi
    if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
        echo "fuzz: clang cannot link libFuzzer: apt-get install libclang-rt-14-dev" >&2
        return 1
    fi
}

build() {
    local log=$DIR/fuzz/logs/build.log
    mkdir -p "$(dirname "$log")"
    echo "fuzz: building ${*/#/fuzz_} in $DIR (log $log)"
    if ! { cmake -S . -B "$DIR" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUSHER_FUZZ=ON &&
        cmake --build "$DIR" -j"$(nproc)" --target "${@/#/fuzz_}"; } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "fuzz: the build failed (log $log)" >&2
        return 1
    fi
}

# The last "cov: N ft: N" of a libFuzzer log, and its final statistics.
summarise() {
    local target=$1 log=$2 rc=$3 stats files bytes
    stats=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    files=$(find "tests/fuzz/corpus/$target" -type f | wc -l)
    bytes=$(du -sb "tests/fuzz/corpus/$target" | cut -f1)
    printf '%-13s %s  %s execs/s  %s runs  corpus %s files %s bytes%s\n' "$target" \
        "${stats:-cov: ? ft: ?}" \
        "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)" \
        "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)" \
        "$files" "$bytes" "$( ((rc == 0)) || echo "  FAILED (exit $rc, see $log)")"
    if ((files > 300 || bytes > 1048576)); then
        echo "fuzz: $target: the corpus is past 300 files or 1 MB; minimize it (see README)" >&2
    fi
}

# merge BIN CORPUS WORK: adds WORK's inputs that reach new code to CORPUS; with
# USHER_FUZZ_MINIMIZE=1, CORPUS becomes the fewest inputs of both that reach
# everything they reach, plus its regress-* files (fixed crashes), kept whole.
merge() {
    local bin=$1 corpus=$2 work=$3 fresh
    if [[ "${USHER_FUZZ_MINIMIZE:-0}" != 1 ]]; then
        "$bin" -merge=1 "$corpus" "$work"
        return
    fi
    fresh=$work.min
    rm -rf "$fresh"
    mkdir -p "$fresh"
    "$bin" -merge=1 "$fresh" "$corpus" "$work"
    find "$corpus" -maxdepth 1 -type f -name 'regress-*' -exec cp {} "$fresh/" \;
    find "$corpus" -maxdepth 1 -type f -delete
    find "$fresh" -maxdepth 1 -type f -exec mv {} "$corpus/" \;
    rmdir "$fresh"
}

# run TARGET: fuzz for SECONDS_EACH into a scratch corpus, then merge it back.
run() {
    local target=$1 bin=$DIR/fuzz/fuzz_$1 work=$DIR/fuzz/work/$1 art=$DIR/fuzz/artifacts/$1
    local log=$DIR/fuzz/logs/$1.log corpus=tests/fuzz/corpus/$1 rc=0
    rm -rf "$work"
    mkdir -p "$work" "$art" "$(dirname "$log")" "$corpus"
    echo "fuzz: $target for ${SECONDS_EACH}s (log $log)"
    : >"$log"
    if ((SECONDS_EACH > 0)); then # libFuzzer takes -max_total_time=0 as no limit
        "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$art/" "${EXTRA[@]}" "$work" "$corpus" \
            >"$log" 2>&1 || rc=$?
    fi
    if ! merge "$bin" "$corpus" "$work" >>"$log" 2>&1 && ((rc == 0)); then
        rc=1
    fi
    summarise "$target" "$log" "$rc"
    return "$rc"
}

main() {
    local -a targets
    local target failed=0
    if (($# > 0)); then
        targets=("$@")
    else
        mapfile -t targets < <(all_targets)
    fi
    for target in "${targets[@]}"; do
        if [[ ! -f tests/fuzz/fuzz_$target.c ]]; then
            echo "fuzz: no target $target (have: $(all_targets | tr '\n' ' '))" >&2
            return 2
        fi
    done
    check_toolchain
    build "${targets[@]}"
    for target in "${targets[@]}"; do
        run "$target" || failed=1
    done
    if ((failed)); then
        echo "fuzz: failures; their inputs are in $DIR/fuzz/artifacts/" >&2
        return 1
    fi
}

main "$@"
