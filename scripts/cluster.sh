#!/usr/bin/env bash
# The cluster test bed: Usher as several hosts on one machine, each host a
# Linux network namespace with one address on a private bridge.
#
#   scripts/cluster.sh up|down|status|env|addr HOST|exec HOST CMD...|pid HOST NAME
#
#   host      namespace      address      runs
#   (driver)  (the machine)  10.77.0.1    the bridge usher-br0; tests and psql run here
#   monitor   usher-monitor  10.77.0.10   pg_auto_failover's monitor (pg_autoctl + PostgreSQL)
#   pg1       usher-pg1      10.77.0.11   pg_autoctl keeper + PostgreSQL (primary at first)
#   pg2       usher-pg2      10.77.0.12   pg_autoctl keeper + PostgreSQL (synchronous standby)
#   api1/2    usher-api1/2   10.77.0.21/22  usher-api on :8080 (metrics :8081), a search replica
#   api3      usher-api3     10.77.0.23   the same, started later by a test (add-api api3),
#                                          not behind HAProxy
#   worker1/2 usher-worker1/2 10.77.0.31/32 usher-worker --pool cluster; worker1 also
#                                          renders tickets (--pool tickets: the pdf queue),
#                                          indexes (--pool search) and serves its index
#                                          (:7010); worker2 alone mails (--pool mail)
#   haproxy   usher-haproxy  10.77.0.40   HAProxy :80 -> api1, api2 (checks /readyz); stats :8404
#   redis     usher-redis    10.77.0.50   redis-server :6379
#   smtp      usher-smtp     10.77.0.60   aiosmtpd :2525 -> Maildir
#
# Every process listens on its own host's address only and reaches the others
# through the bridge; no host reaches another through 127.0.0.1. Usher's
# processes find PostgreSQL with a libpq multi-host URL
# (target_session_attrs=read-write), so they follow a failover by themselves.
#
# Everything lives under ${USHER_CLUSTER_DIR:-<repo>/.cluster}: one directory
# per host (configuration, logs, pid files, data). Usher runs from
# ${USHER_BUILD_DIR:-<repo>/build}.
#
# up      builds the cluster from scratch and waits until every host is ready
#         (bounded: a failed step stops it and says which); with the cluster
#         already up and healthy it says so and changes nothing; a partial
#         cluster (a crash, a test that cut links) is refused: run down first,
#         or set USHER_CLUSTER_RECLAIM=1 (tests/cluster/run.sh does) to have
#         up take it down and build anew.
# down    ends every process running in the namespaces (SIGTERM, then SIGKILL
#         after a deadline), deletes the namespaces, veths and the bridge. Works
#         after a crash: it finds processes by namespace, not by pid file.
#         The state directory stays, for its logs; the next up empties it.
# status  each host: link, processes, readiness; the formation's nodes and
#         synchronous replication. Exit 1 if anything is not as up leaves it.
# env     shell exports for tests (eval "$(scripts/cluster.sh env)").
#
# Tests use the helpers below through this script: addr HOST prints an
# address, exec HOST CMD runs a command on a host, start-usher HOST
# (re)starts the Usher process of an api or worker host, kill-host HOST
# sends SIGKILL to every process on a host, link HOST up|down cuts or
# restores its link, add-api HOST starts a host that joins late (api3:
# namespace, address, usher-api and its search replica), lb-server HOST
# ready|maint puts an API host in or out of HAProxy, ctl ARGS runs usherctl
# on worker1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CLUSTER=${USHER_CLUSTER_DIR:-$ROOT/.cluster}
BUILD=${USHER_BUILD_DIR:-$ROOT/build}
NET=10.77.0
BRIDGE=usher-br0
PG_BIN=/usr/lib/postgresql/15/bin
PYTHON=/usr/bin/python3 # Debian's, which has aiosmtpd
DEADLINE=${USHER_CLUSTER_DEADLINE:-120}
API_PORT=8080
API_METRICS_PORT=8081
SMTP_PORT=2525
LB_PORT=80
LB_STATS_PORT=8404

HOSTS=(monitor pg1 pg2 api1 api2 worker1 worker2 haproxy redis smtp)
# Hosts a test adds later (add-api); down takes them down too.
LATE_HOSTS=(api3)
declare -A ADDR=(
    [driver]=$NET.1 [monitor]=$NET.10 [pg1]=$NET.11 [pg2]=$NET.12 [api1]=$NET.21 [api2]=$NET.22
    [api3]=$NET.23
    [worker1]=$NET.31 [worker2]=$NET.32 [haproxy]=$NET.40 [redis]=$NET.50 [smtp]=$NET.60
)

log() { printf 'cluster: %s\n' "$*"; }
die() {
    printf 'cluster: error: %s\n' "$*" >&2
    exit 1
}

ns() { printf 'usher-%s' "$1"; }

# The veth end on the bridge; the other end, inside the namespace, is usher0.
veth() { printf 'usher-%s' "$1"; }

known_host() { [[ -n "${ADDR[$1]:-}" && "$1" != driver ]]; }

in_ns() {
    local host=$1
    shift
    ip netns exec "$(ns "$host")" "$@"
}

# Runs a command as postgres on a host, with pg_autoctl's files under the host's directory.
as_pg() {
    local host=$1
    shift
    (cd / && in_ns "$host" runuser -u postgres -- env \
        XDG_CONFIG_HOME="$CLUSTER/$host/xdg/config" XDG_DATA_HOME="$CLUSTER/$host/xdg/data" \
        XDG_RUNTIME_DIR="$CLUSTER/$host/xdg/run" PGHOST="$CLUSTER/$host/run" PGPORT=5432 \
        PATH="$PG_BIN:/usr/bin:/bin" "$@")
}

# Polls "$@" every 0.2 s until it succeeds or SECONDS passes; quiet.
wait_until() {
    local seconds=$1 end
    shift
    end=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}

# Starts a long-running command on a host in the background, its own session,
# its pid in HOST/NAME.pid and its output in HOST/NAME.log.
spawn() {
    local host=$1 name=$2
    shift 2
    # The subshell points its own descriptors at the log before it forks, so
    # that nothing of the caller's (a pipe, a terminal) stays open in the process.
    (
        cd "$CLUSTER/$host"
        exec </dev/null >>"$CLUSTER/$host/$name.log" 2>&1
        # shellcheck disable=SC2016
        ip netns exec "$(ns "$host")" setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ \
            "$CLUSTER/$host/$name.pid" "$@" &
    )
}

read_pid() { [[ -r "$1" ]] && tr -dc '0-9' <"$1"; }

pid_alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ---------------------------------------------------------------- network

# Refuses to build over anything else using the subnet.
check_subnet_free() {
    local other
    other=$(ip -o -4 addr show | awk -v br="$BRIDGE" '$2 != br && $4 ~ /^10\.77\.0\./ {print $2}')
    [[ -z "$other" ]] || die "10.77.0.0/24 is already used by: $other"
    other=$(ip -4 route show | awk -v br="$BRIDGE" '$1 ~ /^10\.77\.0\./ && $0 !~ ("dev " br " ")')
    [[ -z "$other" ]] || die "a route covers 10.77.0.0/24 already: $other"
}

# A host's namespace, its veth on the bridge and its address.
host_net_up() {
    local host=$1
    ip netns add "$(ns "$host")"
    ip link add "$(veth "$host")" type veth peer name usher0 netns "$(ns "$host")"
    ip link set "$(veth "$host")" master "$BRIDGE" up
    in_ns "$host" ip addr add "${ADDR[$host]}/24" dev usher0
    in_ns "$host" ip link set usher0 up
    in_ns "$host" ip link set lo up
}

net_up() {
    local host
    check_subnet_free
    ip link add "$BRIDGE" type bridge
    ip addr add "${ADDR[driver]}/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    for host in "${HOSTS[@]}"; do
        host_net_up "$host"
    done
    log "network: bridge $BRIDGE ${ADDR[driver]}/24, ${#HOSTS[@]} namespaces"
}

# link HOST up|down: the host's cable, as seen from the bridge.
cmd_link() {
    local host=$1 state=$2
    known_host "$host" || die "no host $host"
    [[ "$state" == up || "$state" == down ]] || die "link HOST up|down"
    ip link set "$(veth "$host")" "$state"
    in_ns "$host" ip link set usher0 "$state"
}

# ---------------------------------------------------------------- processes

# Every pid running in a host's namespace.
ns_pids() { ip netns pids "$(ns "$1")" 2>/dev/null || true; }

signal_host() {
    local host=$1 sig=$2 pid
    for pid in $(ns_pids "$host"); do
        kill "-$sig" "$pid" 2>/dev/null || true
    done
}

cmd_kill_host() {
    known_host "$1" || die "no host $1"
    signal_host "$1" KILL
}

all_hosts_empty() {
    local host
    for host in "${HOSTS[@]}" "${LATE_HOSTS[@]}"; do
        [[ -z "$(ns_pids "$host")" ]] || return 1
    done
}

# signal_all SIG SECONDS: sends SIG to every process of every namespace and
# waits up to SECONDS for them all to end.
signal_all() {
    local host
    for host in "${HOSTS[@]}" "${LATE_HOSTS[@]}"; do
        signal_host "$host" "$1"
    done
    wait_until "$2" all_hosts_empty
}

# Ends every process of every namespace: SIGTERM, then SIGKILL past a deadline.
stop_all_processes() {
    signal_all TERM 20 || signal_all KILL 10 || log "warning: processes still alive after SIGKILL"
}

# ---------------------------------------------------------------- PostgreSQL

# What every host (and the driver) uses to reach the primary, whichever it is.
# keepalives and tcp_user_timeout: a peer whose link is cut answers nothing,
# so a connection to it must fail by timer, not wait for a reset.
PG_PARAMS="target_session_attrs=read-write&connect_timeout=2&keepalives_idle=2&keepalives_interval=1&keepalives_count=2&tcp_user_timeout=4000"
database_url() { printf 'postgresql://postgres@%s:5432,%s:5432/usher?%s' "${ADDR[pg1]}" "${ADDR[pg2]}" "$PG_PARAMS"; }
# The API hosts' reads that may lag ([database] read_url): whichever of the
# two is the standby, so it follows a failover; with none (a standby down),
# usher-api reads the primary. Only for a build that knows the setting
# (one that does not refuses the key at once, before connecting).
read_url() { database_url | sed 's/target_session_attrs=read-write/target_session_attrs=standby/'; }
READ_URL_SUPPORTED=
read_url_supported() {
    local conf=$CLUSTER/read_url_probe.conf
    [[ -z "$READ_URL_SUPPORTED" ]] || return "$READ_URL_SUPPORTED"
    READ_URL_SUPPORTED=1
    printf '[database]\nurl = postgresql://127.0.0.1:1/none?connect_timeout=1\nread_url = %s\n' \
        "postgresql://127.0.0.1:1/none" >"$conf"
    [[ "$(env -i PATH=/usr/bin:/bin "$BUILD/usherctl" --config "$conf" queues 2>&1)" == *"unknown key 'read_url'"* ]] ||
        READ_URL_SUPPORTED=0
    return "$READ_URL_SUPPORTED"
}
MONITOR_URL="postgres://autoctl_node@${ADDR[monitor]}:5432/pg_auto_failover?sslmode=disable"

# The monitor's health checks, tuned from the defaults (check every 5 s, 5 s
# timeout, 2 retries 2 s apart, unhealthy after 20 s without a report, 30 s
# for a lost primary to demote itself: about 30-50 s to fail over) to a
# failover in seconds. primary_demote_timeout must stay above the keepers'
# network_partition_timeout: a primary cut off from the monitor and its
# standby stops taking writes before the standby may be promoted.
MONITOR_GUCS=(
    pgautofailover.health_check_period=1000
    pgautofailover.health_check_timeout=2000
    pgautofailover.health_check_max_retries=2
    pgautofailover.health_check_retry_delay=500
    pgautofailover.node_considered_unhealthy_timeout=4000
    pgautofailover.primary_demote_timeout=6000
)
KEEPER_NETWORK_PARTITION_TIMEOUT=4 # seconds

psql_host() {
    local host=$1
    shift
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "${ADDR[$host]}" -p 5432 -U postgres "$@"
}

# initdb with our own settings: small shared buffers (pg_auto_failover sizes
# them from the machine's RAM), durable commits, trust for the bed's subnet (a
# test bed, not a deployment), and host.conf, included from beside the data
# directory, for what differs by host (the socket directory). A standby's
# copy of postgresql.conf then reads its own host's file.
pg_initdb() {
    local host=$1 data=$CLUSTER/$1/pgdata
    as_pg "$host" initdb -D "$data" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 >"$CLUSTER/$host/initdb.log" 2>&1 || die "$host: initdb failed, see $CLUSTER/$host/initdb.log"
    as_pg "$host" tee "$data/postgresql.auto.conf" >/dev/null <<CONF
# Written by scripts/cluster.sh.
shared_buffers = '128MB'
max_connections = 200
fsync = on
synchronous_commit = on
CONF
    echo "include_if_exists = '../host.conf'" | as_pg "$host" tee -a "$data/postgresql.conf" >/dev/null
    echo "host all all $NET.0/24 trust" | as_pg "$host" tee -a "$data/pg_hba.conf" >/dev/null
    echo "host replication all $NET.0/24 trust" | as_pg "$host" tee -a "$data/pg_hba.conf" >/dev/null
}

pg_host_dirs() {
    mkdir -p "$CLUSTER/$1/xdg/config" "$CLUSTER/$1/xdg/data" "$CLUSTER/$1/xdg/run" "$CLUSTER/$1/run"
    echo "unix_socket_directories = '$CLUSTER/$1/run'" >"$CLUSTER/$1/host.conf"
    chown -R postgres:postgres "$CLUSTER/$1"
}

# "STATE" of a node as the monitor sees it: reported and assigned, e.g. "primary primary".
node_state() {
    psql_host monitor -d pg_auto_failover -tAc \
        "SELECT reportedstate || ' ' || goalstate FROM pgautofailover.node WHERE nodename = '$1'" 2>/dev/null
}

node_is() { [[ "$(node_state "$1")" == "$2 $2" ]]; }

monitor_up() {
    local g
    local -a sets=()
    pg_host_dirs monitor
    pg_initdb monitor
    echo "listen_addresses = '${ADDR[monitor]}'" | as_pg monitor tee -a "$CLUSTER/monitor/pgdata/postgresql.auto.conf" >/dev/null
    autoctl monitor create monitor --pgdata "$CLUSTER/monitor/pgdata" --pgport 5432 \
        --hostname "${ADDR[monitor]}" --auth trust --no-ssl --pgctl "$PG_BIN/pg_ctl" \
        >"$CLUSTER/monitor/create.log" 2>&1 || die "monitor: pg_autoctl create failed, see $CLUSTER/monitor/create.log"
    autoctl monitor config set --pgdata "$CLUSTER/monitor/pgdata" \
        postgresql.listen_addresses "${ADDR[monitor]}" >/dev/null
    keeper_run monitor
    wait_until "$DEADLINE" psql_host monitor -d pg_auto_failover -c 'SELECT 1' ||
        die "monitor: not answering on ${ADDR[monitor]}:5432 after ${DEADLINE}s, see $CLUSTER/monitor/"
    for g in "${MONITOR_GUCS[@]}"; do
        sets+=(-c "ALTER SYSTEM SET ${g%%=*} = ${g#*=}")
    done
    psql_host monitor -d pg_auto_failover "${sets[@]}" -c 'SELECT pg_reload_conf()' >/dev/null
    log "monitor: ready on ${ADDR[monitor]}:5432 (health checks every 1 s, failover after ~4 s + 6 s demote timeout)"
}

keeper_env() {
    printf '%s\n' "XDG_CONFIG_HOME=$CLUSTER/$1/xdg/config" "XDG_DATA_HOME=$CLUSTER/$1/xdg/data" \
        "XDG_RUNTIME_DIR=$CLUSTER/$1/xdg/run" "PGHOST=$CLUSTER/$1/run" PGPORT=5432 "PATH=$PG_BIN:/usr/bin:/bin"
}

# autoctl HOST ARGS: pg_autoctl ARGS on HOST as postgres, within the deadline.
autoctl() {
    local host=$1
    local -a envs
    shift
    mapfile -t envs < <(keeper_env "$host")
    (cd / && timeout "$DEADLINE" ip netns exec "$(ns "$host")" runuser -u postgres -- \
        env "${envs[@]}" pg_autoctl "$@")
}

# Starts (or restarts) a node's pg_autoctl, which starts and supervises its PostgreSQL.
keeper_run() {
    local host=$1
    local -a envs
    mapfile -t envs < <(keeper_env "$host")
    spawn "$host" pg_autoctl runuser -u postgres -- env "${envs[@]}" \
        pg_autoctl run --pgdata "$CLUSTER/$host/pgdata"
}

pg_node_up() {
    local host=$1
    pg_host_dirs "$host"
    [[ "$host" != pg1 ]] || pg_initdb "$host"
    autoctl "$host" create postgres --pgdata "$CLUSTER/$host/pgdata" --pgport 5432 \
        --pghost "$CLUSTER/$host/run" --listen "${ADDR[$host]}" --hostname "${ADDR[$host]}" \
        --name "$host" --dbname usher --monitor "$MONITOR_URL" --auth trust --no-ssl \
        --pgctl "$PG_BIN/pg_ctl" >"$CLUSTER/$host/create.log" 2>&1 ||
        die "$host: pg_autoctl create failed, see $CLUSTER/$host/create.log"
    autoctl "$host" config set --pgdata "$CLUSTER/$host/pgdata" \
        timeout.network_partition_timeout "$KEEPER_NETWORK_PARTITION_TIMEOUT" >/dev/null
    keeper_run "$host"
}

# The primary's synchronous_standby_names, from whichever node is primary.
sync_standby_names() {
    "$PG_BIN/psql" -X -tA "$(database_url)" -c 'SHOW synchronous_standby_names' 2>/dev/null
}

postgres_up() {
    monitor_up
    pg_node_up pg1
    wait_until "$DEADLINE" node_is pg1 single || die "pg1: not single after ${DEADLINE}s ($(node_state pg1)), see $CLUSTER/pg1/"
    log "pg1: primary (alone) on ${ADDR[pg1]}:5432"
    pg_node_up pg2
    wait_until "$DEADLINE" node_is pg2 secondary || die "pg2: not secondary after ${DEADLINE}s ($(node_state pg2)), see $CLUSTER/pg2/"
    wait_until "$DEADLINE" node_is pg1 primary || die "pg1: not primary after ${DEADLINE}s ($(node_state pg1))"
    wait_until "$DEADLINE" sync_replication_on || die "no synchronous standby after ${DEADLINE}s"
    log "pg2: synchronous standby on ${ADDR[pg2]}:5432 (synchronous_standby_names = $(sync_standby_names))"
}

# Synchronous replication is on and the standby is in its quorum: a commit
# is acknowledged only once the standby has it.
sync_replication_on() {
    local names state
    names=$(sync_standby_names)
    [[ -n "$names" ]] || return 1
    state=$("$PG_BIN/psql" -X -tA "$(database_url)" -c \
        "SELECT string_agg(sync_state, ',') FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null)
    [[ "$state" == sync || "$state" == quorum ]]
}

# ---------------------------------------------------------------- Redis, SMTP

redis_up() {
    mkdir -p "$CLUSTER/redis"
    spawn redis redis redis-server --bind "${ADDR[redis]}" --port 6379 --protected-mode no \
        --dir "$CLUSTER/redis" --save "" --appendonly no --daemonize no
    wait_until "$DEADLINE" redis_ping || die "redis: not answering after ${DEADLINE}s, see $CLUSTER/redis/redis.log"
    log "redis: ready on ${ADDR[redis]}:6379"
}

redis_ping() { [[ "$(redis-cli -h "${ADDR[redis]}" -p 6379 ping 2>/dev/null)" == PONG ]]; }

smtp_up() {
    mkdir -p "$CLUSTER/smtp/mail/tmp" "$CLUSTER/smtp/mail/new" "$CLUSTER/smtp/mail/cur"
    spawn smtp smtp "$PYTHON" -m aiosmtpd -n -l "${ADDR[smtp]}:$SMTP_PORT" \
        -c aiosmtpd.handlers.Mailbox "$CLUSTER/smtp/mail"
    wait_until "$DEADLINE" port_open "${ADDR[smtp]}" "$SMTP_PORT" ||
        die "smtp: not listening after ${DEADLINE}s, see $CLUSTER/smtp/smtp.log"
    log "smtp: sink on ${ADDR[smtp]}:$SMTP_PORT -> $CLUSTER/smtp/mail"
}

# ---------------------------------------------------------------- HAProxy

haproxy_conf() {
    cat <<CONF
# Written by scripts/cluster.sh.
global
    maxconn 4096
    stats socket $CLUSTER/haproxy/admin.sock mode 600 level admin

defaults
    mode http
    option httplog
    log stdout format raw local0
    # A dead API host costs a client at most a connect timeout: the request
    # goes to the other host (redispatch). A request already sent is never
    # resent by HAProxy; the client retries it with its Idempotency-Key.
    timeout connect 1s
    timeout client 30s
    timeout server 15s
    timeout check 1s
    retries 2
    option redispatch
    option forwardfor

frontend api
    bind ${ADDR[haproxy]}:$LB_PORT
    default_backend api

# /readyz answers 200 only while every loop thread of usher-api has a live
# database connection: a host without one is taken out within about a second.
backend api
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2
    server api1 ${ADDR[api1]}:$API_PORT check
    server api2 ${ADDR[api2]}:$API_PORT check

listen stats
    bind ${ADDR[haproxy]}:$LB_STATS_PORT
    stats enable
    stats uri /stats
    stats refresh 5s
CONF
}

haproxy_up() {
    mkdir -p "$CLUSTER/haproxy"
    haproxy_conf >"$CLUSTER/haproxy/haproxy.cfg"
    haproxy -c -q -f "$CLUSTER/haproxy/haproxy.cfg" || die "haproxy: invalid configuration"
    spawn haproxy haproxy haproxy -db -f "$CLUSTER/haproxy/haproxy.cfg"
    wait_until "$DEADLINE" lb_serving || die "haproxy: no API host up behind it after ${DEADLINE}s"
    log "haproxy: http://${ADDR[haproxy]}:$LB_PORT -> api1, api2 (stats http://${ADDR[haproxy]}:$LB_STATS_PORT/stats)"
}

# Both API hosts are UP behind HAProxy.
lb_serving() { [[ "$(lb_up_servers)" == "api1 api2" ]]; }

# The API hosts HAProxy sends traffic to, from its stats (CSV).
lb_up_servers() {
    curl -fsS --max-time 2 "http://${ADDR[haproxy]}:$LB_STATS_PORT/stats;csv" 2>/dev/null |
        awk -F, '$1 == "api" && $2 != "BACKEND" && $18 == "UP" {print $2}' | sort | xargs
}

# ---------------------------------------------------------------- Usher

ticket_secret() {
    local file=$CLUSTER/ticket.secret
    if [[ ! -s "$file" ]]; then
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$file")
    fi
    cat "$file"
}

# Search: worker1 is the indexer (the only host running the pool of the index
# queue) and serves its index to the API hosts, which search their replicas.
SEARCH_PORT=7010
search_conf() {
    case $1 in
    worker1) printf 'changesets = 100\nreplication_listen = %s:%s\n' "${ADDR[worker1]}" "$SEARCH_PORT" ;;
    api*) printf 'replica_dir = %s\nmaster = %s:%s\n' "$CLUSTER/$1/replica/search" "${ADDR[worker1]}" "$SEARCH_PORT" ;;
    esac
}

# The configuration of an api or worker host. The database URL lists both
# PostgreSQL hosts; documents are in the database ([documents] store =
# database, the default), so no host needs another's files; the search
# index is the host's own (a replica of worker1's on the API hosts).
usher_conf() {
    local host=$1 addr=${ADDR[$1]} queue kind
    cat <<CONF
# Written by scripts/cluster.sh for host $host ($addr).
[database]
url = $(database_url)
$([[ "$host" != api* ]] || ! read_url_supported || echo "read_url = $(read_url)")

[redis]
url = redis://${ADDR[redis]}:6379/0

[mail]
# This tree's templates: the binaries default to the installed ones.
template_dir = $ROOT/conf/templates

[smtp]
url = smtp://${ADDR[smtp]}:$SMTP_PORT
timeout_ms = 5000

[search]
index_dir = $CLUSTER/$host/search/index
$(search_conf "$host")

[tickets]
secret = $(ticket_secret)

[log]
level = info

[api]
listen = $addr:$API_PORT
metrics_listen = $addr:$API_METRICS_PORT
threads = 2
db_connections = 2
# Behind HAProxy every client shares its address: the proxy limits
# connections, and the tests count registrations, not rate limits.
connections_per_address = 0
rate_per_minute = 0
# The client is the address HAProxy puts in X-Forwarded-For.
trusted_proxies = ${ADDR[haproxy]}/32

[webhooks]
allow_private_targets = true

[worker]
# The bed's tests drain test.noop jobs on the queue "work".
test_handlers = true

[engine]
# A killed host's leases end 1 s after the job's timeout.
lease_grace_ms = 1000
poll_interval_ms = 200

[defaults]
# Plentiful attempts with short backoffs: a job failed by a failover runs
# again within a second or two, and the tests assert that none died.
max_attempts = 25
timeout_ms = 30000
backoff_base_ms = 100
backoff_cap_ms = 1000

# One pool on each worker host serves every queue. Children take a few jobs
# at a time, and the supervisor claims a few ahead (short jobs: test.noop,
# tickets, emails).
[pool.cluster]
tier = high
min = 2
max = 4
initial = 2
child_queue = 4
prefetch = 8
sustain_ms = 1000
scale_out_per_minute = 60
shutdown_grace_ms = 5000
heartbeat_ms = 500

CONF
    for queue in work notifications reports analytics media default; do
        printf '\n[queue.%s]\npool = cluster\n' "$queue"
    done
    # The index queue's own pool, which only worker1 runs: one indexer.
    printf '\n[pool.search]\ntier = medium\nmin = 1\nmax = 1\nchild_queue = 16\n'
    printf '\n[queue.index]\npool = search\n'
    # Tickets are rendered on worker1 only and mailed from worker2 only, so
    # that every mail carries a PDF another host put in the document store.
    for pool in tickets:pdf mail:email; do
        printf '\n[pool.%s]\ntier = high\nmin = 1\nmax = 2\ninitial = 1\nchild_queue = 4\n' "${pool%%:*}"
        printf 'prefetch = 8\nsustain_ms = 1000\nheartbeat_ms = 500\nshutdown_grace_ms = 5000\n'
        printf '\n[queue.%s]\npool = %s\n' "${pool#*:}" "${pool%%:*}"
    done
    for kind in email.send:email pdf.ticket:pdf pdf.badge:pdf index.document:index \
        analytics.rollup:analytics notify.webhook:notifications notify.inbox:notifications \
        report.attendees:reports report.checkins:reports; do
        printf '\n[kind.%s]\nqueue = %s\n' "${kind%%:*}" "${kind#*:}"
    done
}

usher_kind() {
    case $1 in
    api*) echo api ;;
    worker*) echo worker ;;
    *) return 1 ;;
    esac
}

# Starts the Usher processes of an api or worker host (after a kill, too):
# usher-api and its search replica (usherctl search replicate); usher-worker
# --pool cluster; on worker1 also the ticket renderer (--pool tickets), the
# indexer (--pool search) and its replication server (usherctl search
# serve); on worker2 also the mailer (--pool mail). A clean environment, so
# that no USHER_* variable of the caller overrides its configuration.
cmd_start_usher() {
    local host=$1 kind
    kind=$(usher_kind "$host") || die "start-usher: $host is not an api or worker host"
    [[ -z "$(ns_pids "$host")" ]] || die "start-usher: $host still has processes"
    mkdir -p "$CLUSTER/$host/search" "$CLUSTER/$host/replica"
    if [[ "$kind" == api ]]; then
        spawn "$host" usher env -i PATH=/usr/bin:/bin "$BUILD/usher-api" --config "$CLUSTER/$host/usher.conf"
        spawn "$host" search-replicate env -i PATH=/usr/bin:/bin "$BUILD/usherctl" \
            --config "$CLUSTER/$host/usher.conf" search replicate
    else
        spawn "$host" usher env -i PATH=/usr/bin:/bin "$BUILD/usher-worker" \
            --config "$CLUSTER/$host/usher.conf" --pool cluster
    fi
    if [[ "$host" == worker1 ]]; then
        spawn "$host" usher-tickets env -i PATH=/usr/bin:/bin "$BUILD/usher-worker" \
            --config "$CLUSTER/$host/usher.conf" --pool tickets
        spawn "$host" usher-search env -i PATH=/usr/bin:/bin "$BUILD/usher-worker" \
            --config "$CLUSTER/$host/usher.conf" --pool search
        spawn "$host" search-serve env -i PATH=/usr/bin:/bin "$BUILD/usherctl" \
            --config "$CLUSTER/$host/usher.conf" search serve
    fi
    if [[ "$host" == worker2 ]]; then
        spawn "$host" usher-mail env -i PATH=/usr/bin:/bin "$BUILD/usher-worker" \
            --config "$CLUSTER/$host/usher.conf" --pool mail
    fi
}

# add-api HOST: an API host that joins the running bed late (api3): its
# namespace and address on the bridge, its configuration, usher-api and its
# search replica, which starts empty and catches up from worker1. Not behind
# HAProxy: the tests talk to it directly. down takes it down with the rest.
cmd_add_api() {
    local host=$1
    [[ " ${LATE_HOSTS[*]} " == *" $host "* ]] || die "add-api: $host is not one of: ${LATE_HOSTS[*]}"
    ip link show "$BRIDGE" >/dev/null 2>&1 || die "add-api: the bed is not up"
    ip netns list | grep -q "^$(ns "$host")\\b" || host_net_up "$host"
    mkdir -p "$CLUSTER/$host"
    usher_conf "$host" >"$CLUSTER/$host/usher.conf"
    cmd_start_usher "$host"
    wait_until "$DEADLINE" api_ready "$host" || die "$host: /readyz not 200 after ${DEADLINE}s, see $CLUSTER/$host/usher.log"
    log "$host: ready on ${ADDR[$host]}:$API_PORT, its search replica catching up from worker1"
}

# lb-server HOST ready|maint: HAProxy sends HOST traffic again, or none
# (through its admin socket; Python, as the bed has no socat).
cmd_lb_server() {
    local host=$1 state=$2
    [[ "$state" == ready || "$state" == maint ]] || die "lb-server HOST ready|maint"
    in_ns haproxy "$PYTHON" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(("set server api/%s state %s\n" % (sys.argv[2], sys.argv[3])).encode())
reply = s.recv(4096).decode().strip()
if reply:
    sys.exit(reply)' "$CLUSTER/haproxy/admin.sock" "$host" "$state"
}

api_ready() { curl -fsS --max-time 2 -o /dev/null "http://${ADDR[$1]}:$API_PORT/readyz"; }

# The address of the host whose supervisor leads maintenance: the session
# that holds the maintenance lock (engine/maint.h) comes from it.
lock_holder() {
    "$PG_BIN/psql" -X -tA "$(database_url)" -c "SELECT host(a.client_addr) FROM pg_locks l
        JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted
        AND l.classid = 0 AND l.objid = 1431521362 AND l.objsubid = 1" 2>/dev/null
}

leader_is() { [[ "$(lock_holder)" == "${ADDR[$1]}" ]]; }

usher_up() {
    local host
    for host in api1 api2 worker1 worker2; do
        mkdir -p "$CLUSTER/$host"
        usher_conf "$host" >"$CLUSTER/$host/usher.conf"
    done
    [[ -x "$BUILD/usher-api" && -x "$BUILD/usher-worker" && -x "$BUILD/usherctl" ]] ||
        die "no usher binaries in $BUILD (scripts/build.sh, or set USHER_BUILD_DIR)"
    env -i PATH=/usr/bin:/bin "$BUILD/usherctl" --config "$CLUSTER/worker1/usher.conf" migrate --dir "$ROOT/schemas/migrations" \
        >"$CLUSTER/migrate.log" 2>&1 || die "migrate failed, see $CLUSTER/migrate.log"
    log "usher: migrated"
    # worker1 first, so that it leads maintenance when the tests begin.
    cmd_start_usher worker1
    wait_until "$DEADLINE" leader_is worker1 ||
        die "worker1: not leading maintenance after ${DEADLINE}s, see $CLUSTER/worker1/usher.log"
    cmd_start_usher worker2
    for host in api1 api2; do
        cmd_start_usher "$host"
    done
    for host in api1 api2; do
        wait_until "$DEADLINE" api_ready "$host" || die "$host: /readyz not 200 after ${DEADLINE}s, see $CLUSTER/$host/usher.log"
    done
    log "usher: api1, api2 ready on :$API_PORT; worker1 (maintenance leader), worker2 running"
}

# ---------------------------------------------------------------- commands

namespaces_exist() { ip netns list | grep -q '^usher-'; }

# Every namespace of ours, including hosts an older layout had.
our_namespaces() { ip netns list | awk '$1 ~ /^usher-/ {print $1}'; }

describe_leftovers() {
    local name
    ip -br link show "$BRIDGE" 2>/dev/null | sed 's/^/  link: /' || true
    for name in $(our_namespaces); do
        printf '  namespace %s: %s processes\n' "$name" "$(ip netns pids "$name" 2>/dev/null | wc -w)"
    done
}

cmd_up() {
    ((EUID == 0)) || die "needs root (network namespaces)"
    [[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL 15 is not installed; run scripts/install-deps.sh"
    command -v pg_autoctl >/dev/null || die "pg_autoctl is not installed; run scripts/install-deps.sh"
    command -v haproxy >/dev/null || die "haproxy is not installed; run scripts/install-deps.sh"
    if namespaces_exist || ip link show "$BRIDGE" >/dev/null 2>&1; then
        if cmd_status >/dev/null 2>&1; then
            log "already up"
            return 0
        fi
        # A bed left by a run that was killed (a CI machine used before, a
        # crash) is ours to clear only when the caller says so: the test
        # runner does, a person at a shell decides for themselves.
        [[ "${USHER_CLUSTER_RECLAIM:-0}" == 1 ]] ||
            die "a partial cluster exists (see: $0 status); run: $0 down"
        log "a partial cluster exists; taking it down first. What was there:"
        describe_leftovers
        cmd_down
    fi
    rm -rf "$CLUSTER"
    mkdir -p "$CLUSTER"
    chmod 0755 "$CLUSTER"
    runuser -u postgres -- test -x "$CLUSTER" ||
        die "the postgres user cannot reach $CLUSTER; set USHER_CLUSTER_DIR to a directory it can"
    # A failed step ends the script through die or errexit: take it all down
    # again (the logs stay in $CLUSTER).
    trap 'log "up failed; taking the cluster down (logs in $CLUSTER)"; cmd_down >/dev/null 2>&1 || true' EXIT
    net_up
    redis_up
    smtp_up
    postgres_up
    usher_up
    haproxy_up
    trap - EXIT
    cmd_env >"$CLUSTER/env"
    log "up: eval \"\$($0 env)\" for the tests' variables"
}

cmd_down() {
    local host name pid
    ((EUID == 0)) || die "needs root (network namespaces)"
    stop_all_processes
    for host in "${HOSTS[@]}" "${LATE_HOSTS[@]}"; do
        ip link del "$(veth "$host")" 2>/dev/null || true
        ip netns del "$(ns "$host")" 2>/dev/null || true
    done
    # Namespaces of ours that no host of this layout names (an older
    # revision's, a late host): their processes too, then the namespace.
    for name in $(our_namespaces); do
        for pid in $(ip netns pids "$name" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$name" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    log "down"
}

# probe OK BAD CMD...: appends OK or BAD to cmd_status's line; BAD sets its rc.
probe() {
    local ok=$1 bad=$2
    shift 2
    if "$@" >/dev/null 2>&1; then
        line+=", $ok"
    else
        line+=", $bad"
        rc=1
    fi
}

# One line per host; exit 1 if anything is not as up left it.
cmd_status() {
    local host rc=0 line
    ip link show "$BRIDGE" >/dev/null 2>&1 || {
        echo "bridge $BRIDGE: missing"
        return 1
    }
    for host in "${HOSTS[@]}"; do
        line="$host (${ADDR[$host]}):"
        if ! ip netns list | grep -q "^$(ns "$host")\\b"; then
            echo "$line no namespace"
            rc=1
            continue
        fi
        if [[ "$(in_ns "$host" cat /sys/class/net/usher0/operstate 2>/dev/null)" != up ]]; then
            line+=" link down"
            rc=1
        fi
        line+=" $(wc -w <<<"$(ns_pids "$host")") processes"
        case $host in
        monitor) probe "monitor up" "monitor DOWN" psql_host monitor -d pg_auto_failover -c 'SELECT 1' ;;
        pg1 | pg2) line+=", $(node_state "$host" || echo unknown)" ;;
        api1 | api2) probe ready "NOT ready" api_ready "$host" ;;
        worker1 | worker2) [[ -n "$(ns_pids "$host")" ]] || rc=1 ;;
        haproxy) line+=", serving: $(lb_up_servers)" ;;
        redis) probe PONG "no PONG" redis_ping ;;
        smtp) probe listening "NOT listening" port_open "${ADDR[smtp]}" "$SMTP_PORT" ;;
        esac
        echo "$line"
    done
    if sync_replication_on; then
        echo "replication: synchronous ($(sync_standby_names)); maintenance leader: $(lock_holder)"
    else
        echo "replication: NOT synchronous"
        rc=1
    fi
    return "$rc"
}

cmd_env() {
    printf 'export USHER_CLUSTER_DIR=%q\n' "$CLUSTER"
    printf 'export USHER_CLUSTER_DATABASE_URL=%q\n' "$(database_url)"
    printf 'export USHER_CLUSTER_MONITOR_URL=%q\n' "postgres://postgres@${ADDR[monitor]}:5432/pg_auto_failover"
    printf 'export USHER_CLUSTER_LB=%q\n' "http://${ADDR[haproxy]}:$LB_PORT"
    printf 'export USHER_CLUSTER_LB_STATS=%q\n' "http://${ADDR[haproxy]}:$LB_STATS_PORT/stats;csv"
    printf 'export USHER_CLUSTER_MAILDIR=%q\n' "$CLUSTER/smtp/mail"
}

main() {
    local cmd=${1:-}
    shift || true
    case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    addr) printf '%s\n' "${ADDR[${1:?addr HOST}]:?no host $1}" ;;
    exec)
        known_host "${1:-}" || die "exec HOST CMD..."
        in_ns "$@"
        ;;
    link) cmd_link "${1:?link HOST up|down}" "${2:?link HOST up|down}" ;;
    kill-host) cmd_kill_host "${1:?kill-host HOST}" ;;
    start-usher) cmd_start_usher "${1:?start-usher HOST}" ;;
    add-api) cmd_add_api "${1:?add-api HOST}" ;;
    lb-server) cmd_lb_server "${1:?lb-server HOST ready|maint}" "${2:?lb-server HOST ready|maint}" ;;
    ctl) in_ns worker1 env -i PATH=/usr/bin:/bin "$BUILD/usherctl" --config "$CLUSTER/worker1/usher.conf" "$@" ;;
    keeper-run) keeper_run "${1:?keeper-run HOST}" ;;
    lock-holder) lock_holder ;;
    node-state) node_state "${1:?node-state HOST}" ;;
    lb-up) lb_up_servers ;;
    *)
        echo "usage: $0 up|down|status|env|addr HOST|exec HOST CMD...|link HOST up|down|kill-host HOST|start-usher HOST|add-api HOST|lb-server HOST ready|maint|ctl ARGS...|keeper-run HOST|lock-holder|node-state HOST|lb-up" >&2
        exit 2
        ;;
    esac
}

main "$@"
