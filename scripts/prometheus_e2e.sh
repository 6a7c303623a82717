#!/usr/bin/env bash
# End-to-end check of the Prometheus endpoints with a real server (Debian's `prometheus`):
# a bank ledger runs with its metrics endpoint on loopback, `sluice stat --prometheus` serves
# the same counters file from another process; Prometheus scrapes both every second. After
# two scrapes, its HTTP API must answer `histogram_quantile(...)` over the latency histogram
# and `sluice_projection_events_behind` with values.
#   scripts/prometheus_e2e.sh [BUILD_DIR]     (default build/; needs bank_ledger and sluice)
# Skipped (exit 0, with a message) when prometheus, curl or jq is missing and cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-${SLUICE_BUILD_DIR:-build}}
say() { echo "prometheus_e2e: $*"; }

missing() { ! command -v prometheus >/dev/null || ! command -v curl >/dev/null || ! command -v jq >/dev/null; }
if missing && [ "$(id -u)" = 0 ] && [ "${SLUICE_SKIP_DEPS:-0}" != 1 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus curl jq >/dev/null 2>&1 || true
fi
if missing; then
  say "SKIPPED: needs Debian's prometheus, curl and jq (apt-get install prometheus curl jq)"
  exit 0
fi
for bin in "$build/samples/bank_ledger/bank_ledger" "$build/tools/sluice"; do
  [ -x "$bin" ] || { say "FAILED: $bin is not built"; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice_prom_e2e.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (up to $2 s) until file $1 has a line matching $3; prints the first.
wait_line() {
  for _ in $(seq 1 $(( $2 * 10 ))); do
    if grep -m1 -E "$3" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# The bank ledger: few clients, many requests, so it is still running while Prometheus scrapes.
"$build/samples/bank_ledger/bank_ledger" --dir "$work/log" --producers 2 --events 5000000 --metrics-port 0 \
  >"$work/ledger.out" 2>&1 &
pids+=($!)
ledger_target=$(wait_line "$work/ledger.out" 60 'metrics: http' | grep -oE '127\.0\.0\.1:[0-9]+' | head -1) ||
  { say "FAILED: the bank ledger did not start"; cat "$work/ledger.out"; exit 1; }
# The same counters served by the tool (it stays up if the ledger finishes first).
"$build/tools/sluice" stat "$work/log" --prometheus 0 >"$work/stat.out" 2>&1 &
pids+=($!)
stat_target=$(wait_line "$work/stat.out" 30 'serving' | grep -oE '127\.0\.0\.1:[0-9]+' | head -1) ||
  { say "FAILED: sluice stat --prometheus did not start"; cat "$work/stat.out"; exit 1; }

cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: bank_ledger
    static_configs: [{targets: ["$ledger_target"]}]
  - job_name: sluice_stat
    static_configs: [{targets: ["$stat_target"]}]
YML
prom_port=""
for _ in 1 2 3 4 5; do
  port=$(( 20000 + RANDOM % 40000 ))
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$port" >"$work/prometheus.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then prom_port=$port; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if [ -n "$prom_port" ]; then pids+=("$pid"); break; fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
[ -n "$prom_port" ] || { say "FAILED: prometheus did not start"; tail -20 "$work/prometheus.log"; exit 1; }
api="http://127.0.0.1:$prom_port/api/v1"
say "prometheus on 127.0.0.1:$prom_port scraping $ledger_target (bank ledger) and $stat_target (sluice stat)"

# query EXPR: the first result's value ("" if none).
query() { curl -sf --get "$api/query" --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // empty'; }

# Two scrapes of each target.
for _ in $(seq 1 120); do
  a=$(query 'count_over_time(sluice_head_position{job="sluice_stat"}[5m])')
  b=$(query 'count_over_time(sluice_head_position{job="bank_ledger"}[5m])')
  if [ "${a:-0}" -ge 2 ] 2>/dev/null && [ "${b:-0}" -ge 2 ] 2>/dev/null; then break; fi
  sleep 0.5
done
[ "${a:-0}" -ge 2 ] && [ "${b:-0}" -ge 2 ] ||
  { say "FAILED: fewer than two scrapes (sluice_stat ${a:-0}, bank_ledger ${b:-0})"; curl -s "$api/targets" | jq -c '.data.activeTargets[] | {scrapeUrl, health, lastError}'; exit 1; }

fail=0
check() {  # check NAME EXPR: a finite number
  local v
  v=$(query "$2")
  if [[ "$v" =~ ^-?[0-9.]+(e[-+]?[0-9]+)?$ ]]; then say "ok: $1 = $v"; else say "FAILED: $1 returned '${v}' for $2"; fail=1; fi
}
for job in sluice_stat bank_ledger; do
  check "p99 latency ($job)" \
    "histogram_quantile(0.99, sum by (le) (sluice_projection_applied_latency_seconds_bucket{job=\"$job\"}))"
  check "events behind ($job)" "max(sluice_projection_events_behind{job=\"$job\"})"
done
# Over a window: meaningful while the ledger appends (NaN once nothing moves), so informational.
say "p99 over the last minute (bank ledger): $(query 'histogram_quantile(0.99, sum by (le) (rate(sluice_projection_applied_latency_seconds_bucket{job="bank_ledger"}[1m])))')"
if command -v promtool >/dev/null; then
  if curl -sf "http://$stat_target/metrics" | promtool check metrics >"$work/promtool.out" 2>&1; then
    say "ok: promtool check metrics"
  else
    say "FAILED: promtool check metrics"; cat "$work/promtool.out"; fail=1
  fi
fi
[ $fail = 0 ] && say "passed" || exit 1
