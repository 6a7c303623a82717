#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 60); the
# targets of modules other than bus (the log's scanner and decoder) get a third of it, to
# keep CI short.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
bash scripts/install-deps.sh
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSLUICE_BUILD_FUZZ=ON -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF \
  -DSLUICE_BUILD_TOOLS=OFF -DSLUICE_BUILD_SAMPLES=OFF >/dev/null
cmake --build build-fuzz
mapfile -t targets < <(find build-fuzz/tests/fuzz -type f -perm -u+x ! -name '*.so' | sort)
if [ "${#targets[@]}" -eq 0 ]; then echo "no fuzz targets built" >&2; exit 1; fi
mkdir -p build-fuzz/artifacts
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$(basename "$t")
  mkdir -p "$corpus"
  budget=$seconds
  case "$t" in */fuzz/bus/*) ;; *) budget=$(( (seconds + 2) / 3 )) ;; esac
  echo "== $(basename "$t"): ${budget}s"
  # Targets that know SLUICE_FUZZ_SEED_DIR write well-formed seeds there (nothing binary is
  # committed); crash artifacts go to build-fuzz/artifacts/, not the working directory.
  SLUICE_FUZZ_SEED_DIR=$corpus "$t" -runs=0 "$corpus" >/dev/null 2>&1 || true
  "$t" -max_total_time="$budget" -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$(basename "$t")-" "$corpus" 2>&1 | tail -n 4
done
echo "fuzz: ${#targets[@]} passed, 0 failed"
