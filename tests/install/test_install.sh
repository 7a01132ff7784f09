#!/usr/bin/env bash
# The Debian package, installed and run as systemd/README.md says (issue 16).
# As root:
#   tests/install/test_install.sh [BUILD_DIR]     (scripts/test.sh, phase "install")
#
# 1. scripts/package.sh BUILD_DIR (default build-package) builds the .deb. Its
#    Depends: must name the package of every library the three binaries link
#    (readelf's NEEDED, found with ldconfig and dpkg -S), adduser and
#    fonts-dejavu-core; its conffiles are /etc/usher's two files.
# 2. A fresh root without touching this machine: in a private mount and network
#    namespace (unshare), an overlay over / whose upper layer is a tmpfs, and a
#    private stack (scripts/stack.sh, $USHER_*_PORT, state in a temporary
#    directory) on the namespace's own loopback. dpkg -i installs the package in
#    the root for real: the postinst adds the user usher and the stores.
# 3. Then what systemd/README.md's "Install" says: usher.env gets the stack's
#    URLs (Redis with a password, as redis://:SECRET@HOST:PORT/0) and a ticket
#    secret, usherctl --config /etc/usher/usher.conf migrate, and each unit of
#    usher.target runs as its installed ExecStart= line says, with its User=,
#    Group= and EnvironmentFile= (no systemd as PID 1 here): usher-api and the
#    pools realtime, standard and batch.
# 4. An organizer registers an attendee through HTTP; the SMTP sink receives one
#    mail for them, with the ticket PDF attached.
# Prints one line per check and "N passed, N failed" last; exits 1 on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
DEADLINE=${USHER_INSTALL_DEADLINE:-120}
PASSED=0
FAILED=0

log() { printf 'test_install: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    echo "$PASSED passed, $((FAILED + 1)) failed"
    exit 1
}

# check NAME EXPECTED ACTUAL
check() {
    if [[ "$2" == "$3" ]]; then
        echo "ok   $1"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL $1: expected '$2', got '$3'"
        FAILED=$((FAILED + 1))
    fi
}

# wait_for SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}

# ---------------------------------------------------------------- the package

# The packages of the libraries that binary $1 links (its NEEDED entries).
library_packages() {
    local lib path
    for lib in $(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}')
        [[ -n "$path" ]] || die "$1 links $lib, which ldconfig does not know"
        dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1 ||
            dpkg -S "$(realpath "$path")" | head -n 1 | cut -d: -f1
    done
}

check_package() {
    local deb=$1 x depends missing pkg
    x=$(mktemp -d)
    dpkg-deb -x "$deb" "$x/root"
    dpkg-deb -e "$deb" "$x/control"
    depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//')
    missing=0
    for pkg in $(for b in usher-api usher-worker usherctl; do
        library_packages "$x/root/usr/bin/$b"
    done | sort -u) adduser fonts-dejavu-core; do
        grep -qxF "$pkg" <<<"$depends" || {
            log "Depends: lacks $pkg"
            missing=$((missing + 1))
        }
    done
    check "Depends: names every linked library's package, adduser and fonts" 0 "$missing"
    check "conffiles" "/etc/usher/usher.conf /etc/usher/usher.env" \
        "$(sort "$x/control/conffiles" | xargs)"
    check "the binaries are in /usr/bin" 3 \
        "$(find "$x/root/usr/bin" -type f -name 'usher*' | wc -l)"
    check "a manual page for each binary" 3 \
        "$(find "$x/root/usr/share/man/man1" -name 'usher*.1.gz' | wc -l)"
    check "copyright and changelog" "changelog.gz copyright" \
        "$(find "$x/root/usr/share/doc/usher" -maxdepth 1 -type f -name 'c*' -printf '%f\n' | sort | xargs)"
    # Every tag that is an error or a warning; the overrides the package
    # ships say why each overridden one is deliberate.
    local tags
    tags=$(lintian "$deb" 2>/dev/null | grep -E '^[EW]: ' || true)
    [[ -z "$tags" ]] || log "lintian: $tags"
    check "lintian: no error or warning" 0 "$(grep -c . <<<"$tags" || true)"
    rm -rf "$x"
}

# ---------------------------------------------------------------- the fresh root

M= # the root: an overlay over /
STACK=

stack() { USHER_STATE_DIR=$STACK "$ROOT/scripts/stack.sh" "$@"; }

# Every process run in the root, started by run_unit: "PID UNIT" lines.
UNIT_PIDS=()

stop_units() {
    local pid
    for pid in "${UNIT_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${UNIT_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    UNIT_PIDS=()
}

cleanup() {
    stop_units
    if [[ -n "$STACK" ]]; then stack clean >/dev/null 2>&1 || true; fi
    # The mounts go with the namespace.
}

make_root() {
    local tmp=$1
    mount -t tmpfs -o mode=0755 usher-install "$tmp/layer"
    mkdir "$tmp/layer/upper" "$tmp/layer/work"
    mount -t overlay overlay \
        -o "lowerdir=/,upperdir=$tmp/layer/upper,workdir=$tmp/layer/work" "$M"
    mount --rbind /dev "$M/dev"
    mount --rbind /proc "$M/proc"
    mount --rbind /sys "$M/sys"
    mount -t tmpfs -o mode=0755 run "$M/run"
    mount -t tmpfs -o mode=1777 tmp "$M/tmp"
}

# unit_key UNIT KEY: the value of KEY= in the installed unit file.
unit_key() { sed -n "s/^$2=//p" "$M/lib/systemd/system/$1" | tail -n 1; }

# run_unit UNIT [INSTANCE]: starts the unit's ExecStart= in the root as its User=
# and Group=, with only its EnvironmentFile='s variables (and PATH, as systemd).
run_unit() {
    local unit=$1 instance=${2:-} exec env_file uid gid
    exec=$(unit_key "$unit" ExecStart)
    exec=${exec//%i/$instance}
    env_file=$(unit_key "$unit" EnvironmentFile)
    env_file=${env_file#-}
    uid=$(chroot "$M" id -u "$(unit_key "$unit" User)")
    gid=$(chroot "$M" getent group "$(unit_key "$unit" Group)" | cut -d: -f3)
    local -a vars=()
    mapfile -t vars < <(grep -E '^[A-Z_][A-Z0-9_]*=' "$M$env_file")
    local name=${unit/@/@$instance}
    # shellcheck disable=SC2086 # ExecStart= is split on spaces, as systemd does here
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${vars[@]}" \
        chroot --userspec="$uid:$gid" --groups="$gid" "$M" $exec >"$LOGS/$name.log" 2>&1 &
    UNIT_PIDS+=($!)
    log "started $name: $exec (pid $!)"
}

# in_root COMMAND...: as root in the root, with only usher.env's variables
# (README: set -a; . usher.env), none of this shell's (the stack's USHER_*).
in_root() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        chroot "$M" sh -c 'set -a && . /etc/usher/usher.env && set +a && exec "$@"' sh "$@"
}

api() {
    curl -sS --max-time 10 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@"
}

api_ready() { curl -fsS --max-time 2 -o /dev/null "http://$LISTEN/readyz" 2>/dev/null; }

sql() { psql -XAtq "$USHER_DATABASE_URL" -c "$1"; }

mails_to() { grep -l -m1 "^To:.*$1" -r "$STACK/mail/new" 2>/dev/null || true; }
mailed() { [[ -n "$(mails_to "$1")" ]]; }

inside() {
    local deb=$1 tmp secret redis_password event tt reg email mail
    tmp=$(mktemp -d)
    chmod 0755 "$tmp" # PostgreSQL runs as postgres, which must reach the stack's state
    M=$tmp/root
    STACK=$tmp/stack
    LOGS=${USHER_INSTALL_LOGS:-$tmp/logs}
    mkdir -p "$M" "$tmp/layer" "$STACK" "$LOGS"
    trap cleanup EXIT
    ip link set lo up
    make_root "$tmp"

    # The stack, on this namespace's loopback; Redis asks for a password.
    stack start >"$LOGS/stack.log" 2>&1 || die "the stack did not start: $(tail -n 5 "$LOGS/stack.log")"
    eval "$(stack env)"
    REDIS_PORT=${USHER_REDIS_PORT:-56379}
    redis_password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config set requirepass "$redis_password" >/dev/null ||
        die "redis config set requirepass failed"

    cp "$deb" "$M/root/usher.deb"
    chroot "$M" dpkg -i /root/usher.deb >"$LOGS/dpkg.log" 2>&1 ||
        die "dpkg -i failed: $(tail -n 5 "$LOGS/dpkg.log")"
    # shellcheck disable=SC2016 # dpkg-query's own ${Status}
    check "dpkg: usher installed" "install ok installed" \
        "$(chroot "$M" dpkg-query -W -f='${Status}' usher)"
    check "postinst: the system user usher" "usher usher" \
        "$(chroot "$M" id -un usher) $(chroot "$M" id -gn usher)"
    check "postinst: the stores, owned by usher, 0750" \
        "usher:usher 750 usher:usher 750 usher:usher 750 usher:usher 750" \
        "$(chroot "$M" stat -c '%U:%G %a' /var/lib/usher \
            /var/lib/usher/documents /var/lib/usher/search /var/lib/usher/replica | xargs)"
    check "usher.env: root only" "root:root 600" "$(stat -c '%U:%G %a' "$M/etc/usher/usher.env")"
    check "usher-api --version" "usher-api $VERSION" "$(chroot "$M" /usr/bin/usher-api --version)"
    check "usher-worker --version" "usher-worker $VERSION" "$(chroot "$M" /usr/bin/usher-worker --version)"
    check "usherctl --version" "usherctl $VERSION" "$(chroot "$M" /usr/bin/usherctl --version)"

    # README "Install": the secrets in usher.env, then migrate as root.
    secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    cat >>"$M/etc/usher/usher.env" <<ENV
USHER_DATABASE_URL=$USHER_DATABASE_URL
USHER_REDIS_URL=redis://:$redis_password@127.0.0.1:$REDIS_PORT/0
USHER_SMTP_URL=$USHER_SMTP_URL
USHER_TICKET_SECRET=$secret
ENV
    in_root usherctl --config /etc/usher/usher.conf migrate >"$LOGS/migrate.log" 2>&1 ||
        die "usherctl migrate failed: $(tail -n 5 "$LOGS/migrate.log")"
    check "usherctl migrate: every migration of /usr/share/usher/migrations" \
        "$(find "$M/usr/share/usher/migrations" -name '*.sql' | wc -l)" \
        "$(sql 'SELECT count(*) FROM usher_migrations')"

    # usher.target's units, each as its unit file says.
    for pool in $(unit_key usher.target Wants | tr ' ' '\n' | sed -n 's/^usher-worker@\(.*\)\.service$/\1/p'); do
        run_unit usher-worker@.service "$pool"
    done
    run_unit usher-api.service
    LISTEN=$(sed -n 's/^listen = //p' "$M/etc/usher/usher.conf")
    wait_for "$DEADLINE" api_ready || die "usher-api not answering on $LISTEN: $(tail -n 5 "$LOGS/usher-api.service.log")"

    # An organizer, an event, a ticket type and one registration, through HTTP.
    TOKEN=$(in_root usherctl --config /etc/usher/usher.conf token create --role organizer \
        --organizer "$(in_root usherctl --config /etc/usher/usher.conf organizer create 'Install Test')")
    event=$(api -X POST "http://$LISTEN/v1/events" --data \
        '{"name":"Install Test","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T17:00:00Z"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    tt=$(api -X POST "http://$LISTEN/v1/events/$event/ticket-types" --data '{"name":"General","capacity":10}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    email="ada-${secret:0:12}@example.org"
    check "POST /v1/events/$event/registrations" 201 "$(api -o "$tmp/reg.json" -w '%{http_code}' \
        -X POST "http://$LISTEN/v1/events/$event/registrations" -H "Idempotency-Key: install-$secret" \
        --data "{\"ticket_type_id\":$tt,\"name\":\"Ada Installer\",\"email\":\"$email\"}")"
    reg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["registration_id"])' "$tmp/reg.json")

    wait_for "$DEADLINE" mailed "$email" || die "no mail to $email after ${DEADLINE}s"
    mail=$(mails_to "$email")
    check "mails to the attendee" 1 "$(wc -l <<<"$mail")"
    check "the mail carries the ticket PDF" 1 "$(python3 -c '
import email, sys
msg = email.message_from_binary_file(open(sys.argv[1], "rb"))
print(sum(1 for p in msg.walk() if p.get_content_type() == "application/pdf"
          and p.get_payload(decode=True).startswith(b"%PDF-")))' "$mail")"
    check "the ticket is stored for registration $reg" 1 \
        "$(sql "SELECT count(*) FROM documents WHERE registration_id = $reg")"
    check "every unit still running" "${#UNIT_PIDS[@]}" \
        "$(for pid in "${UNIT_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && echo "$pid"; done | wc -l)"
    check "no job dead" 0 "$(sql "SELECT count(*) FROM usher_jobs WHERE state = 'dead'")"

    # Removal keeps the configuration and the stores; purge deletes the
    # stores and the configuration, and keeps the user (postrm).
    stop_units
    chroot "$M" dpkg -r usher >>"$LOGS/dpkg.log" 2>&1 || die "dpkg -r failed: $(tail -n 5 "$LOGS/dpkg.log")"
    check "dpkg -r: binaries gone, configuration and stores kept" "0 yes yes" \
        "$(find "$M/usr/bin" -name 'usher*' | wc -l) $([[ -f $M/etc/usher/usher.conf ]] && echo yes) $([[ -d $M/var/lib/usher/documents ]] && echo yes)"
    chroot "$M" dpkg -P usher >>"$LOGS/dpkg.log" 2>&1 || die "dpkg -P failed: $(tail -n 5 "$LOGS/dpkg.log")"
    check "dpkg -P: stores and configuration gone, the user kept" "no no usher" \
        "$([[ -e $M/var/lib/usher ]] && echo yes || echo no) $([[ -e $M/etc/usher ]] && echo yes || echo no) $(chroot "$M" id -un usher)"
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

main() {
    local deb
    ((EUID == 0)) || die "needs root (unshare, mount, chroot, dpkg)"
    if [[ "${1:-}" == --inside ]]; then
        PASSED=${USHER_INSTALL_PASSED:-0}
        FAILED=${USHER_INSTALL_FAILED:-0}
        VERSION=$2
        inside "$3"
        return
    fi
    deb=$("$ROOT/scripts/package.sh" "${1:-build-package}") || die "scripts/package.sh failed"
    log "package: $deb"
    check_package "$deb"
    VERSION=$(dpkg-deb -f "$deb" Version)
    # The inner run prints the counts of both.
    USHER_INSTALL_PASSED=$PASSED USHER_INSTALL_FAILED=$FAILED \
        exec unshare --mount --net --propagation private "$0" --inside "$VERSION" "$deb"
}

main "$@"
