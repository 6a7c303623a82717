#include "sluice/projections/rebuild.h"

#include <algorithm>

#include "sluice/bus/log_reader.h"

namespace sluice {

Result<uint64_t> replay_into(LogReader& reader, ProjectionRunner& runner, uint64_t target) {
  if (reader.end_position() < target) {
    auto r = reader.refresh();
    if (!r.ok()) return r.status();
  }
  const uint64_t end = std::min(target, reader.end_position());
  RecordView v;
  for (uint64_t p = runner.next_position(); p < end && !runner.stopped();) {
    const uint64_t last = std::min(end, p + kReplayBatch);
    for (; p < last; ++p) {
      if (!reader.read(p, &v))
        return Status(StatusCode::not_found, "replay of '" + runner.name() + "': position " + std::to_string(p) +
                                                 " is not in the log");
      runner.on_record(v, p + 1 == last);
    }
  }
  return runner.next_position();
}

ReplayProgress::ReplayProgress(std::function<void(const RebuildProgress&)> on_progress,
                               std::chrono::milliseconds interval, counters::Slot* slot)
    : on_progress_(std::move(on_progress)), interval_(interval), slot_(slot), t0_(Clock::now()), last_(t0_) {}

void ReplayProgress::report(uint64_t position, uint64_t target, bool force) {
  if (slot_) {
    counters::put(slot_->counters.rebuild_position, position);
    counters::put(slot_->counters.rebuild_target, target);
  }
  const auto now = Clock::now();
  if (!on_progress_ || (!force && now - last_ < interval_)) return;
  last_ = now;
  RebuildProgress pr;
  pr.position = position;
  pr.target = target;
  const double s = std::chrono::duration<double>(now - t0_).count();
  pr.events_per_s = s > 0 ? static_cast<double>(position) / s : 0;
  pr.eta_s = pr.events_per_s > 0 && target > position ? static_cast<double>(target - position) / pr.events_per_s : 0;
  on_progress_(pr);
}

Result<RebuildResult> rebuild_projection(const std::string& log_dir, std::string_view name,
                                         const ProjectionFactory& factory, const ProjectionOptions& options,
                                         const RebuildOptions& ro) {
  const auto t0 = std::chrono::steady_clock::now();
  auto reader = LogReader::open(log_dir);
  if (!reader.ok()) return reader.status();
  LogReader& r = *reader.value();
  ProjectionOptions o = options;
  o.checkpoint_every = 0;  // no checkpoints while replaying
  o.checkpoint_interval = std::chrono::milliseconds(0);
  ProjectionRunner::Context ctx;
  ctx.log_dir = log_dir;
  ctx.registry = ro.registry;
  ProjectionRunner runner(std::string(name), factory, o, ctx);
  if (Status st = runner.open(r.end_position(), /*use_checkpoint=*/false); !st.ok()) return st;
  const uint64_t target = std::min(ro.up_to, r.end_position());
  ReplayProgress progress(ro.on_progress, ro.progress_interval, ro.slot);
  progress.report(0, target);
  // Chunks of 16 batches between progress reports.
  while (runner.next_position() < target && !runner.stopped()) {
    const uint64_t from = runner.next_position();
    auto reached = replay_into(r, runner, std::min(target, from + 16 * kReplayBatch));
    if (!reached.ok()) return reached.status();
    if (reached.value() == from && !runner.stopped())
      return Status(StatusCode::not_found, "rebuild of '" + std::string(name) + "': position " + std::to_string(from) +
                                               " is not in the log");
    progress.report(reached.value(), target, reached.value() == target);
  }
  if (runner.failed()) return runner.failure();
  RebuildResult res;
  res.events = runner.next_position();
  res.digest = runner.digest();
  res.dead_letters = runner.dead_letters().size();
  if (ro.write_checkpoint) {
    if (Status st = write_checkpoint(log_dir, name, runner.snapshot_now()); !st.ok()) return st;
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace sluice
