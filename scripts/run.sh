#!/usr/bin/env bash
# README command 1: install what is missing, build, start the local stack
# (PostgreSQL 15, Redis, SMTP sink under .state/), migrate, and start Usher:
# usher-api on api.listen and the worker pools (realtime, standard, batch) in
# the background. Everything keeps running; scripts/stack.sh stop stops them
# and the stack.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

scripts/install-deps.sh
scripts/build.sh build
scripts/stack.sh start
eval "$(scripts/stack.sh env)"
build/usherctl --config conf/usher.conf migrate

# One supervisor per pool of conf/usher.conf; a pool already running is left alone.
mapfile -t POOLS < <(sed -n 's/^\[pool\.\(.*\)\]$/\1/p' conf/usher.conf)
for pool in "${POOLS[@]}"; do
    pidfile=$USHER_STATE_DIR/worker-$pool.pid
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "run: pool $pool already running (pid $(cat "$pidfile"))"
        continue
    fi
    nohup build/usher-worker --config conf/usher.conf --pool "$pool" \
        >>"$USHER_STATE_DIR/worker-$pool.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    echo "run: pool $pool started (pid $!, log $USHER_STATE_DIR/worker-$pool.log)"
done

# The HTTP API.
pidfile=$USHER_STATE_DIR/api.pid
if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "run: usher-api already running (pid $(cat "$pidfile"))"
else
    nohup build/usher-api --config conf/usher.conf >>"$USHER_STATE_DIR/api.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    API=$(sed -n 's/^listen = //p' conf/usher.conf)
    for _ in $(seq 100); do
        curl -fsS "http://${USHER_API_LISTEN:-$API}/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "run: usher-api started (pid $!, http://${USHER_API_LISTEN:-$API}, log $USHER_STATE_DIR/api.log)"
fi
cat <<MSG

Usher is running under $USHER_STATE_DIR:
$(scripts/stack.sh status | sed 's/^/  /')

Use it from a shell:
  eval "\$(scripts/stack.sh env)"
  build/usherctl seed --demo                 # an event with 300 registrations
  curl -s http://${USHER_API_LISTEN:-127.0.0.1:58080}/v1/events/1   # its details and availability
  build/usherctl token create --role admin   # a bearer token for the admin routes
  build/usherctl enqueue pdf pdf.ticket '{"registration_id":1,"then_email":true}'
  build/usherctl queues                      # depth, throughput, dead jobs per queue
  ls \$USHER_MAILDIR/new                      # the mail the SMTP sink received

Stop everything with: scripts/stack.sh stop
MSG
