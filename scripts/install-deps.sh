#!/usr/bin/env bash
# Installs the Debian 12 packages Sluice builds and tests with (idempotent; run as root).
# Only Debian's archive is used. SLUICE_SKIP_DEPS=1 skips it (CI calls it once).
set -euo pipefail
[ "${SLUICE_SKIP_DEPS:-0}" = "1" ] && exit 0
packages=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libsqlite3-dev
  libconcurrentqueue-dev libboost-dev libmimalloc-dev
  libflatbuffers-dev flatbuffers-compiler flatbuffers-compiler-dev
  nlohmann-json3-dev libsimdjson-dev
  libnats-dev nats-server librdkafka-dev
  prometheus curl jq
  gnuplot-nox
)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# Headless Chromium for the lag page's browser test (scripts/lag-page-test.sh). Optional: where
# it cannot be installed, that test says so and is skipped.
if ! command -v chromium >/dev/null 2>&1; then
  apt-get install -y -qq --no-install-recommends chromium >/dev/null ||
    echo "install-deps: chromium could not be installed; the lag page browser test will be skipped" >&2
fi
