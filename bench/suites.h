// The suites `sluice bench <suite>` runs. Each suite measures its figures and the baselines
// they are compared with in the same run, prints a table, and writes --json.
#pragma once

#include "common/figures.h"

namespace sluice::bench {

struct Suite {
  const char* name;
  const char* summary;
  int (*run)(const SuiteArgs& args);
};

int run_log_suite(const SuiteArgs& args);
int run_bus_suite(const SuiteArgs& args);
int run_codec_suite(const SuiteArgs& args);
int run_e2e_suite(const SuiteArgs& args);
int run_relay_suite(const SuiteArgs& args);  // bench/relay (connectors)
int run_aggregate_suite(const SuiteArgs& args);
int run_saga_suite(const SuiteArgs& args);  // bench/saga
int run_micro_suite(const SuiteArgs& args);  // bench/micro (Google Benchmark)

// All suites, in the order `sluice bench --help` lists them.
inline constexpr Suite kSuites[] = {
    {"log", "write log: append rates per durability vs memcpy / SQLite / fdatasync, recovery", run_log_suite},
    {"bus", "bus: 1:1, ping-pong, fan-out, pipeline, diamond, 3:1, sharded 1:N vs Boost spsc / moodycamel / atomics", run_bus_suite},
    {"codec", "serialization: encode/decode per codec (raw, FlatBuffers, JSON), field access, upcasting", run_codec_suite},
    {"e2e", "append -> applied latency through 3 projections (CO-corrected), rebuild vs scan, stats on/off", run_e2e_suite},
    {"relay", "JetStream relay vs raw nats.c async publish (same messages, same in-flight bound), relay lag", run_relay_suite},
    {"aggregate", "commands vs raw appends (plain, idempotent), aggregate load with/without snapshot, 2 threads disjoint/shared", run_aggregate_suite},
    {"saga", "3-step sagas/s and time to complete vs one-thread commands, timer lateness vs atomic round trip", run_saga_suite},
    {"micro", "single-thread micro benchmarks (Google Benchmark): record encoder, CRC32C, codecs, histogram, keyed store", run_micro_suite},
};

}  // namespace sluice::bench
