// The engine's wiring (see engine.h for the shape and the path of one event).
#include "sluice/runtime/engine.h"

#include <sys/stat.h>

#include <algorithm>
#include <optional>

#include "sluice/bus/agent.h"
#include "sluice/bus/clock.h"
#include "sluice/bus/commit_listeners.h"
#include "sluice/bus/log_publisher.h"
#include "sluice/bus/log_reader.h"
#include "sluice/projections/worker_heap.h"
#include "sluice/stats/head_counters.h"
#include "sluice/stats/metrics_server.h"
#include "worker_agent.h"

namespace sluice {
namespace {

std::atomic<uint64_t> g_engine_serial{0};  // relaxed: a unique number per engine, nothing published

}  // namespace

// ---- Engine ---------------------------------------------------------------------------------

Engine::Engine(std::string dir, EngineOptions options)
    : dir_(std::move(dir)), serial_(g_engine_serial.fetch_add(1, std::memory_order_relaxed) + 1), o_(std::move(options)) {}

Engine::~Engine() {
  if (running_) stop().ignore();
}

Result<std::unique_ptr<Engine>> Engine::open(const std::string& dir, const EngineOptions& options) {
  std::unique_ptr<Engine> e(new Engine(dir, options));
  if (e->o_.worker_cpus.empty()) e->o_.worker_cpus.push_back(-1);
  LogOptions lo = e->o_.log;
  if (lo.commit_listener != nullptr)
    return Status(StatusCode::invalid_argument, "engine " + dir + ": LogOptions::commit_listener is the engine's own");
  const uint32_t cap = e->o_.ring_capacity;
  if (cap < 2 || (cap & (cap - 1)) != 0)
    return Status(StatusCode::invalid_argument, "engine " + dir + ": ring_capacity " + std::to_string(cap) +
                                                    " is not a power of two >= 2");
  const IngressOptions& io = e->o_.ingress;
  if (io.max_producers == 0 || io.max_producers > 4096 || io.max_in_flight == 0 || io.max_in_flight > (1u << 20))
    return Status(StatusCode::invalid_argument, "engine " + dir + ": ingress max_producers must be 1..4096 and "
                                                    "max_in_flight 1..1048576");
  if (e->o_.metrics_port >= 0 && (!e->o_.stats_file || e->o_.metrics_port > 65535))
    return Status(StatusCode::invalid_argument,
                  "engine " + dir + ": metrics_port " + std::to_string(e->o_.metrics_port) +
                      (e->o_.stats_file ? " is not a port" : " needs stats_file (the endpoint serves its counters)"));
  e->listeners_ = std::make_unique<CommitListeners>();
  lo.commit_listener = e->listeners_.get();  // head counters now, the bus from start() on
  // Keep the writer's maintenance thread (segment preparation, group flushes) off the pinned
  // workers' and the pinned writer thread's CPUs, where it would stall a busy-spinning one.
  for (int cpu : e->o_.worker_cpus)
    if (cpu >= 0 && cpu < 64) lo.maintenance_avoid_cpus |= uint64_t{1} << cpu;
  if (e->o_.writer == WriterMode::ingress && e->o_.writer_cpu >= 0 && e->o_.writer_cpu < 64)
    lo.maintenance_avoid_cpus |= uint64_t{1} << e->o_.writer_cpu;
  if (e->o_.stats_file) {
    ::mkdir(dir.c_str(), 0755);
    counters::CountersFile::Meta meta;
    meta.log_dir = dir;
    meta.segment_size = lo.segment_size;
    meta.slot_count = e->o_.stats_slots;
    auto f = counters::CountersFile::create(dir + "/" + counters::kFileName, meta);
    if (!f.ok()) return f.status();
    e->stats_ = std::move(f.value());
    e->head_ = std::make_unique<HeadCounters>(e->stats_->header(), lo.segment_size);
    (void)e->listeners_->add(e->head_.get());  // the first of kMax: cannot fail
  }
  auto w = LogWriter::open(dir, lo);
  if (!w.ok()) return w.status();
  e->writer_ = std::move(w.value());
  // The log's event types, so that bind() keeps their ids and readers can decode.
  e->registry_ = std::make_unique<serialization::SchemaRegistry>();
  if (Status st = e->registry_->load(dir); !st.ok()) return st;
  if (e->stats_) counters::put(e->stats_->header().head_position, e->writer_->committed_position());
  return e;
}

Result<ProjectionRunner*> Engine::add_runner(std::string name, ProjectionOptions options, ProjectionFactory factory) {
  if (running_ || stopped_)
    return Status(StatusCode::invalid_argument, "projection '" + name + "': add projections before Engine::start()");
  if (Status st = validate_projection_name(name); !st.ok()) return st;
  if (runner(name) != nullptr)
    return Status(StatusCode::invalid_argument, "projection '" + name + "' is already registered");
  if (options.max_attempts == 0) options.max_attempts = 1;
  if (options.worker >= static_cast<int>(o_.worker_cpus.size()))
    return Status(StatusCode::invalid_argument, "projection '" + name + "': worker " + std::to_string(options.worker) +
                                                    " does not exist (" + std::to_string(o_.worker_cpus.size()) + " workers)");
  ProjectionRunner::Context ctx;
  ctx.log_dir = dir_;
  ctx.clock_ns = o_.clock_ns;
  ctx.segment_size = o_.log.segment_size;
  ctx.registry = registry_.get();
  if (stats_) {
    auto slot = stats_->allocate(counters::SlotKind::projection, name);
    if (!slot.ok()) return slot.status();
    ctx.slot = slot.value();
  }
  runners_.push_back(std::make_unique<ProjectionRunner>(std::move(name), std::move(factory), options, ctx));
  return runners_.back().get();
}

ProjectionRunner* Engine::runner(std::string_view name) const noexcept {
  for (const auto& r : runners_)
    if (r->name() == name) return r.get();
  return nullptr;
}

std::vector<ProjectionRunner*> Engine::runners() const {
  std::vector<ProjectionRunner*> v;
  for (const auto& r : runners_) v.push_back(r.get());
  return v;
}

std::vector<Status> Engine::pin_status() const {
  std::vector<Status> v;
  for (const auto& r : worker_runners_) v.push_back(r->pin_status());
  return v;
}

Status Engine::start() {
  if (running_ || stopped_) return Status(StatusCode::invalid_argument, "engine " + dir_ + " was already started");
  // The next segments prepared before traffic: their preparation (tens of ms of CPU for 64 MiB)
  // would otherwise run in the first seconds of traffic, on a CPU the hot threads use. Later
  // preparations overlap the filling of a whole segment. Bounded: on a slow disk the writer
  // waits for it at its first roll instead.
  (void)writer_->wait_prepared(std::chrono::seconds(2));
  const uint64_t end = writer_->committed_position();
  for (auto& r : runners_)
    if (Status st = r->open(end); !st.ok()) return st;
  // The ring starts at the log's end: ring sequence == log position. Nothing appends during
  // start() (thread-safety rules), so `end` is still the writer's next position.
  bus_ = std::make_unique<Bus>(dir_, o_.ring_capacity, static_cast<int64_t>(end));
  for (size_t i = 0; i < o_.worker_cpus.size(); ++i)
    workers_.push_back(std::make_unique<WorkerAgent>(static_cast<int>(i), *writer_));
  size_t rr = 0;
  for (auto& r : runners_) {
    const int wi = r->options().worker >= 0 ? r->options().worker : static_cast<int>(rr++ % workers_.size());
    workers_[static_cast<size_t>(wi)]->runners.push_back(r.get());
  }
  for (auto& w : workers_) {
    if (Status st = w->open(bus_->ring, dir_, o_.max_batch); !st.ok()) return st;
    if (stats_ && w->consumer()) {
      auto slot = stats_->allocate(counters::SlotKind::consumer, w->role_name());
      if (!slot.ok()) return slot.status();
      w->slot = slot.value();
    }
  }
  bus_->publisher.release_through(writer_.get());  // passed segments unmapped off the writer's thread
  if (!listeners_->add(&bus_->publisher))  // from now on every commit reaches the ring
    return Status(StatusCode::invalid_argument, "engine " + dir_ + ": no room for the bus's commit listener");
  for (size_t i = 0; i < workers_.size(); ++i) {
    RunnerOptions ro;
    ro.cpu = o_.worker_cpus[i];
    ro.idle = o_.idle;
    worker_runners_.push_back(std::make_unique<AgentRunner>(*workers_[i], ro));
    if (Status st = worker_runners_.back()->start(); !st.ok()) return st;
    if (counters::Slot* s = workers_[i]->slot)
      counters::put(s->consumer.cpu, int64_t{worker_runners_.back()->pin_status().ok() ? ro.cpu : -1});
  }
  if (o_.writer == WriterMode::ingress) {
    ingress_ = std::make_unique<Ingress>(o_.ingress);
    ingress_->attach(writer_.get());
    ingress_agent_ = std::make_unique<IngressAgent>(*ingress_, *writer_);
    RunnerOptions ro;
    ro.cpu = o_.writer_cpu;
    ro.idle = o_.writer_idle;
    writer_runner_ = std::make_unique<AgentRunner>(*ingress_agent_, ro);
    if (Status st = writer_runner_->start(); !st.ok()) return st;
    if (stats_) {
      auto slot = stats_->allocate(counters::SlotKind::ingress, "ingress");
      if (slot.ok()) ingress_slot_ = slot.value();
    }
  }
  // The checkpoint thread wakes on a timer; every wake-up takes a CPU a hot thread may be
  // spinning on (on 2 CPUs, always), so it wakes no more often than the projections need:
  // polling every 5 ms cost the e2e producer ~300 preemptions per 1.6 s (perf sched trace).
  std::chrono::milliseconds shortest{200};
  for (auto& r : runners_)
    if (r->options().checkpoint_interval.count() > 0) shortest = std::min(shortest, r->options().checkpoint_interval);
  checkpoint_poll_ = std::clamp(shortest / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(50));
  checkpoint_thread_ = std::thread([this] { checkpoint_loop(); });
  monitor_thread_ = std::thread([this] { monitor_loop(); });
  running_ = true;
  if (o_.metrics_port >= 0 && stats_) {
    counters::CountersFile* f = stats_.get();
    auto m = MetricsServer::start(
        static_cast<uint16_t>(o_.metrics_port),
        [f] {
          const counters::EngineStat s = counters::read_stats(*f);  // before the clock: see heartbeat_age_s()
          return prometheus_text(s, realtime_ns());
        },
        [f] { return stats_json(*f, realtime_ns()); });  // the lag page at /, its data at /stats.json
    if (!m.ok()) {
      stop().ignore();
      return Status(m.status().code(), "engine " + dir_ + ": " + m.status().message());
    }
    metrics_ = std::move(m.value());
  }
  return Status::OK();
}

uint16_t Engine::metrics_port() const noexcept { return metrics_ ? metrics_->port() : 0; }

Result<StreamId> Engine::stream(std::string_view name) { return writer_->stream(name); }

AppendResult Engine::append(StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept {
  return writer_->append(stream, expected, events);
}

Result<RebuildResult> Engine::rebuild(std::string_view name, std::function<void(const RebuildProgress&)> on_progress) {
  ProjectionRunner* live = runner(name);
  if (!live) return Status(StatusCode::not_found, "no projection '" + std::string(name) + "' in engine " + dir_);
  if (!running_) return Status(StatusCode::invalid_argument, "rebuild of '" + std::string(name) + "': the engine is not running");
  WorkerAgent* worker = nullptr;
  for (auto& w : workers_)
    for (ProjectionRunner* r : w->runners)
      if (r == live) worker = w.get();
  counters::Slot* slot = live->slot();
  if (slot) {
    counters::put(slot->counters.rebuild_started_ns, realtime_ns());
    counters::CountersFile::set_state(*slot, counters::SlotState::rebuilding);
  }
  // Shadow: replay the log from 0 on this thread while the worker keeps the live model
  // current; when the shadow is close behind, the worker finishes it and swaps it in.
  auto reader = LogReader::open(dir_);
  if (!reader.ok()) return reader.status();
  LogReader& rd = *reader.value();
  ProjectionRunner::Context ctx;
  ctx.log_dir = dir_;
  ctx.segment_size = o_.log.segment_size;
  ctx.registry = registry_.get();
  ProjectionOptions so = live->options();
  so.checkpoint_every = 0;
  so.checkpoint_interval = std::chrono::milliseconds(0);
  ProjectionRunner shadow(live->name(), live->factory(), so, ctx);
  if (Status st = shadow.open(rd.end_position(), /*use_checkpoint=*/false); !st.ok()) return st;
  const auto t0 = std::chrono::steady_clock::now();
  ReplayProgress progress(std::move(on_progress), std::chrono::milliseconds(250), slot);
  constexpr uint64_t kHandoverGap = kReplayBatch;
  for (;;) {
    const uint64_t target = live->applied_position();
    if (target <= shadow.next_position() + kHandoverGap || live->failed()) break;
    auto reached = replay_into(rd, shadow, std::min(target, shadow.next_position() + kReplayBatch));
    if (!reached.ok()) return reached.status();
    if (shadow.failed()) return shadow.failure();
    progress.report(reached.value(), target);
  }
  if (live->failed()) return live->failure();
  runtime_internal::RebuildHandover h;
  h.live = live;
  h.shadow = &shadow;
  // Release: publishes the shadow (built on this thread) to the worker's acquire load.
  worker->handover.store(&h, std::memory_order_release);
  if (WakeSignal* s = worker->wake_signal()) s->notify();
  while (h.done.load(std::memory_order_acquire) == 0)  // pairs with the worker's release
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  if (slot) {
    counters::put(slot->counters.rebuild_position, h.position);
    counters::CountersFile::set_state(*slot, live->failed() ? counters::SlotState::failed : counters::SlotState::running);
  }
  if (!h.swapped) return Status(StatusCode::invalid_argument, "rebuild of '" + std::string(name) + "': the shadow could not reach the live position");
  RebuildResult res;
  res.events = h.position;
  res.digest = h.digest;
  res.dead_letters = live->dead_letters().size();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

Status Engine::stop(std::chrono::milliseconds timeout) {
  if (!running_) return Status::OK();
  running_ = false;
  stopped_ = true;
  Status result;
  if (metrics_) metrics_->stop();  // the counters stay readable from the file
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // 1. Producers: refuse new submissions, then let the writer agent complete what is queued.
  if (ingress_) {
    ingress_->close();
    writer_runner_->request_drain(deadline);
    if (Status st = writer_runner_->join(); !st.ok() && result.ok())
      result = Status(StatusCode::timeout, "engine " + dir_ + ": the ingress did not drain within the timeout");
    // Whatever a missed deadline left in the queue is completed (appended) here, on this
    // thread, now that the writer agent has stopped: no submitter waits forever.
    while (ingress_->drain(*writer_) > 0) {
    }
    // A request published after that last drain (its submitter passed the closed check just
    // before close()) is refused to its waiter.
    ingress_->finish();
  }
  // 2. Make everything committed acknowledged, so final checkpoints may cover it.
  if (Status st = writer_->flush(); !st.ok() && result.ok()) result = st;
  // 3. Drain every worker to the log's end, within the deadline (the runners' drain).
  std::vector<AgentRunner*> rs;
  for (auto& r : worker_runners_) rs.push_back(r.get());
  const auto left = std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                               deadline - std::chrono::steady_clock::now()));
  if (Status st = drain_and_stop(rs, left); !st.ok() && result.ok())
    result = Status(StatusCode::timeout, "engine " + dir_ + ": " + st.message());
  // 4. Stop the services; write what is pending, then a final checkpoint per projection (the
  // workers have stopped: join made their state visible here).
  {
    std::lock_guard lock(services_mu_);
    stop_services_.store(true, std::memory_order_release);  // pairs with the services' acquire
  }
  services_cv_.notify_all();
  checkpoint_thread_.join();
  monitor_thread_.join();
  if (stats_) {  // the final figures
    publish_bus_counters();
    publishers_->run();
  }
  write_pending_checkpoints(true);
  for (auto& r : runners_) {
    if (r->failed()) continue;
    CheckpointData d = r->snapshot_now();
    if (d.position > writer_->acknowledged_position()) continue;  // cannot happen after flush()
    d.written_ns = realtime_ns();
    // The log's file seam and permissions for its checkpoints too.
    Status st = write_checkpoint(dir_, r->name(), d,
                                 {.file_ops = o_.log.file_ops, .file_mode = o_.log.file_mode, .dir_mode = o_.log.dir_mode});
    r->pending_done(d, st.ok());
    if (!st.ok() && result.ok()) result = st;
  }
  for (auto& r : runners_)
    if (counters::Slot* s = r->slot(); s && !r->failed()) counters::CountersFile::set_state(*s, counters::SlotState::stopped);
  if (Status st = writer_->close(); !st.ok() && result.ok()) result = st;
  listeners_->truncate(head_ ? 1 : 0);  // the writer is closed: nothing commits any more
  return result;
}

}  // namespace sluice
