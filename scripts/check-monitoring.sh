#!/usr/bin/env bash
# Checks what conf/prometheus and conf/grafana ship, with Prometheus' own
# promtool (Debian's prometheus package): the alert rules load, their unit
# tests pass (usher-alerts.test.yml), and every query of the Grafana
# dashboard parses as PromQL (each becomes a recording rule in a temporary
# file that promtool checks; Grafana's $__rate_interval reads as 5m).
# Whether the metrics they name exist is test_metrics' job.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
command -v promtool >/dev/null || {
    echo "check-monitoring: promtool is missing (scripts/install-deps.sh installs prometheus)" >&2
    exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

promtool check rules "$root/conf/prometheus/usher-alerts.yml"
(cd "$root/conf/prometheus" && promtool test rules usher-alerts.test.yml)

/usr/bin/python3 - "$root/conf/grafana/usher.json" >"$tmp/dashboard-rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
n = 0
for panel in dash["panels"]:
    for target in panel["targets"]:
        n += 1
        expr = target["expr"].replace("$__rate_interval", "5m")
        print(f"      - record: usher_dashboard_query_{n}")
        print(f"        expr: {json.dumps(expr)}")
if n == 0:
    sys.exit("no queries in the dashboard")
PY
promtool check rules "$tmp/dashboard-rules.yml"
