#!/usr/bin/env bash
# Long runs of the crash-consistency checks, with totals:
#   scripts/torture.sh [MINUTES]   (default 10) about 40% of the time the power-loss
#                                  simulator with random seeds (10,000 crash images per
#                                  durability policy and seed), 30% the kill -9 crash test in
#                                  200-round runs, 30% every libFuzzer target (scripts/fuzz.sh)
#   scripts/torture.sh --short     CI: one random power-loss seed (2,000 images per policy)
#                                  and 50 kill -9 rounds, no fuzzing (CI fuzzes on its own)
# Prints the totals: rounds, crash images, acknowledged events checked, and lost (must be 0).
# A failing seed is printed; rerun it with SLUICE_POWER_LOSS_SEED=<seed> (or
# SLUICE_CRASH_SEED for the kill -9 test) on the test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
short=0
minutes=10
if [ "${1:-}" = "--short" ]; then short=1; elif [ -n "${1:-}" ]; then minutes=$1; fi
if ! [[ "$minutes" =~ ^[0-9]+$ ]] || [ "$minutes" -lt 1 ]; then
  echo "usage: scripts/torture.sh [MINUTES | --short]" >&2
  exit 2
fi
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
power=build/tests/bus/bus_power_loss_test
crash=build/tests/tools/tools_crash_test
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

images=0 acked=0 lost=0 refusals=0 exposed=0 seeds=0 rounds=0 crash_acked=0 failed=0
run_power() {  # SEED IMAGES
  local out="$log/power_$1.txt"
  if ! SLUICE_POWER_LOSS_SEED=$1 SLUICE_POWER_LOSS_IMAGES=$2 "$power" --gtest_filter='Durability/PowerLoss.*' >"$out" 2>&1; then
    echo "power loss: seed $1 FAILED (rerun: SLUICE_POWER_LOSS_SEED=$1 $power)"; grep -E "image [0-9]+|Failure" "$out" | head -5
    failed=1
  fi
  while read -r line; do
    # "power loss, durability D, seed S: P crash points, I images, A acknowledged events checked; lost L, refusals R, corrupt exposed C; ..."
    i=$(sed -E 's/.* ([0-9]+) images.*/\1/' <<<"$line"); a=$(sed -E 's/.* ([0-9]+) acknowledged events.*/\1/' <<<"$line")
    l=$(sed -E 's/.*; lost ([0-9]+), refusals.*/\1/' <<<"$line"); r=$(sed -E 's/.*, refusals ([0-9]+),.*/\1/' <<<"$line")
    c=$(sed -E 's/.*corrupt exposed ([0-9]+);.*/\1/' <<<"$line")
    images=$((images + i)); acked=$((acked + a)); lost=$((lost + l)); refusals=$((refusals + r)); exposed=$((exposed + c))
  done < <(grep '^power loss, durability' "$out")
  seeds=$((seeds + 1))
}
run_crash() {  # ROUNDS
  local out="$log/crash.txt"
  if ! SLUICE_CRASH_ROUNDS=$1 "$crash" >"$out" 2>&1; then
    echo "kill -9: FAILED"; grep -E "SLUICE_CRASH_SEED|Failure" "$out" | head -5
    failed=1
  fi
  rounds=$((rounds + $1))
  local a
  a=$(sed -nE 's/^crash test: ([0-9]+) acknowledged events checked.*/\1/p' "$out" | tail -1)
  crash_acked=$((crash_acked + ${a:-0}))
}

saga_rounds=0
run_saga() {  # ROUNDS: kill -9 across concurrent sagas (every saga ends, no effect twice)
  if ! SLUICE_SAGA_ROUNDS=$1 build/tests/runtime/runtime_saga_crash_test >"$log/saga.txt" 2>&1; then
    echo "saga kill -9: FAILED"; grep -E "Failure|saga " "$log/saga.txt" | head -5
    failed=1
  fi
  saga_rounds=$((saga_rounds + $1))
}

start=$(date +%s)
if [ "$short" = 1 ]; then
  run_power $(( (RANDOM << 15) | RANDOM )) 2000
  run_crash 50
else
  total=$((minutes * 60))
  power_until=$((start + total * 4 / 10))
  crash_until=$((start + total * 7 / 10))
  while [ "$(date +%s)" -lt "$power_until" ]; do run_power $(( (RANDOM << 15) | RANDOM )) 10000; done
  while [ "$(date +%s)" -lt "$crash_until" ]; do run_crash 200; done
  run_saga 300
  fuzz_left=$(( start + total - $(date +%s) ))
  if [ "$fuzz_left" -gt 0 ]; then
    targets=$(find build-fuzz/tests/fuzz -type f -perm -u+x ! -name '*.so' 2>/dev/null | wc -l)
    [ "$targets" -gt 0 ] || targets=8
    SLUICE_SKIP_DEPS=1 bash scripts/fuzz.sh $(( fuzz_left / targets > 10 ? fuzz_left / targets : 10 )) || failed=1
  fi
fi
echo "torture totals ($(( $(date +%s) - start )) s): power loss: $seeds seeds, $images crash images," \
     "$acked acknowledged events checked, lost $lost, refusals $refusals, corrupt exposed $exposed;" \
     "kill -9: $rounds rounds, $crash_acked acknowledged events checked, lost 0 unless reported above;" \
     "saga kill -9: $saga_rounds rounds"
if [ "$failed" != 0 ] || [ "$lost" != 0 ] || [ "$refusals" != 0 ] || [ "$exposed" != 0 ]; then
  echo "torture: FAILED" >&2
  exit 1
fi
echo "torture: ok"
