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

class LogReader;

// The one replay loop. Applies log positions [runner.next_position(), target) from `reader`
// to `runner` in batches (end_of_batch every kReplayBatch events, so read models commit as
// they do live), refreshing the reader when `target` is past its end. Stops early at the
// reader's end (a commit its refresh does not show yet: call again) or when the runner
// stops. Returns the position reached; error: the refresh failed, or a position inside the
// reader's range could not be read. The offline rebuild, the engine's blue/green rebuild and
// its hand-over to the worker all replay through it.
inline constexpr uint64_t kReplayBatch = 4096;
Result<uint64_t> replay_into(LogReader& reader, ProjectionRunner& runner, uint64_t target);

// Progress and ETA of a replay, reported at most every `interval` (and at force).
class ReplayProgress {
 public:
  ReplayProgress(std::function<void(const RebuildProgress&)> on_progress, std::chrono::milliseconds interval,
                 counters::Slot* slot);
  void report(uint64_t position, uint64_t target, bool force = false);

 private:
  using Clock = std::chrono::steady_clock;
  std::function<void(const RebuildProgress&)> on_progress_;
  std::chrono::milliseconds interval_;
  counters::Slot* slot_;
  Clock::time_point t0_, last_;
};

Result<RebuildResult> rebuild_projection(const std::string& log_dir, std::string_view name,
                                         const ProjectionFactory& factory, const ProjectionOptions& options,
                                         const RebuildOptions& rebuild = {});

}  // namespace sluice
