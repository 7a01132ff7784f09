#!/usr/bin/env bash
# A private local stack for Usher: PostgreSQL 15, Redis and an SMTP sink, bound
# to 127.0.0.1 only, with all their state under one directory.
#
#   scripts/stack.sh start|stop|status|env|clean
#
# State lives in ${USHER_STATE_DIR:-<repo>/.state}:
#   pg/        PostgreSQL data directory (see "Where the cluster lives" below)
#   pg-run/    PostgreSQL's unix socket and server log
#   redis/     redis.pid, redis.log
#   mail/      Maildir the SMTP sink delivers to (tmp/ new/ cur/)
#   smtp.pid, smtp.log, env
#
# Where the cluster lives: PostgreSQL refuses to run as root, so as root the
# cluster belongs to the `postgres` user, which must be able to reach its data
# directory. When it cannot traverse the state directory (a clone under /root,
# which is mode 0700), the data directory and socket go to
# /var/tmp/usher-<hash of the state dir path>/ instead and $STATE/pg is a
# symlink to it. We never change permissions of directories we did not create.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
STATE=${USHER_STATE_DIR:-$ROOT/.state}
PG_PORT=${USHER_PG_PORT:-55432}
REDIS_PORT=${USHER_REDIS_PORT:-56379}
SMTP_PORT=${USHER_SMTP_PORT:-52525}
PG_BIN=/usr/lib/postgresql/15/bin
PYTHON=/usr/bin/python3 # the python3 on PATH may be another build without aiosmtpd
DEADLINE=60

log() { printf 'stack: %s\n' "$*"; }
die() {
    printf 'stack: error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- helpers

# Runs a command as the cluster owner: postgres when we are root, else ourselves.
as_pg() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# Polls "$@" until it succeeds or DEADLINE seconds pass.
wait_for() {
    local what=$1 end=$((SECONDS + DEADLINE))
    shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= end)); then
            return 1
        fi
        sleep 0.2
    done
    log "$what is up"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

read_pid() {
    if [[ -r "$1" ]]; then
        tr -dc '0-9' <"$1"
    fi
}

state_init() {
    mkdir -p "$STATE"
    STATE=$(cd "$STATE" && pwd -P)
}

# Sets PG_BASE (holds pg/ and pg-run/), PGDATA and PG_RUN.
pg_paths() {
    PG_BASE=$STATE
    if ((EUID == 0)) && ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
        PG_BASE=/var/tmp/usher-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)
    fi
    PGDATA=$PG_BASE/pg
    PG_RUN=$PG_BASE/pg-run
}

# ---------------------------------------------------------------- PostgreSQL

pg_running() { [[ -f "$PGDATA/PG_VERSION" ]] && as_pg "$PG_BIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1; }

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres -U postgres; }

psql_admin() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }

pg_prepare_dirs() {
    if [[ "$PG_BASE" != "$STATE" ]]; then
        mkdir -p "$PG_BASE"
        chmod 0755 "$PG_BASE"
        if [[ ! -e "$STATE/pg" ]]; then
            ln -s "$PGDATA" "$STATE/pg"
        fi
        log "postgres cannot reach $STATE; cluster lives in $PG_BASE ($STATE/pg links to it)"
    fi
    mkdir -p "$PGDATA" "$PG_RUN"
    if ((EUID == 0)); then
        chown postgres:postgres "$PGDATA" "$PG_RUN"
    fi
    chmod 0700 "$PGDATA"
    chmod 0755 "$PG_RUN"
}

pg_initdb() {
    log "initdb $PGDATA"
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$PG_RUN/initdb.log" 2>&1 ||
        die "initdb failed, see $PG_RUN/initdb.log"
    # Trust, but only on the private socket and on 127.0.0.1.
    as_pg tee "$PGDATA/pg_hba.conf" >/dev/null <<'EOF'
# Usher's private test cluster: loopback and the private socket only.
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
EOF
    echo "include 'usher.conf'" | as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null
}

# Rewritten at every start so port changes take effect.
pg_write_conf() {
    as_pg tee "$PGDATA/usher.conf" >/dev/null <<EOF
# Written by scripts/stack.sh at each start; edits are lost.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
}

pg_start() {
    pg_paths
    if pg_running; then
        log "postgresql already running ($PGDATA)"
    else
        pg_prepare_dirs
        [[ -f "$PGDATA/PG_VERSION" ]] || pg_initdb
        pg_write_conf
        port_open "$PG_PORT" && die "port $PG_PORT is already in use (set USHER_PG_PORT)"
        log "starting postgresql on 127.0.0.1:$PG_PORT"
        as_pg "$PG_BIN/pg_ctl" start -D "$PGDATA" -l "$PG_RUN/postgres.log" -w -t "$DEADLINE" \
            >/dev/null || die "postgresql did not start, see $PG_RUN/postgres.log"
    fi
    wait_for postgresql pg_ready || die "postgresql not ready after ${DEADLINE}s"
    if [[ -z "$(psql_admin -d postgres -tAc "select 1 from pg_database where datname = 'usher'")" ]]; then
        psql_admin -d postgres -c 'create database usher'
        log "created database usher"
    fi
}

pg_stop() {
    pg_paths
    if pg_running; then
        as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t "$DEADLINE" >/dev/null
        log "postgresql stopped"
    else
        log "postgresql not running"
    fi
}

pg_status() {
    pg_paths
    if pg_running; then
        echo "postgresql: running on 127.0.0.1:$PG_PORT, data $PGDATA"
    else
        echo "postgresql: stopped (data $PGDATA)"
        return 1
    fi
}

# ---------------------------------------------------------------- Redis

redis_pid() { read_pid "$STATE/redis/redis.pid"; }

redis_running() { pid_alive "$(redis_pid)"; }

redis_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

redis_start() {
    if redis_running; then
        log "redis already running"
    else
        port_open "$REDIS_PORT" && die "port $REDIS_PORT is already in use (set USHER_REDIS_PORT)"
        mkdir -p "$STATE/redis"
        log "starting redis on 127.0.0.1:$REDIS_PORT"
        redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 \
            --dir "$STATE/redis" --pidfile "$STATE/redis/redis.pid" \
            --logfile "$STATE/redis/redis.log" --save "" --appendonly no >/dev/null ||
            die "redis did not start, see $STATE/redis/redis.log"
    fi
    wait_for redis redis_ping || die "redis not answering after ${DEADLINE}s"
}

redis_stop() {
    local pid end
    pid=$(redis_pid)
    if ! pid_alive "$pid"; then
        log "redis not running"
        return 0
    fi
    # SIGTERM, not redis-cli shutdown: it needs no password (tests/install sets
    # one, and a refused SHUTDOWN left Redis, then PostgreSQL, running), and
    # there is nothing to save (--save "").
    kill "$pid" 2>/dev/null || true
    end=$((SECONDS + DEADLINE))
    while pid_alive "$pid" && ((SECONDS < end)); do sleep 0.1; done
    if pid_alive "$pid"; then
        # Not die: stop and clean go on to PostgreSQL.
        log "error: redis (pid $pid) did not stop"
        return 1
    fi
    rm -f "$STATE/redis/redis.pid"
    log "redis stopped"
}

redis_status() {
    if redis_running; then
        echo "redis: running on 127.0.0.1:$REDIS_PORT (pid $(redis_pid))"
    else
        echo "redis: stopped"
        return 1
    fi
}

# ---------------------------------------------------------------- SMTP sink

smtp_pid() {
    local pid
    pid=$(read_pid "$STATE/smtp.pid")
    # Guard against a recycled pid: it must still be our aiosmtpd.
    if pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q aiosmtpd; then
        echo "$pid"
    fi
}

smtp_start() {
    if [[ -n "$(smtp_pid)" ]]; then
        log "smtp sink already running"
    else
        port_open "$SMTP_PORT" && die "port $SMTP_PORT is already in use (set USHER_SMTP_PORT)"
        mkdir -p "$STATE/mail/tmp" "$STATE/mail/new" "$STATE/mail/cur"
        log "starting smtp sink on 127.0.0.1:$SMTP_PORT -> $STATE/mail"
        # The inner bash records its own pid, then becomes the server.
        # shellcheck disable=SC2016
        setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$STATE/smtp.pid" \
            "$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
            -c aiosmtpd.handlers.Mailbox "$STATE/mail" \
            </dev/null >>"$STATE/smtp.log" 2>&1 &
    fi
    wait_for "smtp sink" port_open "$SMTP_PORT" || die "smtp sink not listening, see $STATE/smtp.log"
}

smtp_stop() {
    local pid end
    pid=$(smtp_pid)
    if [[ -z "$pid" ]]; then
        log "smtp sink not running"
        rm -f "$STATE/smtp.pid"
        return 0
    fi
    kill "$pid" 2>/dev/null || true
    end=$((SECONDS + 10))
    while pid_alive "$pid" && ((SECONDS < end)); do sleep 0.1; done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    rm -f "$STATE/smtp.pid"
    log "smtp sink stopped"
}

smtp_status() {
    local pid
    pid=$(smtp_pid)
    if [[ -n "$pid" ]]; then
        echo "smtp: running on 127.0.0.1:$SMTP_PORT (pid $pid), maildir $STATE/mail"
    else
        echo "smtp: stopped"
        return 1
    fi
}

# ---------------------------------------------------------------- commands

# The local stack's ticket-signing key: made once, kept with the state.
ticket_secret() {
    local file=$STATE/ticket.secret
    if [[ ! -s "$file" ]]; then
        mkdir -p "$STATE"
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$file")
    fi
    cat "$file"
}

print_env() {
    printf 'export USHER_DATABASE_URL=%q\n' "postgresql://postgres@127.0.0.1:$PG_PORT/usher"
    printf 'export USHER_REDIS_URL=%q\n' "redis://127.0.0.1:$REDIS_PORT/0"
    printf 'export USHER_SMTP_URL=%q\n' "smtp://127.0.0.1:$SMTP_PORT"
    printf 'export USHER_MAILDIR=%q\n' "$STATE/mail"
    printf 'export USHER_STATE_DIR=%q\n' "$STATE"
    printf 'export USHER_TICKET_SECRET=%q\n' "$(ticket_secret)"
    printf 'export USHER_DOCUMENT_DIR=%q\n' "$STATE/documents"
    printf 'export USHER_SEARCH_DIR=%q\n' "$STATE/search"
    # This tree's files: the binaries default to the installed ones (/etc/usher, /usr/share/usher).
    printf 'export USHER_CONFIG=%q\n' "$ROOT/conf/usher.conf"
    printf 'export USHER_TEMPLATE_DIR=%q\n' "$ROOT/conf/templates"
    printf 'export USHER_MIGRATIONS_DIR=%q\n' "$ROOT/schemas/migrations"
}

# The stack's ports lie in Linux's ephemeral range (32768-60999): a client
# socket of a busy machine can hold one of them when PostgreSQL restarts in a
# test, and the restart then fails with "Address already in use". As root,
# keep the kernel from handing them out (ip_local_reserved_ports, added to
# whatever is reserved already); elsewhere, or where /proc/sys is read-only,
# nothing changes.
reserve_ports() {
    local file=/proc/sys/net/ipv4/ip_local_reserved_ports current
    ((EUID == 0)) && [[ -w "$file" ]] || return 0
    current=$(cat "$file" 2>/dev/null) || return 0
    echo "${current:+$current,}$PG_PORT,$REDIS_PORT,$SMTP_PORT" >"$file" 2>/dev/null ||
        log "could not reserve ports $PG_PORT,$REDIS_PORT,$SMTP_PORT (left as they were)"
    return 0
}

cmd_start() {
    [[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL 15 is not installed; run scripts/install-deps.sh"
    command -v redis-server >/dev/null || die "redis-server is not installed; run scripts/install-deps.sh"
    "$PYTHON" -c 'import aiosmtpd' 2>/dev/null || die "python3-aiosmtpd is not installed; run scripts/install-deps.sh"
    reserve_ports
    pg_start
    redis_start
    smtp_start
    print_env >"$STATE/env"
    log "env written to $STATE/env"
}

# The API and worker pools that scripts/run.sh started: SIGTERM lets them drain.
workers_stop() {
    local pidfile pid
    for pidfile in "$STATE"/api.pid "$STATE"/worker-*.pid; do
        [[ -f "$pidfile" ]] || continue
        pid=$(cat "$pidfile")
        if pid_alive "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
            log "$(basename "$pidfile" .pid) stopped"
        fi
        rm -f "$pidfile"
    done
}

wait_gone() {
    local end=$((SECONDS + DEADLINE))
    while pid_alive "$1"; do
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}

cmd_stop() {
    local rc=0
    workers_stop
    smtp_stop || rc=1
    redis_stop || rc=1
    pg_stop || rc=1
    return "$rc"
}

cmd_status() {
    local rc=0
    pg_status || rc=1
    redis_status || rc=1
    smtp_status || rc=1
    return "$rc"
}

# Stops everything and deletes all state, including a /var/tmp cluster.
cmd_clean() {
    cmd_stop
    pg_paths
    if [[ "$PG_BASE" != "$STATE" ]]; then
        rm -rf "$PG_BASE"
    fi
    rm -rf "$STATE"
    log "removed $STATE"
}

# Restarts PostgreSQL alone (the worker tests' "database restart").
# restart-pg [fast|immediate]: immediate is a crash (no checkpoint, clients
# cut at once, recovery from the WAL at start).
cmd_restart_pg() {
    local mode=${1:-fast}
    [[ "$mode" == fast || "$mode" == immediate ]] || die "restart-pg takes fast or immediate"
    state_init
    pg_paths
    pg_running || die "postgresql is not running"
    as_pg "$PG_BIN/pg_ctl" restart -D "$PGDATA" -m "$mode" -w -t "$DEADLINE" >/dev/null
    wait_for "postgresql" pg_ready
    log "postgresql restarted ($mode)"
}

main() {
    state_init
    case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) print_env ;;
    clean) cmd_clean ;;
    restart-pg) cmd_restart_pg "${2:-fast}" ;;
    *)
        echo "usage: $0 start|stop|status|env|clean|restart-pg [fast|immediate]" >&2
        exit 2
        ;;
    esac
}

main "$@"
