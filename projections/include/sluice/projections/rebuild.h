// Offline rebuild: replays a log from position 0 into a fresh projection (a shadow read
// model), reporting progress and ETA, and optionally replaces its checkpoint with the
// result. Used by `sluice rebuild`, the determinism check (rebuild digest == live digest)
// and the engine's blue/green rebuild.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "sluice/projections/projection_runner.h"
#include "sluice/status.h"

namespace sluice {

struct RebuildProgress {
  uint64_t position = 0;      // events replayed so far
  uint64_t target = 0;        // end of the log when the rebuild started (grows if it follows)
  double events_per_s = 0;
  double eta_s = 0;           // at the current rate
};

struct RebuildOptions {
  bool write_checkpoint = false;  // replace the projection's checkpoint with the result
  uint64_t up_to = UINT64_MAX;    // stop at this position (default: the log's end)
  std::chrono::milliseconds progress_interval{250};
  std::function<void(const RebuildProgress&)> on_progress;  // nullptr: none
  counters::Slot* slot = nullptr;  // publish rebuild_position/target here (nullptr: none)
  // Decoders of typed events, loaded from the log and bound (Projection::resolve_types);
  // nullptr: the raw convention.
  const serialization::SchemaRegistry* registry = nullptr;
};

struct RebuildResult {
  uint64_t events = 0;        // position reached
  uint64_t digest = 0;        // of the rebuilt read model
  uint64_t dead_letters = 0;
  double seconds = 0;
};

Result<RebuildResult> rebuild_projection(const std::string& log_dir, std::string_view name,
                                         const ProjectionFactory& factory, const ProjectionOptions& options,
                                         const RebuildOptions& rebuild = {});

}  // namespace sluice
