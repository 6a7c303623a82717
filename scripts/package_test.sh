#!/usr/bin/env bash
# The installed package as an outsider uses it: installs BUILD_DIR to a temporary prefix,
# then builds and runs small consumers against it only:
#   - CMake: find_package(Sluice) + target_link_libraries(consumer sluice::runtime)
#   - CMake: find_package(Sluice COMPONENTS bus) with FlatBuffers, nlohmann_json and simdjson
#     made unfindable (a bus consumer needs none of them)
#   - pkg-config: sluice.pc and sluice-bus.pc
# and checks that the projection API pulls in no FlatBuffers and no nlohmann/json header.
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

# 4. What the projection API's header pulls into a projection author's build: no FlatBuffers
#    and no nlohmann/json header (those come with sluice/serialization/flatbuffers_codec.h
#    and document.h, which a user includes when using them). SLUICE_STRICT_HEADERS=0 turns
#    a failure into a note.
check_light() {
  echo "#include \"$1\"" >"$work/p.cc"
  c++ -std=c++20 -I"$prefix/include" -H -fsyntax-only "$work/p.cc" 2>"$work/p.h" ||
    { say "FAILED: $1 does not compile on its own"; cat "$work/p.h" | tail -20; exit 1; }
  heavy=$(grep -oE '(flatbuffers|nlohmann)/[A-Za-z0-9_./-]+' "$work/p.h" | sort -u | tr '\n' ' ' || true)
  if [ -n "$heavy" ]; then
    say "FAILED: $1 includes ${heavy}"
    if [ "${SLUICE_STRICT_HEADERS:-1}" = 1 ]; then exit 1; fi
  else
    say "ok: $1 includes neither FlatBuffers nor nlohmann/json"
  fi
}
check_light sluice/projections/projection.h
check_light sluice/serialization/schema_registry.h
check_light sluice/runtime/engine.h
# The codec headers do bring them (the check above would not notice a grep that finds nothing).
echo '#include "sluice/serialization/document.h"
#include "sluice/serialization/flatbuffers_codec.h"' >"$work/q.cc"
c++ -std=c++20 -I"$prefix/include" -H -fsyntax-only "$work/q.cc" 2>"$work/q.h" ||
  { say "FAILED: document.h and flatbuffers_codec.h do not compile"; tail -20 "$work/q.h"; exit 1; }
grep -q 'flatbuffers/flatbuffers\.h' "$work/q.h" && grep -q 'nlohmann/json\.hpp' "$work/q.h" ||
  { say "FAILED: the include check finds no FlatBuffers/nlohmann header even in the codec headers"; exit 1; }
say "passed"
