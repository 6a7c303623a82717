#include "common/targets.h"

namespace sluice::bench {

namespace {
// Every target the issues and docs set for a benchmark figure, on the 2-CPU machine they
// were set for. Where an issue replaced a target, the newer one is here (the older in a
// comment). Source: the issue of each block; the docs and bench/results/*.md quote them.
constexpr Target kTargets[] = {
    // sluice bench log (write log; issue 15 for the first two, docs/write-log.md)
    {"ratio_append_none_vs_memcpy_prepared_64", true, 0.5},
    {"ratio_prepared_vs_warm_memcpy_64", true, 0.15},
    {"ratio_append_none_vs_sqlite_off", true, 30},
    {"ratio_group_vs_sqlite_full", true, 500},
    {"ratio_sync_p50_vs_fdatasync_p50", false, 1.5},
    // ratio_append_none_vs_memcpy_64 (>= 0.35, warm mapping) was replaced by the prepared
    // ratio above (issue 15); the warm one is still reported, without a target.

    // sluice bench bus (issue 15 for pingpong p50, batched; docs/bus.md for the rest)
    {"ratio_1p1c_vs_boost_spsc", true, 1.0},
    {"ratio_1p1c_batched_vs_boost_spsc", true, 11},  // was >= 3.5; see docs/bus.md on restating it
    {"ratio_1p1c_batched_vs_1p1c", true, 1.5},
    {"ratio_pingpong_p50_vs_atomic", false, 1.1},  // was <= 1.4
    {"ratio_pingpong_p99_vs_atomic", false, 2.0},
    {"ratio_fanout3_vs_1p1c", true, 0.5},
    {"sharded_efficiency_n8", true, 0.75},  // needs 9 CPUs (--cpus 0..8)

    // sluice bench codec (docs/serialization.md)
    {"ratio_flatbuffers_access_vs_json_decode_medium", true, 10},

    // sluice bench e2e (issue 10; docs/projections.md)
    {"ratio_e2e_p50_vs_atomic_rtt", false, 2.0},
    {"ratio_e2e_p99_vs_atomic_rtt", false, 20},
    {"ratio_submit_2p_vs_append", true, 0.5},
    {"ratio_submit_p50_vs_atomic_rtt", false, 3},
    {"ratio_submit_group_3p_vs_append_group", true, 0.8},
    {"ratio_rebuild_vs_scan", true, 0.5},
    {"ratio_stats_on_vs_off", true, 0.95},

    // sluice bench aggregate (issue 11)
    {"ratio_load_snapshot_vs_full_10k", true, 50},
    {"ratio_commands_vs_raw_append", true, 0.3},
    {"ratio_commands_idempotent_vs_plain", true, 0.8},

    // sluice bench saga (issue 12)
    {"ratio_saga_steps_vs_commands", true, 0.25},

    // sluice bench relay (issue 13)
    {"ratio_relay_vs_raw_nats", true, 0.8},
};
}  // namespace

std::span<const Target> targets() { return kTargets; }

const Target* find_target(std::string_view figure) {
  for (const Target& t : kTargets)
    if (figure == t.figure) return &t;
  return nullptr;
}

}  // namespace sluice::bench
