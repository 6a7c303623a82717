#!/usr/bin/env bash
# Configures and builds Sluice in build/ (or $SLUICE_BUILD_DIR). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${SLUICE_BUILD_DIR:-build}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_WERROR=ON "$@" >/dev/null
cmake --build "$dir"
