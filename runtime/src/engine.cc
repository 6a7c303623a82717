#include "sluice/runtime/engine.h"

#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>

#include "sluice/bus/idle_strategy.h"
#include "sluice/bus/log_publisher.h"
#include "sluice/bus/log_reader.h"
#include "sluice/projections/log_tail.h"
#include "sluice/stats/metrics_server.h"
#include "sluice/projections/worker_heap.h"

namespace sluice {
namespace {

int64_t realtime_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}
int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

Status pin_to(int cpu) {
  if (cpu < 0) return Status::OK();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  const int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  if (rc != 0) return Status(StatusCode::invalid_argument, "cannot pin a worker to CPU " + std::to_string(cpu) + ": " + std::strerror(rc));
  return Status::OK();
}

IdleOptions idle_options(WorkerIdle kind) noexcept {
  IdleOptions o;  // backoff_park with the bus's defaults: spins, yields, then futex park
  switch (kind) {
    case WorkerIdle::backoff: o.kind = IdleKind::backoff_park; break;
    case WorkerIdle::yield: o.kind = IdleKind::yield; break;
    case WorkerIdle::busy_spin: o.kind = IdleKind::busy_spin; break;
  }
  return o;
}

// Feeds every ProjectionRunner of one worker from the worker's one RecordConsumer: each
// record is applied to each runner in turn (a runner already past it ignores it: one that
// restored a newer checkpoint), and at the end of the batch the latency clock is read once
// for all of them and each commits. So the last projection applies an event right after the
// first did (no commit, counters or clock in between), and the worker pays one ring
// consumer (one sequence, one stamp check per slot) and one clock read per batch, whatever
// the number of projections.
class RunnerFanOut final : public RecordHandler {
 public:
  explicit RunnerFanOut(const std::vector<ProjectionRunner*>& runners) noexcept : runners_(runners) {}
  void on_record(const RecordView& v, bool end_of_batch) noexcept override {
    for (ProjectionRunner* r : runners_) r->apply_record(v);
    if (!end_of_batch) return;
    int64_t now = 0;
    for (ProjectionRunner* r : runners_)  // every runner of an engine has the same clock
      if (r->needs_clock()) {
        now = r->now_ns();
        break;
      }
    for (ProjectionRunner* r : runners_) r->end_batch(now);
  }

 private:
  const std::vector<ProjectionRunner*>& runners_;  // the worker's; fixed once it starts
};

}  // namespace

// The writer's one CommitListener, on the writer's thread: publishes the log's head
// (position, address, timestamp) into the stats file header once per append batch (three
// stores), then forwards every commit to the bus's LogPublisher (once start() attached it),
// so the head counters never trail what a consumer may already have applied.
class Engine::HeadListener final : public CommitListener {
 public:
  void on_commit(const RecordView& v, bool end_of_batch) noexcept override {
    if (end_of_batch && header_ != nullptr) {
      counters::put(header_->head_position, v.position() + 1);
      counters::put(header_->head_address, v.segment_index * segment_size_ + v.offset + v.length());
      counters::put(header_->head_timestamp_ns, v.timestamp_ns());
    }
    // Acquire: pairs with the release in forward_to(); the publisher and its ring, built by
    // start(), are then visible to the writer thread. (A plain load on x86.)
    if (CommitListener* next = next_.load(std::memory_order_acquire)) next->on_commit(v, end_of_batch);
  }
  void attach(counters::FileHeader* h, uint64_t segment_size) noexcept {
    header_ = h;
    segment_size_ = segment_size;
  }
  // start(): after the ring and its consumers are set up; stop(): nullptr once the workers
  // are gone. Must not race an append (Engine's thread-safety rules).
  void forward_to(CommitListener* next) noexcept {
    // Release: publishes the fully built publisher/ring to the writer's acquire in on_commit().
    next_.store(next, std::memory_order_release);
  }

 private:
  counters::FileHeader* header_ = nullptr;  // set before the writer opens; read on its thread
  uint64_t segment_size_ = 0;
  std::atomic<CommitListener*> next_{nullptr};
};

// The bus on the live path: one ring, fed by one publisher on the writer's thread.
struct Engine::Bus {
  Bus(const std::string& dir, size_t capacity, int64_t start) : ring(capacity, start), publisher(dir, ring) {}
  RecordRing ring;
  LogPublisher publisher;
};

// A blue/green hand-over from rebuild() to a worker.
struct RebuildHandover {
  ProjectionRunner* live = nullptr;
  ProjectionRunner* shadow = nullptr;
  bool swapped = false;   // written by the worker before `done`
  uint64_t position = 0;  // live position at the swap
  uint64_t digest = 0;    // digest of the swapped-in model at that position
  uint32_t tries = 0;     // worker rounds spent waiting for the reader to show the records
  // done: 0 pending, 1 swapped. Release by the worker after the swap; acquire in rebuild().
  std::atomic<int> done{0};
};

struct Engine::Worker {
  int index = 0;
  int cpu = -1;
  std::vector<ProjectionRunner*> runners;
  // One consumer of the bus ring for all the runners (fanned out in order), polled by this
  // worker only; absent when the worker has no runner.
  std::unique_ptr<RunnerFanOut> fan_out;
  std::unique_ptr<RecordConsumer> consumer;
  std::unique_ptr<LogReader> handover_reader;  // opened on the first blue/green hand-over
  std::thread thread;
  Status pin;  // written by the worker before `started` is released
  // state: 0 run, 1 drain then stop. Release in stop() publishes deadline_ns; the worker's
  // acquire load pairs with it.
  std::atomic<int> state{0};
  std::atomic<int64_t> deadline_ns{0};  // relaxed: published by state
  // started: release by the worker after pinning (pin is then readable); acquire in start().
  std::atomic<bool> started{false};
  // drained_ok: written by the worker before it exits; read after join (join synchronises).
  std::atomic<bool> drained_ok{true};
  // handover: a pending blue/green swap. Release store by rebuild() publishes the shadow;
  // the worker's acquire load pairs with it.
  std::atomic<RebuildHandover*> handover{nullptr};

  // The idle strategy's re-check after registering as a sleeper (worker thread): anything
  // to do? Relaxed loads of state/handover: hints only; the loop re-reads them with acquire.
  static bool has_work_fn(const void* ctx) noexcept {
    const auto& w = *static_cast<const Worker*>(ctx);
    if (w.state.load(std::memory_order_relaxed) != 0 || w.handover.load(std::memory_order_relaxed) != nullptr)
      return true;
    return w.consumer && w.consumer->has_work();
  }
};

// Interim ingress (until the bus's moodycamel-based Ingress is merged): a queue under a
// mutex, drained by the engine's writer thread; submitters wait on their request's flag.
struct Engine::Ingress {
  struct Request {
    bool is_stream = false;
    std::string_view name;
    StreamId stream = 0;
    ExpectedVersion expected = ExpectedVersion::any();
    std::span<const EventData> events;
    AppendResult result{};
    Status stream_status;
    StreamId stream_id = 0;
    // done: release by the writer thread after filling the result; acquire by the submitter.
    std::atomic<int> done{0};
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Request*> queue;
  bool stopping = false;
  std::thread thread;

  void push_and_wait(Request& r) {
    {
      std::lock_guard lock(mu);
      if (stopping) {
        r.result.code = AppendCode::closed;
        r.stream_status = Status(StatusCode::closed, "engine is stopping");
        return;
      }
      queue.push_back(&r);
    }
    cv.notify_one();
    for (uint32_t i = 0; r.done.load(std::memory_order_acquire) == 0; ++i) {  // pairs with the writer's release
      if (i < 100) pause();
      else if (i < 200) sched_yield();
      else {
        timespec ts{0, 20'000};
        ::nanosleep(&ts, nullptr);
      }
    }
  }
};

Engine::Engine(std::string dir, EngineOptions options) : dir_(std::move(dir)), o_(std::move(options)) {}

Engine::~Engine() {
  if (running_) stop().ignore();
}

Result<std::unique_ptr<Engine>> Engine::open(const std::string& dir, const EngineOptions& options) {
  std::unique_ptr<Engine> e(new Engine(dir, options));
  if (e->o_.worker_cpus.empty()) e->o_.worker_cpus.push_back(-1);
  e->head_ = std::make_unique<HeadListener>();
  LogOptions lo = e->o_.log;
  if (lo.commit_listener != nullptr)
    return Status(StatusCode::invalid_argument, "engine " + dir + ": LogOptions::commit_listener is the engine's own");
  const uint32_t cap = e->o_.ring_capacity;
  if (cap < 2 || (cap & (cap - 1)) != 0)
    return Status(StatusCode::invalid_argument, "engine " + dir + ": ring_capacity " + std::to_string(cap) +
                                                    " is not a power of two >= 2");
  lo.commit_listener = e->head_.get();  // head counters (stats on) and the bus (after start())
  // Keep the writer's maintenance thread (segment preparation: ~17 ms of kernel work per
  // 64 MiB here) off the pinned workers' CPUs, where it would stall a busy-spinning worker.
  for (int cpu : e->o_.worker_cpus)
    if (cpu >= 0 && cpu < 64) lo.maintenance_avoid_cpus |= uint64_t{1} << cpu;
  if (e->o_.stats_file) {
    ::mkdir(dir.c_str(), 0755);
    counters::CountersFile::Meta meta;
    meta.log_dir = dir;
    meta.segment_size = lo.segment_size;
    meta.slot_count = e->o_.stats_slots;
    auto f = counters::CountersFile::create(dir + "/" + counters::kFileName, meta);
    if (!f.ok()) return f.status();
    e->stats_ = std::move(f.value());
    e->head_->attach(&e->stats_->header(), lo.segment_size);
  }
  auto w = LogWriter::open(dir, lo);
  if (!w.ok()) return w.status();
  e->writer_ = std::move(w.value());
  // The log's event types, so that bind() keeps their ids and readers can decode.
  e->registry_ = std::make_unique<serialization::SchemaRegistry>();
  if (Status st = e->registry_->load(dir); !st.ok()) return st;
  if (e->o_.metrics_port >= 0 && (!e->o_.stats_file || e->o_.metrics_port > 65535))
    return Status(StatusCode::invalid_argument,
                  "engine " + dir + ": metrics_port " + std::to_string(e->o_.metrics_port) +
                      (e->o_.stats_file ? " is not a port" : " needs stats_file (the endpoint serves its counters)"));
  if (e->stats_) {
    counters::put(e->stats_->header().head_position, e->writer_->committed_position());
  }
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
  for (const auto& w : workers_) v.push_back(w->pin);
  return v;
}

Status Engine::start() {
  if (running_ || stopped_) return Status(StatusCode::invalid_argument, "engine " + dir_ + " was already started");
  const uint64_t end = writer_->committed_position();
  for (auto& r : runners_)
    if (Status st = r->open(end); !st.ok()) return st;
  // The ring starts at the log's end: ring sequence == log position. Nothing appends during
  // start() (thread-safety rules), so `end` is still the writer's next position.
  bus_ = std::make_unique<Bus>(dir_, o_.ring_capacity, static_cast<int64_t>(end));
  for (size_t i = 0; i < o_.worker_cpus.size(); ++i) {
    auto w = std::make_unique<Worker>();
    w->index = static_cast<int>(i);
    w->cpu = o_.worker_cpus[i];
    workers_.push_back(std::move(w));
  }
  size_t rr = 0;
  for (auto& r : runners_) {
    const int wi = r->options().worker >= 0 ? r->options().worker : static_cast<int>(rr++ % workers_.size());
    workers_[static_cast<size_t>(wi)]->runners.push_back(r.get());
  }
  for (auto& wp : workers_) {
    Worker& w = *wp;
    if (w.runners.empty()) continue;
    // The consumer starts right after the lowest runner position: at the ring's start, or
    // behind it (a checkpoint older than the log's end), catching up from the log first.
    uint64_t lowest = UINT64_MAX;
    for (ProjectionRunner* r : w.runners) lowest = std::min(lowest, r->next_position());
    ProcessorOptions po;
    po.name = "worker-" + std::to_string(w.index);
    po.overrun = OverrunPolicy::catch_up;  // the writer never waits for a read model
    po.max_batch = o_.max_batch;
    po.start_after = static_cast<int64_t>(lowest) - 1;
    w.fan_out = std::make_unique<RunnerFanOut>(w.runners);
    w.consumer = std::make_unique<RecordConsumer>(bus_->ring, dir_, *w.fan_out, po);
    if (Status st = w.consumer->status(); !st.ok()) return st;
  }
  head_->forward_to(&bus_->publisher);  // from now on every commit reaches the ring
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->thread = std::thread([this, wp] { worker_loop(*wp); });
    while (!wp->started.load(std::memory_order_acquire)) std::this_thread::yield();  // pairs with the worker's release
  }
  if (o_.writer == WriterMode::ingress) {
    ingress_ = std::make_unique<Ingress>();
    ingress_->thread = std::thread([this] { ingress_loop(); });
  }
  checkpoint_thread_ = std::thread([this] { checkpoint_loop(); });
  monitor_thread_ = std::thread([this] { monitor_loop(); });
  running_ = true;
  if (o_.metrics_port >= 0 && stats_) {
    counters::CountersFile* f = stats_.get();
    auto m = MetricsServer::start(static_cast<uint16_t>(o_.metrics_port),
                                  [f] { return prometheus_text(counters::read_stats(*f), realtime_ns()); });
    if (!m.ok()) {
      stop().ignore();
      return Status(m.status().code(), "engine " + dir_ + ": " + m.status().message());
    }
    metrics_ = std::move(m.value());
  }
  return Status::OK();
}

uint16_t Engine::metrics_port() const noexcept { return metrics_ ? metrics_->port() : 0; }

void Engine::worker_loop(Worker& w) noexcept {
  WorkerHeap::Scope heap;  // read models of this worker allocate from its own mimalloc heap
  w.pin = pin_to(w.cpu);
  // Release: publishes w.pin to start() (acquire there).
  w.started.store(true, std::memory_order_release);
  IdleStrategy idle(idle_options(o_.idle), &bus_->ring.signal(), &Worker::has_work_fn, &w);
  for (;;) {
    if (RebuildHandover* h = w.handover.load(std::memory_order_acquire)) {  // pairs with rebuild()'s release
      if (try_handover(w)) {
        w.handover.store(nullptr, std::memory_order_relaxed);  // only this thread reads it non-null again
        h->done.store(1, std::memory_order_release);           // pairs with rebuild()'s acquire
      }
    }
    int work = 0;
    if (w.consumer) work = w.consumer->do_work();
    // Acquire: pairs with the release in stop(); deadline_ns is then readable.
    const int state = w.state.load(std::memory_order_acquire);
    if (state == 1 && work == 0) {
      if (drained(w)) break;
      if (steady_ns() >= w.deadline_ns.load(std::memory_order_relaxed)) {
        w.drained_ok.store(false, std::memory_order_relaxed);
        break;
      }
      std::this_thread::yield();  // draining: the rest is being committed or read from the log
      continue;
    }
    idle.idle(work);
  }
}

// Every projection of the worker has applied everything committed (or has stopped).
bool Engine::drained(const Worker& w) const noexcept {
  const uint64_t end = writer_->committed_position();
  for (ProjectionRunner* r : w.runners)
    if (!r->stopped() && r->next_position() < end) return false;
  return true;
}

// Brings the shadow to the live runner's position from the log, then swaps it in. False:
// the log reader does not show those records yet (a commit racing its refresh): try again
// on the next loop; the live runner moves on meanwhile and the shadow follows.
bool Engine::try_handover(Worker& w) noexcept {
  constexpr uint32_t kMaxTries = 10'000;
  // Relaxed: the worker's acquire load in worker_loop() already synchronised with rebuild().
  RebuildHandover& h = *w.handover.load(std::memory_order_relaxed);
  const uint64_t target = h.live->next_position();
  if (h.shadow->next_position() < target && !h.shadow->failed()) {
    try {
      if (!w.handover_reader) {
        auto r = LogReader::open(dir_);
        if (r.ok()) w.handover_reader = std::move(r.value());
      } else if (w.handover_reader->end_position() < target) {
        (void)w.handover_reader->refresh();  // a transient failure is retried next round
      }
    } catch (...) {  // cold path; treated as not-yet
    }
    if (w.handover_reader) {
      RecordView v;
      for (uint64_t p = h.shadow->next_position(); p < target; ++p) {
        if (!w.handover_reader->read(p, &v)) break;
        h.shadow->on_record(v, p + 1 == target);
      }
    }
    if (h.shadow->next_position() < target && !h.shadow->failed() && ++h.tries < kMaxTries) return false;
  }
  h.swapped = h.shadow->next_position() == target && !h.shadow->failed();
  if (h.swapped) h.live->adopt(*h.shadow);
  h.position = h.live->next_position();
  h.digest = h.live->digest();
  return true;
}

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
    Status st = write_checkpoint(dir_, r->name(), d);
    r->pending_done(d, st.ok());
  }
  return any;
}

void Engine::checkpoint_loop() noexcept {
  // Acquire: pairs with the release in stop().
  while (!stop_services_.load(std::memory_order_acquire)) {
    if (!write_pending_checkpoints(false)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Engine::monitor_loop() noexcept {
  std::vector<bool> active(runners_.size(), false);
  while (!stop_services_.load(std::memory_order_acquire)) {  // pairs with stop()'s release
    if (stats_) counters::put(stats_->header().heartbeat_ns, static_cast<uint64_t>(realtime_ns()));
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
    std::this_thread::sleep_for(o_.monitor_interval);
  }
}

void Engine::ingress_loop() noexcept {
  Ingress& in = *ingress_;
  std::deque<Ingress::Request*> batch;
  for (;;) {
    {
      std::unique_lock lock(in.mu);
      in.cv.wait(lock, [&] { return in.stopping || !in.queue.empty(); });
      if (in.queue.empty() && in.stopping) return;
      batch.swap(in.queue);
    }
    for (Ingress::Request* r : batch) {
      if (r->is_stream) {
        auto s = writer_->stream(r->name);
        if (s.ok()) r->stream_id = s.value();
        else r->stream_status = s.status();
      } else {
        r->result = writer_->append(r->stream, r->expected, r->events);
      }
      r->done.store(1, std::memory_order_release);  // pairs with push_and_wait()'s acquire
    }
    batch.clear();
  }
}

Result<StreamId> Engine::stream(std::string_view name) { return writer_->stream(name); }

AppendResult Engine::append(StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept {
  return writer_->append(stream, expected, events);
}

Result<StreamId> Engine::submit_stream(std::string_view name) {
  if (!ingress_) return Status(StatusCode::invalid_argument, "engine " + dir_ + ": submit needs WriterMode::ingress and start()");
  Ingress::Request r;
  r.is_stream = true;
  r.name = name;
  ingress_->push_and_wait(r);
  if (!r.stream_status.ok()) return r.stream_status;
  return r.stream_id;
}

AppendResult Engine::submit(StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept {
  AppendResult res;
  if (!ingress_) {
    res.code = AppendCode::closed;
    return res;
  }
  Ingress::Request r;
  r.stream = stream;
  r.expected = expected;
  r.events = events;
  ingress_->push_and_wait(r);
  return r.result;
}

Result<RebuildResult> Engine::rebuild(std::string_view name, std::function<void(const RebuildProgress&)> on_progress) {
  ProjectionRunner* live = runner(name);
  if (!live) return Status(StatusCode::not_found, "no projection '" + std::string(name) + "' in engine " + dir_);
  if (!running_) return Status(StatusCode::invalid_argument, "rebuild of '" + std::string(name) + "': the engine is not running");
  Worker* worker = nullptr;
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
  auto last_report = t0;
  constexpr uint64_t kHandoverGap = 4096;
  RecordView v;
  for (;;) {
    const uint64_t target = live->applied_position();
    if (target <= shadow.next_position() + kHandoverGap || live->failed()) break;
    if (rd.end_position() < target) {
      auto rr = rd.refresh();
      if (!rr.ok()) return rr.status();
    }
    const uint64_t last = std::min({target, rd.end_position(), shadow.next_position() + 4096});
    for (uint64_t p = shadow.next_position(); p < last; ++p)
      if (rd.read(p, &v)) shadow.on_record(v, p + 1 == last);
    if (shadow.failed()) return shadow.failure();
    if (slot) {
      counters::put(slot->counters.rebuild_position, shadow.next_position());
      counters::put(slot->counters.rebuild_target, target);
    }
    const auto now = std::chrono::steady_clock::now();
    if (on_progress && now - last_report >= std::chrono::milliseconds(250)) {
      last_report = now;
      RebuildProgress pr;
      pr.position = shadow.next_position();
      pr.target = target;
      const double secs = std::chrono::duration<double>(now - t0).count();
      pr.events_per_s = secs > 0 ? static_cast<double>(pr.position) / secs : 0;
      pr.eta_s = pr.events_per_s > 0 ? static_cast<double>(target - pr.position) / pr.events_per_s : 0;
      on_progress(pr);
    }
  }
  if (live->failed()) return live->failure();
  RebuildHandover h;
  h.live = live;
  h.shadow = &shadow;
  // Release: publishes the shadow (built on this thread) to the worker's acquire load.
  worker->handover.store(&h, std::memory_order_release);
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
  // 1. Producers: finish what was submitted, refuse the rest.
  if (ingress_) {
    {
      std::lock_guard lock(ingress_->mu);
      ingress_->stopping = true;
    }
    ingress_->cv.notify_all();
    ingress_->thread.join();
  }
  // 2. Make everything committed acknowledged, so final checkpoints may cover it.
  if (Status st = writer_->flush(); !st.ok() && result.ok()) result = st;
  // 3. Drain every worker to the log's end, within the deadline.
  const int64_t deadline = steady_ns() + std::chrono::nanoseconds(timeout).count();
  for (auto& w : workers_) {
    w->deadline_ns.store(deadline, std::memory_order_relaxed);
    w->state.store(1, std::memory_order_release);  // publishes deadline_ns to the worker
  }
  for (auto& w : workers_) {
    w->thread.join();
    if (!w->drained_ok.load(std::memory_order_relaxed) && result.ok()) {
      std::string names;
      for (ProjectionRunner* r : w->runners) names += (names.empty() ? "" : ", ") + r->name();
      result = Status(StatusCode::timeout, "engine " + dir_ + ": worker " + std::to_string(w->index) + " (" + names +
                                               ") did not drain within the timeout");
    }
  }
  // 4. Stop the services; write what is pending, then a final checkpoint per projection (the
  // workers have stopped: join made their state visible here).
  stop_services_.store(true, std::memory_order_release);  // pairs with the services' acquire
  checkpoint_thread_.join();
  monitor_thread_.join();
  write_pending_checkpoints(true);
  for (auto& r : runners_) {
    if (r->failed()) continue;
    CheckpointData d = r->snapshot_now();
    if (d.position > writer_->acknowledged_position()) continue;  // cannot happen after flush()
    d.written_ns = realtime_ns();
    Status st = write_checkpoint(dir_, r->name(), d);
    r->pending_done(d, st.ok());
    if (!st.ok() && result.ok()) result = st;
  }
  for (auto& r : runners_)
    if (counters::Slot* s = r->slot(); s && !r->failed()) counters::CountersFile::set_state(*s, counters::SlotState::stopped);
  if (Status st = writer_->close(); !st.ok() && result.ok()) result = st;
  head_->forward_to(nullptr);  // the writer is closed: nothing commits any more
  return result;
}

}  // namespace sluice
