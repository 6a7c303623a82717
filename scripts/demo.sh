#!/usr/bin/env bash
# The README's first command: install packages, build, show a log being written and read,
# then run the bank ledger sample (projections, live lag, sluice stat, sluice rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
sluice=./build/tools/sluice
demo=${SLUICE_DEMO_DIR:-/tmp/sluice-demo}
rm -rf "$demo"
echo "== sluice gen: 200000 events over 4 streams, group commit"
$sluice gen "$demo" --count 200000 --payload-bytes 64 --streams 4 --durability group --quiet
echo "== sluice gen: 5 more under sync; each acknowledged position is printed as it is flushed"
$sluice gen "$demo" --count 5 --payload-bytes 16 --streams 4 --durability sync
echo "== sluice info"
$sluice info "$demo"
echo "== sluice verify"
$sluice verify "$demo"
echo "== sluice dump --limit 3"
$sluice dump "$demo" --limit 3
echo "== sluice dump --stream stream-2 --from 100000 --limit 2"
$sluice dump "$demo" --stream stream-2 --from 100000 --limit 2

# The bank ledger: 16 client threads send commands (deposit, withdraw, transfer; idempotent
# retries) for shared accounts to the BankAccount aggregate through two command buses (real
# version conflicts, retried); 3 projections (balances, accounts over a threshold, per-day
# totals) with live lag; `sluice stat` reads the same counters from outside.
bank=${SLUICE_BANK_DIR:-/tmp/sluice-bank}
rm -rf "$bank"
echo "== bank_ledger: 60000 requests as commands from 16 clients on shared accounts, 3 projections (live lag below), audit at the end"
./build/samples/bank_ledger/bank_ledger --dir "$bank" --events 60000 &
pid=$!
sleep 1.5
echo "== sluice stat $bank (from another process, while it runs)"
$sluice stat "$bank" --count 1 || true
wait $pid
echo "== sluice stat --json (after it stopped)"
$sluice stat "$bank" --json
echo "== sluice rebuild: replay the log into a fresh balances model; the digest matches the live one above"
$sluice rebuild --app ./build/samples/bank_ledger/bank_ledger "$bank" balances --quiet
echo "== sluice stat --dead-letters: none (the aggregate rejected the overdraft before anything was written)"
$sluice stat "$bank" --dead-letters | head -5
echo "== bank_ledger --audit 0: replay one account step by step against \"balance >= 0\" (offline, writes nothing)"
./build/samples/bank_ledger/bank_ledger --dir "$bank" --audit 0
echo "== the same sample with --codec flatbuffers (handlers unchanged); sluice dump decodes the payloads"
rm -rf "$bank-fb"
./build/samples/bank_ledger/bank_ledger --dir "$bank-fb" --codec flatbuffers --events 30000 | tail -3
$sluice dump "$bank-fb" --limit 2
$sluice rebuild --app ./build/samples/bank_ledger/bank_ledger "$bank-fb" balances --quiet --dry-run
