#!/usr/bin/env bash
# Builds the Debian package: usher_VERSION_amd64.deb (cmake/package.cmake).
#   scripts/package.sh [DIR]     DIR defaults to build-package
# DIR is configured for an install under /usr without sanitizers (a fresh DIR
# also without the tests, which the package does not hold), built, and
# packed by cpack; dpkg-shlibdeps fills Depends: from the binaries' libraries.
# Prints the package's path last.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

DIR=${1:-build-package}
args=(-DCMAKE_INSTALL_PREFIX=/usr -DUSHER_SANITIZE=OFF -DUSHER_FUZZ=OFF -DUSHER_WERROR=ON)
if [[ ! -f "$DIR/CMakeCache.txt" ]]; then
    args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DUSHER_TESTS=OFF)
fi
cmake -S . -B "$DIR" "${args[@]}" >/dev/null
cmake --build "$DIR" -j"$(nproc)" >&2
rm -f "$DIR"/usher_*.deb
(cd "$DIR" && cpack -G DEB) >&2
deb=$(ls "$DIR"/usher_*.deb)
realpath "$deb"
