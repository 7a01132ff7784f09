#!/usr/bin/env bash
# Installs the Debian 12 packages Usher needs to build, test and run, if any is
# missing. Quick and silent-ish when everything is already there; needs root
# only when something has to be installed.
set -euo pipefail

# One list: add packages here. systemd: systemd-analyze, for systemd/verify.sh
# (not in a minimal Debian 12 image); procps: /bin/kill, the units' ExecReload,
# which systemd-analyze verify insists exists.
PACKAGES=(
    build-essential cmake pkg-config git clang-format valgrind
    postgresql-15 postgresql-client-15 redis-server redis-tools python3-aiosmtpd
    libpq-dev libevent-dev libhiredis-dev libjansson-dev libinih-dev
    libsodium-dev libcriterion-dev libsystemd-dev libcurl4-openssl-dev
    systemd procps
    # job handlers: PDF (tickets in cairo, badges and reports in libharu, QR codes,
    # a TrueType font, read without its hinting by HarfBuzz's subsetter), mail,
    # search index
    libhpdf-dev libcairo2-dev zlib1g-dev libfreetype-dev libqrencode-dev fonts-dejavu-core
    libharfbuzz-dev
    libesmtp-dev libxapian-dev
    # search on several hosts: xapian-replicate-server and xapian-replicate
    xapian-tools
    # reading their output back in tests: pdftotext, zbarimg
    poppler-utils zbar-tools
    # scripts/run.sh waits for the API with curl; bench/api loads it with wrk
    curl wrk
    # the dashboard's browser test: Debian's Chromium, driven by Playwright
    chromium
    # tests/integration/openapi_conformance.py (run by Debian's /usr/bin/python3)
    # and psql, with which it makes its database
    python3-yaml python3-jsonschema
    # the cluster test bed (scripts/cluster.sh): network namespaces, failover
    # by pg_auto_failover, HAProxy in front of the API hosts
    iproute2 postgresql-15-auto-failover pg-auto-failover-cli haproxy
    # its tests and bench/cluster read the API's JSON with jq
    jq
    # promtool, for scripts/check-monitoring.sh (the alert rules and their tests)
    prometheus
    # the Debian package (scripts/package.sh: cpack, dpkg-shlibdeps, which finds
    # the binaries with file) and its install test (the postinst's adduser;
    # lintian judges the package)
    dpkg-dev file adduser lintian
)

# Playwright and axe-core come from the npm registry (tests/browser/package.json,
# pinned by its package-lock.json), into tests/browser/node_modules. Node.js
# is the machine's if it has one, else Debian's.
browser_deps() {
    local dir
    dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/browser" && pwd -P)
    if [[ -d "$dir/node_modules/playwright-core" && -d "$dir/node_modules/axe-core" ]]; then
        return 0
    fi
    if ! command -v npm >/dev/null; then
        if ((EUID != 0)); then
            echo "install-deps: error: npm is missing; install nodejs and npm" >&2
            return 1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm </dev/null
    fi
    echo "install-deps: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund)
}

missing_packages() {
    local pkg status
    for pkg in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        if [[ "$status" != installed ]]; then
            printf '%s\n' "$pkg"
        fi
    done
}

main() {
    local missing
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} == 0)); then
        echo "install-deps: all ${#PACKAGES[@]} packages present"
        browser_deps
        return
    fi
    echo "install-deps: missing: ${missing[*]}"
    if ((EUID != 0)); then
        echo "install-deps: error: run as root to install them (or install them yourself):" >&2
        echo "  apt-get install --no-install-recommends ${missing[*]}" >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update </dev/null
    apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} != 0)); then
        echo "install-deps: error: still missing after install: ${missing[*]}" >&2
        return 1
    fi
    browser_deps
    echo "install-deps: done"
}

main "$@"
