// The engine's services off the hot threads: the checkpoint thread (waits for durability,
// writes checkpoints) and the monitor (heartbeat, lag alerts, the bus's counters into the
// stats file).
#include "sluice/bus/clock.h"
#include "sluice/runtime/engine.h"
#include "worker_agent.h"

namespace sluice {

bool Engine::write_pending_checkpoints(bool final_pass) {
  bool any = false;
  for (auto& r : runners_) {
    CheckpointData d;
    if (!r->take_pending(&d)) continue;
    any = true;
    // Never past the durable end of the log: wait (a little, then retry next round) until
    // the writer has acknowledged everything the checkpoint covers.
    if (writer_->acknowledged_position() < d.position) {
      if (!final_pass) {
        (void)writer_->wait_acknowledged(d.position - 1, std::chrono::milliseconds(50));
      }
      if (writer_->acknowledged_position() < d.position) {
        r->pending_done(d, false);  // dropped: the next one will cover it
        continue;
      }
    }
    d.written_ns = realtime_ns();
    // The log's file seam and permissions for its checkpoints too.
    Status st = write_checkpoint(dir_, r->name(), d,
                                 {.file_ops = o_.log.file_ops, .file_mode = o_.log.file_mode, .dir_mode = o_.log.dir_mode});
    r->pending_done(d, st.ok());
  }
  return any;
}

bool Engine::services_sleep(std::chrono::nanoseconds d) {
  std::unique_lock lock(services_mu_);
  // Acquire: pairs with the release in stop() (made under services_mu_, so no lost wake-up).
  return !services_cv_.wait_for(lock, d, [this] { return stop_services_.load(std::memory_order_acquire); });
}

void Engine::checkpoint_loop() noexcept {
  name_current_thread("checkpoints");
  // Acquire: pairs with the release in stop().
  while (!stop_services_.load(std::memory_order_acquire)) {
    if (!write_pending_checkpoints(false) && !services_sleep(checkpoint_poll_)) break;
  }
}

// The ring consumers' and the ingress's counters into the stats file: they keep their own
// atomics (relaxed, single writer), and the monitor copies them, so the hot threads pay
// nothing for it.
void Engine::publish_bus_counters() noexcept {
  for (auto& w : workers_) {
    counters::Slot* s = w->slot;
    const RecordConsumer* c = w->consumer();
    if (s == nullptr || c == nullptr) continue;
    const ProcessorStats ps = c->stats();
    counters::put(s->consumer.events, ps.events);
    counters::put(s->consumer.overruns, ps.overruns);
    counters::put(s->consumer.caught_up, ps.caught_up);
    counters::put(s->consumer.rejoins, ps.rejoins);
    counters::put(s->consumer.position, static_cast<uint64_t>(c->sequence().get() + 1));
  }
  if (ingress_slot_ != nullptr && ingress_) {
    counters::put(ingress_slot_->ingress.requests, ingress_->requests());
    counters::put(ingress_slot_->ingress.back_pressured, ingress_->back_pressured());
    counters::put(ingress_slot_->ingress.queued, static_cast<uint64_t>(ingress_->size_estimate()));
  }
}

Result<counters::Slot*> Engine::stats_slot(counters::SlotKind kind, std::string_view name) {
  if (!stats_) return static_cast<counters::Slot*>(nullptr);
  std::lock_guard lock(stats_mu_);
  return stats_->allocate(kind, name);
}

uint64_t StatsPublishers::add(std::function<void()> publish) {
  std::lock_guard lock(mu_);
  publishers_.emplace_back(next_, std::move(publish));
  return next_++;
}

void StatsPublishers::remove(uint64_t id) {
  std::lock_guard lock(mu_);
  std::erase_if(publishers_, [id](const auto& p) { return p.first == id; });
}

void StatsPublishers::run() noexcept {
  std::lock_guard lock(mu_);
  for (auto& [id, publish] : publishers_) {
    try {
      publish();
    } catch (...) {  // a throwing publisher must not end the monitor
    }
  }
}

void Engine::monitor_loop() noexcept {
  name_current_thread("monitor");
  std::vector<bool> active(runners_.size(), false);
  while (!stop_services_.load(std::memory_order_acquire)) {  // pairs with stop()'s release
    if (stats_) {
      counters::put(stats_->header().heartbeat_ns, static_cast<uint64_t>(realtime_ns()));
      publish_bus_counters();
      publishers_->run();
    }
    const uint64_t head = writer_->committed_position();
    for (size_t i = 0; i < runners_.size(); ++i) {
      ProjectionRunner& r = *runners_[i];
      const LagThresholds& t = r.options().alert;
      if (t.max_events_behind == 0 && t.max_time_behind.count() == 0) continue;
      LagAlert a;
      a.projection = r.name();
      const uint64_t applied = r.applied_position();
      a.events_behind = head > applied ? head - applied : 0;
      if (counters::Slot* s = r.slot(); s && a.events_behind > 0) {
        const int64_t head_ts = counters::get(stats_->header().head_timestamp_ns);
        const int64_t ats = counters::get(s->counters.applied_timestamp_ns);
        a.time_behind_ns = head_ts > ats ? head_ts - ats : 0;
      }
      const bool over = (t.max_events_behind > 0 && a.events_behind > t.max_events_behind) ||
                        (t.max_time_behind.count() > 0 && a.time_behind_ns > t.max_time_behind.count());
      if (over == active[i]) continue;
      active[i] = over;
      a.active = over;
      if (counters::Slot* s = r.slot()) {
        counters::put(s->alerts.alert_active, uint64_t{over});
        if (over) counters::bump(s->alerts.alerts_raised);
      }
      if (o_.on_alert) {
        try {
          o_.on_alert(a);
        } catch (...) {  // a throwing callback must not end the monitor
        }
      }
    }
    if (!services_sleep(o_.monitor_interval)) break;
  }
}

}  // namespace sluice
