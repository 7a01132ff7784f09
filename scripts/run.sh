#!/usr/bin/env bash
# README command 1: install what is missing, build, start the local stack
# (PostgreSQL 15, Redis, SMTP sink under .state/), migrate, and show how to use
# Usher. The stack keeps running; stop it with scripts/stack.sh stop.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

scripts/install-deps.sh
scripts/build.sh build
scripts/stack.sh start
eval "$(scripts/stack.sh env)"
build/usherctl --config conf/usher.conf migrate

cat <<MSG

Usher is ready. Running under $USHER_STATE_DIR:
$(scripts/stack.sh status | sed 's/^/  /')

Use it from a shell:
  eval "\$(scripts/stack.sh env)"
  build/usherctl --config conf/usher.conf queues
  build/usherctl --config conf/usher.conf jobs list
  ls \$USHER_MAILDIR/new          # mail the SMTP sink received
MSG
if [[ -x build/usher-worker ]]; then
    echo "  build/usher-worker --config conf/usher.conf --pool NAME   # a worker pool (not started here)"
fi
if [[ -x build/usher-api ]]; then
    echo "  build/usher-api --config conf/usher.conf                  # the HTTP API (not started here)"
fi
echo
echo "Stop everything with: scripts/stack.sh stop"
