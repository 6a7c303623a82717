#!/usr/bin/env bash
# The installed package as an outsider uses it: installs BUILD_DIR to a temporary prefix,
# then builds and runs small consumers against it only:
#   - CMake: find_package(Sluice) + target_link_libraries(consumer sluice::runtime)
#   - CMake: find_package(Sluice COMPONENTS bus) with FlatBuffers, nlohmann_json and simdjson
#     made unfindable (a bus consumer needs none of them)
#   - pkg-config: sluice.pc and sluice-bus.pc
# and reports which heavy headers the projection API pulls in.
#   scripts/package_test.sh [BUILD_DIR]   (default build/, already built)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
build=$(cd "${1:-${SLUICE_BUILD_DIR:-build}}" && pwd)
say() { echo "package_test: $*"; }
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice_package.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  { say "FAILED: cmake --install"; tail -20 "$work/install.log"; exit 1; }
say "installed to a temporary prefix"

# 1. find_package(Sluice) and sluice::runtime.
cmake -S "$src/tests/package/consumer" -B "$work/c1" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >"$work/c1.log" 2>&1 &&
  cmake --build "$work/c1" >>"$work/c1.log" 2>&1 ||
  { say "FAILED: find_package(Sluice) consumer"; tail -30 "$work/c1.log"; exit 1; }
"$work/c1/consumer" "$work/log1"
say "ok: find_package(Sluice) + sluice::runtime"

# 2. COMPONENTS bus: nothing but Threads.
cmake -S "$src/tests/package/bus_consumer" -B "$work/c2" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_DISABLE_FIND_PACKAGE_FlatBuffers=ON -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_simdjson=ON -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON >"$work/c2.log" 2>&1 &&
  cmake --build "$work/c2" >>"$work/c2.log" 2>&1 ||
  { say "FAILED: find_package(Sluice COMPONENTS bus) consumer"; tail -30 "$work/c2.log"; exit 1; }
"$work/c2/bus_consumer" "$work/log2"
say "ok: find_package(Sluice COMPONENTS bus) without FlatBuffers, nlohmann_json, simdjson"

# 3. pkg-config.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/$(gcc -print-multiarch 2>/dev/null || true)/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# shellcheck disable=SC2046
c++ -o "$work/pc_consumer" "$src/tests/package/consumer/main.cc" $(pkg-config --cflags --libs sluice) ||
  { say "FAILED: pkg-config sluice consumer"; exit 1; }
"$work/pc_consumer" "$work/log3"
# shellcheck disable=SC2046
c++ -o "$work/pc_bus_consumer" "$src/tests/package/consumer/main_bus.cc" $(pkg-config --cflags --libs sluice-bus) ||
  { say "FAILED: pkg-config sluice-bus consumer"; exit 1; }
"$work/pc_bus_consumer" "$work/log4"
say "ok: pkg-config sluice and sluice-bus"

# 4. What the projection API's header pulls into a projection author's build.
echo '#include "sluice/projections/projection.h"' >"$work/p.cc"
c++ -std=c++20 -I"$prefix/include" -H -fsyntax-only "$work/p.cc" 2>"$work/p.h" || true
heavy=$(grep -oE '(flatbuffers/flatbuffers\.h|nlohmann/json\.hpp)' "$work/p.h" | sort -u | tr '\n' ' ' || true)
if [ -n "$heavy" ]; then
  say "note: sluice/projections/projection.h still includes ${heavy}(issue 16: not yet split)"
  [ "${SLUICE_STRICT_HEADERS:-0}" = 1 ] && exit 1
else
  say "ok: sluice/projections/projection.h includes neither FlatBuffers nor nlohmann/json"
fi
say "passed"
