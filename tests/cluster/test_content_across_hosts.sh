#!/usr/bin/env bash
# An upload on one API host downloads from the other: the document store is
# in PostgreSQL ([documents] store = database), so api2 serves what api1
# received, and api1 what api2 received, with no shared filesystem. Each
# upload spans several 256 KiB chunks; the download has the same SHA-256 as
# the upload, whole and for a byte range, with the content hash as its ETag.
#
# shellcheck source=tests/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZE=$((3 * 1024 * 1024 + 4321)) # 13 chunks, the last one short
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

read -r _ TOKEN <<<"$(organizer_token)" || abort "no organizer token"
[[ -n "$TOKEN" ]] || abort "no organizer token"
EVENT=$(api api1 POST /v1/events "{\"name\":\"Cluster content $RUN_ID\",
    \"starts_at\":\"2030-05-04T09:00:00Z\",\"ends_at\":\"2030-05-05T18:00:00Z\"}" | jq -er .id) ||
    abort "no event created through api1"
SESSION=$(api_session api1 "$EVENT" "Slides across hosts $RUN_ID") || abort "no session created through api1"

# upload_on HOST FILE: the new document's id, uploaded through HOST.
upload_on() {
    curl -fsS --max-time 60 -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/pdf' \
        --data-binary "@$2" \
        "http://$(addr "$1"):8080/v1/events/$EVENT/content?session_id=$SESSION&filename=$(basename "$2")" |
        jq -er .id
}

# download_from HOST ID OUT [RANGE]: the HTTP status; the body in OUT, headers in OUT.head.
download_from() {
    local -a range=()
    [[ -z "${4:-}" ]] || range=(-H "Range: bytes=$4")
    curl -sS --max-time 60 -o "$3" -D "$3.head" -w '%{http_code}' "${range[@]}" \
        -H "Authorization: Bearer $TOKEN" "http://$(addr "$1"):8080/v1/content/$2"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# across FROM TO: upload through FROM, download through TO.
across() {
    local from=$1 to=$2 file=$TMP/$1-to-$2.pdf id status etag
    head -c "$SIZE" /dev/urandom >"$file"
    id=$(upload_on "$from" "$file") || {
        fail "upload of $SIZE bytes through $from"
        return
    }
    say "uploaded $SIZE bytes through $from: document $id, sha256 $(sha "$file")"
    status=$(download_from "$to" "$id" "$file.got")
    check "$from -> $to: status of the download" 200 "$status"
    check "$from -> $to: bytes downloaded" "$SIZE" "$(stat -c %s "$file.got")"
    check "$from -> $to: sha256 of the download" "$(sha "$file")" "$(sha "$file.got")"
    etag=$(grep -i '^ETag:' "$file.got.head" | tr -d '\r"' | awk '{print $2}')
    check "$from -> $to: ETag is the content's sha256" "$(sha "$file")" "$etag"
    # A range that straddles a chunk boundary (256 KiB).
    status=$(download_from "$to" "$id" "$file.part" 262000-262999)
    check "$from -> $to: status of a range" 206 "$status"
    check "$from -> $to: sha256 of the range" "$(tail -c +262001 "$file" | head -c 1000 | sha256sum | cut -d' ' -f1)" \
        "$(sha "$file.part")"
}

across api1 api2
across api2 api1
check "chunks stored for this event's uploads" 26 "$(sql "SELECT count(*) FROM document_chunks c
    JOIN documents d ON d.sha256 = c.sha256 WHERE d.event_id = $EVENT AND d.kind = 'content'")"
finish
