#include "sluice/projections/rebuild.h"

#include "sluice/bus/log_reader.h"

namespace sluice {

Result<RebuildResult> rebuild_projection(const std::string& log_dir, std::string_view name,
                                         const ProjectionFactory& factory, const ProjectionOptions& options,
                                         const RebuildOptions& ro) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
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
  if (ro.slot) {
    counters::put(ro.slot->counters.rebuild_target, target);
    counters::put(ro.slot->counters.rebuild_position, uint64_t{0});
  }
  constexpr uint64_t kBatch = 4096;
  auto last_report = t0;
  RecordView v;
  for (uint64_t p = 0; p < target && !runner.stopped();) {
    const uint64_t last = std::min(target, p + kBatch);
    for (; p < last; ++p) {
      if (!r.read(p, &v)) return Status(StatusCode::not_found, "rebuild of '" + std::string(name) + "': position " +
                                                                   std::to_string(p) + " is not in the log");
      runner.on_record(v, p + 1 == last);
    }
    if (ro.slot) counters::put(ro.slot->counters.rebuild_position, p);
    const auto now = Clock::now();
    if (ro.on_progress && (now - last_report >= ro.progress_interval || p == target)) {
      last_report = now;
      RebuildProgress pr;
      pr.position = p;
      pr.target = target;
      const double s = std::chrono::duration<double>(now - t0).count();
      pr.events_per_s = s > 0 ? static_cast<double>(p) / s : 0;
      pr.eta_s = pr.events_per_s > 0 ? static_cast<double>(target - p) / pr.events_per_s : 0;
      ro.on_progress(pr);
    }
  }
  if (runner.failed()) return runner.failure();
  RebuildResult res;
  res.events = runner.next_position();
  res.digest = runner.digest();
  res.dead_letters = runner.dead_letters().size();
  if (ro.write_checkpoint) {
    if (Status st = write_checkpoint(log_dir, name, runner.snapshot_now()); !st.ok()) return st;
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return res;
}

}  // namespace sluice
