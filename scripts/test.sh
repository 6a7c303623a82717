#!/usr/bin/env bash
# The README's second command: install packages, build, run every test.
#   scripts/test.sh                      all tests, normal build (build/)
#   scripts/test.sh --sanitize address   all tests under ASan+UBSan (build-asan/)
#   scripts/test.sh --sanitize thread    the concurrency tests under TSan (build-tsan/)
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=""
if [ "${1:-}" = "--sanitize" ]; then sanitize=${2:?address or thread}; fi
bash scripts/install-deps.sh
case "$sanitize" in
  "")      dir=build;      cmake_args=();                                                ctest_args=() ;;
  address) dir=build-asan; cmake_args=(-DSLUICE_SANITIZE=address -DSLUICE_BUILD_BENCH=OFF); ctest_args=() ;;
  thread)  dir=build-tsan; cmake_args=(-DSLUICE_SANITIZE=thread -DSLUICE_BUILD_BENCH=OFF);  ctest_args=(-L concurrency) ;;
  *) echo "scripts/test.sh: --sanitize takes address or thread, not '$sanitize'" >&2; exit 2 ;;
esac
SLUICE_BUILD_DIR=$dir bash scripts/build.sh "${cmake_args[@]}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
ctest --test-dir "$dir" --output-on-failure --timeout 900 -j2 "${ctest_args[@]}"
# A real Prometheus server against the engine's endpoints (skipped, with a message, without the package).
if [ -z "$sanitize" ]; then bash scripts/prometheus_e2e.sh "$dir"; fi
# The installed package: find_package(Sluice) and pkg-config consumers built against a temporary prefix.
if [ -z "$sanitize" ]; then bash scripts/package_test.sh "$dir"; fi
