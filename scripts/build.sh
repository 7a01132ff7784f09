#!/usr/bin/env bash
# Configures and builds Usher.
#   scripts/build.sh [DIR] [extra cmake args]     DIR defaults to build
# e.g. scripts/build.sh build-asan -DUSHER_SANITIZE=ON
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

DIR=build
if (($# > 0)) && [[ "$1" != -* ]]; then
    DIR=$1
    shift
fi

cmake -S . -B "$DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUSHER_WERROR=ON "$@"
cmake --build "$DIR" -j"$(nproc)"
