#!/usr/bin/env bash
# The README's first command: install packages, build, and show a log being written and read.
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
