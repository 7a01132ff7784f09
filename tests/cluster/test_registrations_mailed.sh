#!/usr/bin/env bash
# A registration storm through HAProxy, spread over both API hosts: every
# confirmed registration gets exactly one email, counted in the SMTP sink's
# Maildir on the smtp host, whose ticket was rendered on one worker host and
# mailed from the other: the pdf queue's pool (tickets) runs on worker1 only,
# the email queue's (mail) on worker2 only, and the PDF goes from one to the
# other through the document store in PostgreSQL, no shared filesystem.
# Each mail came from worker2 (the sink's X-Peer), carries the ticket as a
# PDF attachment, and the PDF's text names the attendee.
#
# Functions called through wait_for look unreachable to shellcheck.
# shellcheck disable=SC2317 source=tests/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENTS=6
PER_CLIENT=30
N=$((CLIENTS * PER_CLIENT))
MAILDIR=$USHER_CLUSTER_MAILDIR/new
trap 'storm_stop 2>/dev/null || true; rm -rf "$STORM_DIR"' EXIT

lb_sessions() {
    curl -fsS --max-time 2 "$USHER_CLUSTER_LB_STATS" |
        awk -F, -v s="$1" '$1 == "api" && $2 == s {print $8}'
}

# This run's mails: one "KEY" line per mail, from its To: header.
mailed_keys() {
    grep -h -m1 '^To:' -r "$MAILDIR" 2>/dev/null | grep -o "c-$RUN_ID-[0-9]*-[0-9]*" | cut -c3- || true
}
all_mailed() { (($(mailed_keys | wc -l) >= N)); }
chain_left() { sql "SELECT count(*) FROM usher_jobs WHERE kind IN ('pdf.ticket', 'email.send')
    AND state IN ('available', 'running')"; }
chain_done() { [[ "$(chain_left)" == 0 ]]; }

# The usher-worker pools running on HOST, from their command lines.
pools_on() {
    local pid
    for pid in $(ip netns pids "usher-$1"); do
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -o 'usher-worker .*--pool [a-z]*' | awk '{print $NF}'
    done | sort | xargs
}
say "pools: worker1 $(pools_on worker1); worker2 $(pools_on worker2)"
[[ " $(pools_on worker1) " == *" tickets "* && " $(pools_on worker1) " != *" mail "* ]] ||
    fail "worker1 does not render tickets alone: $(pools_on worker1)"
[[ " $(pools_on worker2) " == *" mail "* && " $(pools_on worker2) " != *" tickets "* ]] ||
    fail "worker2 does not mail alone: $(pools_on worker2)"

wait_for 60 "$BED" lb-up || true
[[ "$("$BED" lb-up)" == "api1 api2" ]] || abort "HAProxy does not send to both API hosts: $("$BED" lb-up)"
read -r EVENT TT <<<"$(new_event 100000)"
API1=$(lb_sessions api1)
API2=$(lb_sessions api2)
storm_start "$CLIENTS" "$PER_CLIENT" "$EVENT" "$TT"
storm_wait
say "requests HAProxy sent: api1 $(($(lb_sessions api1) - API1)), api2 $(($(lb_sessions api2) - API2))"
(($(lb_sessions api1) > API1 && $(lb_sessions api2) > API2)) || fail "the storm did not reach both API hosts"
check "registrations acknowledged" "$N" "$(storm_acked | cut -d' ' -f1 | sort -u | wc -l)"
check "registrations stored" "$N" "$(sql "SELECT count(*) FROM registrations WHERE event_id = $EVENT")"

wait_for 240 all_mailed || fail "only $(mailed_keys | wc -l) of $N attendees mailed after 240 s"
wait_for 120 chain_done || fail "ticket or mail jobs still waiting after 120 s: $(chain_left)"
mailed_keys | sort | uniq -c | awk '{print $2, $1}' >"$STORM_DIR/mails"
check "mails received for this storm" "$N" "$(mailed_keys | wc -l)"
check "attendees mailed" "$N" "$(wc -l <"$STORM_DIR/mails")"
check "attendees mailed more than once" 0 "$(awk '$2 > 1' "$STORM_DIR/mails" | wc -l)"
check "confirmed attendees without a mail" 0 "$(comm -23 <(storm_acked | cut -d' ' -f1 | sort -u) <(cut -d' ' -f1 "$STORM_DIR/mails") | wc -l)"
check "ticket and mail jobs dead" 0 "$(sql "SELECT count(*) FROM usher_jobs WHERE kind IN ('pdf.ticket', 'email.send') AND state = 'dead'")"
check "tickets recorded" "$N" "$(sql "SELECT count(*) FROM documents d JOIN registrations r ON r.id = d.registration_id
     WHERE d.kind = 'ticket' AND r.event_id = $EVENT")"

# Each mail: from worker2, with the PDF that worker1 rendered, naming its attendee.
mkdir -p "$STORM_DIR/pdf"
"$ROOT/tests/cluster/mail_tickets.py" "$MAILDIR" "$RUN_ID" "$STORM_DIR/pdf" >"$STORM_DIR/parsed" ||
    fail "the Maildir could not be read"
check "mails sent from worker2 ($(addr worker2))" "$N" "$(awk -v a="$(addr worker2)" '$2 == a' "$STORM_DIR/parsed" | wc -l)"
check "mails with the ticket PDF attached" "$N" "$(awk '$3 != "-"' "$STORM_DIR/parsed" | wc -l)"
named=0
while read -r key _ pdf; do
    [[ "$pdf" != - ]] || continue
    pdftotext "$pdf" - 2>/dev/null | grep -qF "Attendee $key" && named=$((named + 1))
done <"$STORM_DIR/parsed"
check "ticket PDFs whose text names the attendee (pdftotext)" "$N" "$named"
finish
