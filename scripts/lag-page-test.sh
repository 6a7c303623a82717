#!/usr/bin/env bash
# The live lag page in a real browser (Debian's headless Chromium):
#   scripts/lag-page-test.sh [BANK_LEDGER [ARTIFACT_DIR]]
# Starts the bank ledger sample with its metrics endpoint on a loopback port, opens
# http://127.0.0.1:PORT/ in headless Chromium, lets the page poll /stats.json for a few
# seconds, and checks the rendered DOM: at least two readings drawn, a row per projection
# (balances, rich_accounts, daily_totals) with non-empty figures, latency percentiles and
# chart lines. Saves the DOM and a screenshot under ARTIFACT_DIR (default build/lag-page/).
# Exit 0: passed; 1: failed; 77: skipped (no Chromium, or it cannot start here) — ctest
# reports 77 as skipped (SKIP_RETURN_CODE).
set -euo pipefail
cd "$(dirname "$0")/.."
ledger=${1:-build/samples/bank_ledger/bank_ledger}
out=${2:-build/lag-page}
mkdir -p "$out"
out=$(cd "$out" && pwd)

skip() { echo "SKIPPED: lag page browser test: $*" >&2; exit 77; }
fail() { echo "FAILED: lag page browser test: $*" >&2; exit 1; }

browser=""
for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
[ -n "$browser" ] || skip "Chromium is not installed (apt-get install chromium; scripts/install-deps.sh does)"
[ -x "$ledger" ] || fail "no bank ledger binary at $ledger (build it first)"

work=$(mktemp -d)
ledger_pid=""
cleanup() {
  if [ -n "$ledger_pid" ]; then kill "$ledger_pid" 2>/dev/null || true; wait "$ledger_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port (bound and released; the ledger takes it right after).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
       echo $((20000 + RANDOM % 20000)))

# Enough requests to keep the ledger busy for the whole test; killed at the end.
"$ledger" --dir "$work/log" --producers 2 --accounts 1000 --events 200000000 --metrics-port "$port" \
  >"$out/bank_ledger.out" 2>&1 &
ledger_pid=$!

url="http://127.0.0.1:$port/"
# Until every projection has applied events (a busy machine may take a while to get there).
applied() { grep -o '"events_applied":[1-9]' "$out/stats.json" 2>/dev/null | wc -l; }
for _ in $(seq 1 600); do
  if curl -sf "${url}stats.json" -o "$out/stats.json" 2>/dev/null && [ "$(applied)" -ge 3 ]; then break; fi
  kill -0 "$ledger_pid" 2>/dev/null || fail "the bank ledger exited: $(tail -5 "$out/bank_ledger.out")"
  sleep 0.2
done
grep -q daily_totals "$out/stats.json" 2>/dev/null || fail "no /stats.json with the ledger's projections at $url"
[ "$(applied)" -ge 3 ] || fail "the ledger's projections applied nothing within 120 s ($out/stats.json)"

flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --hide-scrollbars
       --user-data-dir="$work/profile" --window-size=1280,1000)
# Virtual time runs the page's timers (a poll a second) without waiting in real time for
# them; each fetch is a real request to the ledger.
budget=6000
dom="$out/lag-page.html"
# Checks the rendered DOM; prints what is wrong and returns 1, or prints the figures.
check_dom() {
  local updates row v f p applied lines
  updates=$(sed -n 's/.*<span id="updates">\([0-9]*\)<\/span>.*/\1/p' "$dom" | head -1)
  [ -n "$updates" ] || { echo "no #updates in the page"; return 1; }
  [ "$updates" -ge 2 ] || { echo "the page drew $updates reading(s), expected at least 2"; return 1; }
  for p in balances rich_accounts daily_totals; do
    row=$(grep -o "<tr class=\"projection[^\"]*\" data-name=\"$p\">.*" "$dom" | sed 's/<\/tr>.*//' | head -1)
    [ -n "$row" ] || { echo "no row for projection $p"; return 1; }
    field() { echo "$row" | sed -n "s/.*<td data-field=\"$1\">\([^<]*\)<\/td>.*/\1/p"; }
    applied=$(field events_applied)
    [ -n "$applied" ] && [ "$applied" != "0" ] || { echo "$p: events applied is '$applied'"; return 1; }
    for f in events_behind time_behind p50 p99 max; do
      v=$(field $f)
      # "–": no event applied in the window (the readings of one run may all fall within
      # a second of real time); the caller tries again.
      [ -n "$v" ] && [ "$v" != "–" ] || { echo "$p: $f is empty ('$v')"; return 1; }
    done
    grep -q "data-projection=\"$p\"" "$dom" || { echo "no charts for $p"; return 1; }
    echo "  $p: applied $applied, behind $(field events_behind) events / $(field time_behind), p50 $(field p50), p99 $(field p99)"
  done
  lines=$(grep -o '<polyline data-series="p50" points="[^"]*,[^"]*' "$dom" | wc -l)
  [ "$lines" -ge 3 ] || { echo "latency chart lines drawn: $lines, expected one per projection"; return 1; }
  echo "lag page: $updates readings drawn, 3 projections with figures"
}
why=""
for attempt in 1 2 3; do
  if ! timeout 90 "$browser" "${flags[@]}" --virtual-time-budget=$budget --dump-dom "$url" \
       >"$dom" 2>"$out/chromium.err"; then
    grep -q . "$dom" 2>/dev/null ||
      skip "Chromium could not start here: $(grep -v '^$' "$out/chromium.err" | tail -3 | tr '\n' ' ')"
  fi
  [ -s "$dom" ] || skip "Chromium printed no DOM: $(tail -3 "$out/chromium.err" | tr '\n' ' ')"
  if why=$(check_dom); then break; fi
  echo "attempt $attempt: $why" >&2
  why="attempt $attempt: $why"
  sleep 1
done
case "$why" in attempt*) fail "$why (DOM in $dom)" ;; esac
echo "$why"

# The screenshot: the test's artifact, for a person to look at.
timeout 90 "$browser" "${flags[@]}" --virtual-time-budget=$budget --screenshot="$out/lag-page.png" "$url" \
  >/dev/null 2>>"$out/chromium.err" || true
[ -s "$out/lag-page.png" ] || fail "no screenshot written ($out/chromium.err)"
echo "artifacts: DOM $dom, screenshot $out/lag-page.png"
