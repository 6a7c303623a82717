// Engine: opens a log directory with a configuration, registers projections, runs them on
// pinned worker threads, takes appends from any number of threads, publishes every counter
// into the stats file, and stops cleanly. It is wiring: every moving part is the bus's, the
// projections' or the stats module's.
//
// The path of one event, with its threads (WriterMode::ingress):
//
//   producer thread ── Submitter::try_submit() ──► bus::Ingress (per producer: SPSC request + result rings)
//     (any number; no lock, no                           │
//      allocation; a syscall only to wake a parked writer) ▼
//   writer thread (AgentRunner + IngressAgent) ── LogWriter::append() ── record committed in the mapped segment
//     completes the ticket (results ring, release)       │ CommitListeners, on the writer thread:
//     ◄── producer's wait()/try_acknowledged()           ├─► HeadCounters: head position/address/time → stats file
//                                                        └─► LogPublisher → RecordRing (slot = log position)
//   worker thread i (AgentRunner + WorkerAgent, pinned)  │
//     RecordConsumer (own sequence; lapped → reads the log, rejoins the ring)
//     → ProjectionRunner::apply_record() for each projection of the worker → end_batch():
//       the read model publishes the batch (readers see it), latency sample, counters
//   checkpoint thread: waits for durability, writes checkpoints  (off the hot threads)
//   monitor thread: heartbeat, lag alerts, consumer and ingress counters → stats file
//   log maintenance thread: segment preparation in short slices, group flushes
//
// With WriterMode::caller the application thread that calls append() is the writer thread.
//
// Design
//   Configuration happens before start(): add_projection() registers a projection factory
//   and its options. start() opens each runner (restoring its checkpoint, refusing one past
//   the log's end), gives it a counters slot, creates the bus (a RecordRing starting at the
//   log's end and the LogPublisher added to the writer's CommitListeners) and one
//   RecordConsumer per worker starting right after the lowest position of its runners (a
//   runner already past a record ignores it), then starts one AgentRunner per worker
//   (pinning, idle strategy, drain) and, in ingress mode, one for the writer. Projections are
//   assigned to workers round robin unless their options name one. A worker applies each
//   record to every runner in registration order, and at the end of a batch reads the latency
//   clock once and commits each runner: one ring cursor and one clock read per batch per
//   worker. A consumer uses OverrunPolicy::catch_up: the writer never waits for a read
//   model. stop() drains: the ingress first (close, then the writer agent completes what
//   is queued), then a flush, then every worker until its projections reach the log's end
//   (or the deadline), then final checkpoints.
//
// Thread safety
//   open(), add_projection(), bind(), start(), stop(), rebuild(): one controlling thread;
//   start() and stop() must not run concurrently with append().
//   append()/stream(): with WriterMode::caller, the one thread that owns the writer (the
//   first to call). submit()/submit_stream()/submitter(): with WriterMode::ingress, any
//   thread. Handles (ProjectionHandle) and stats accessors: any thread.
//
// Invariants
//   - A projection's checkpoint never points past the log's acknowledged position.
//   - After stop() returns OK every projection has applied every committed event, and every
//     ticket submitted before stop() is completed (appended, or refused with `closed`).
//   - The ring's sequence s carries the event at log position s.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sluice/bus/idle_strategy.h"
#include "sluice/bus/ingress.h"
#include "sluice/bus/log_types.h"
#include "sluice/bus/log_writer.h"
#include "sluice/projections/projection.h"
#include "sluice/projections/projection_runner.h"
#include "sluice/projections/rebuild.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/stats/counters_file.h"
#include "sluice/status.h"

namespace sluice {

class MetricsServer;
class AgentRunner;
class CommitListeners;
class HeadCounters;

enum class WriterMode : uint8_t {
  caller,   // THE DEFAULT: the application thread that calls append() owns the writer
  ingress,  // the engine runs the writer thread; any thread calls submit()
};

struct LagAlert {
  std::string projection;
  bool active = false;          // true: raised; false: cleared
  uint64_t events_behind = 0;
  int64_t time_behind_ns = 0;
};

struct EngineOptions {
  LogOptions log{};                             // segment size, durability, ...
  WriterMode writer = WriterMode::caller;
  std::vector<int> worker_cpus{-1};             // one worker per entry; -1 = not pinned
  // How an idle worker waits (IdleKind::backoff_park, THE DEFAULT: spin briefly, yield, then
  // park on the ring's wake signal, 1 µs doubling to 1 ms, a publish ends the park early;
  // yield; busy_spin: only for a worker with a core of its own).
  IdleOptions idle{};
  // WriterMode::ingress: the writer thread's CPU (-1 = not pinned, THE DEFAULT) and how it
  // waits for submissions (default backoff_park: a submission ends its park early).
  int writer_cpu = -1;
  IdleOptions writer_idle{};
  // WriterMode::ingress: submitting threads at once (64) and unfinished submissions per
  // thread (1024); past either, a submission is back-pressured (a value, never a drop).
  IngressOptions ingress{};
  uint32_t max_batch = 1024;                    // events per worker per poll (each of its
                                                // projections commits once per poll)
  uint32_t ring_capacity = 64 * 1024;           // bus ring slots (power of two, 64 B each)
  bool stats_file = true;                       // <dir>/sluice.stats (off: no counters at all)
  uint32_t stats_slots = 32;                   // projections + workers + 1 (ingress)
  std::chrono::milliseconds monitor_interval{100};  // heartbeat and alert checks
  std::function<void(const LagAlert&)> on_alert;    // called on the monitor thread
  int64_t (*clock_ns)() = nullptr;              // latency/lag clock; nullptr: CLOCK_REALTIME
  // Prometheus text endpoint (GET /metrics) on 127.0.0.1 only, served from start() to stop()
  // on a thread of its own: -1 = off (THE DEFAULT), 0 = an ephemeral port (metrics_port()
  // says which), else that port. Needs stats_file. The same port serves the live lag page
  // at / and its data at /stats.json (docs/projections.md).
  int metrics_port = -1;
};

template <class P>
class ProjectionHandle {
 public:
  ProjectionHandle() = default;
  explicit ProjectionHandle(ProjectionRunner* r) : r_(r) {}
  // The current read model (kept alive while held, also across a blue/green swap).
  std::shared_ptr<const P> get() const { return std::static_pointer_cast<const P>(r_->model()); }
  // Read-your-writes: waits until the event at `position` is applied.
  Status wait_for(uint64_t position, std::chrono::nanoseconds timeout) const { return r_->wait_for(position, timeout); }
  uint64_t applied_position() const noexcept { return r_->applied_position(); }
  const std::string& name() const noexcept { return r_->name(); }
  ProjectionRunner& runner() const noexcept { return *r_; }
  explicit operator bool() const noexcept { return r_ != nullptr; }

 private:
  ProjectionRunner* r_ = nullptr;
};

// One submitting thread's handle on the engine's ingress (WriterMode::ingress): pipelined
// submissions with tickets, or waiting ones. From Engine::submitter(); give it back (destroy
// it) before the engine goes. Not for two threads at once.
// Callbacks the engine's monitor runs to publish other components' counters (any thread may
// add or remove one; removal waits for a run in progress).
class StatsPublishers {
 public:
  uint64_t add(std::function<void()> publish);
  void remove(uint64_t id);
  void run() noexcept;  // the monitor thread

 private:
  std::mutex mu_;
  std::vector<std::pair<uint64_t, std::function<void()>>> publishers_;  // under mu_
  uint64_t next_ = 1;                                                   // under mu_
};

class Submitter {
 public:
  Submitter() = default;
  Submitter(Submitter&& o) noexcept : in_(o.in_), p_(o.p_) { o.in_ = nullptr, o.p_ = nullptr; }
  Submitter& operator=(Submitter&& o) noexcept;
  ~Submitter();

  // Pipelined: enqueues and returns at once (ok, back_pressured, closed); the events and
  // their payloads must stay alive until the ticket completes.
  [[nodiscard]] SubmitCode try_submit(StreamId stream, ExpectedVersion expected, std::span<const EventData> events,
                                      Ticket* ticket) noexcept {
    return p_->try_submit(stream, expected, events, ticket);
  }
  // Committed (or refused)?
  [[nodiscard]] bool try_result(Ticket t, AppendResult* out) const noexcept { return p_->try_result(t, out); }
  // Committed and acknowledged under the log's durability (or refused)?
  [[nodiscard]] bool try_acknowledged(Ticket t, AppendResult* out) const noexcept { return p_->try_acknowledged(t, out); }
  // Waits until try_acknowledged() (spin, yield, park).
  AppendResult wait(Ticket t) noexcept { return p_->wait(t); }
  // Waits until try_result() (committed or refused; under group maybe not yet acknowledged).
  AppendResult wait_completed(Ticket t) noexcept { return p_->wait_completed(t); }
  // Waiting form: back_pressured / closed come back as the AppendCode of the same name.
  AppendResult submit(StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept {
    return p_->submit(stream, expected, events);
  }
  AppendResult submit(StreamId stream, ExpectedVersion expected, const EventData& e) noexcept {
    return p_->submit(stream, expected, std::span<const EventData>(&e, 1));
  }
  // Finds or defines a stream (cold; waits for the writer thread).
  Result<StreamId> stream(std::string_view name) { return p_->define_stream(name); }
  uint64_t in_flight() const noexcept { return p_->in_flight(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  friend class Engine;
  Submitter(Ingress* in, IngressProducer* p) noexcept : in_(in), p_(p) {}
  Ingress* in_ = nullptr;
  IngressProducer* p_ = nullptr;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> open(const std::string& dir, const EngineOptions& options = {});
  ~Engine();  // stop() if still running
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Registers a projection (before start()). The factory makes the live instance and, for
  // a rebuild, shadow instances. Error: bad or duplicate name, already started.
  template <class P>
  Result<ProjectionHandle<P>> add_projection(std::string name, ProjectionOptions options,
                                             std::function<std::unique_ptr<P>()> factory) {
    auto r = add_runner(std::move(name), options, [f = std::move(factory)]() -> std::unique_ptr<Projection> { return f(); });
    if (!r.ok()) return r.status();
    return ProjectionHandle<P>(r.value());
  }
  template <class P>
  Result<ProjectionHandle<P>> add_projection(std::string name, ProjectionOptions options = {}) {
    return add_projection<P>(std::move(name), options, [] { return std::make_unique<P>(); });
  }

  // Binds typed event T (serialization/event_traits.h) to `codec` before start(), writing
  // its schema into the log if the log does not describe it yet. The binding encodes events
  // for append()/submit(); projections' on<T>() handlers decode through the same registry,
  // whatever codec each record was written with, so switching codecs is configuration only.
  // The registry is loaded from the log at open(), so type ids stay stable across restarts.
  template <serialization::Event T>
  Result<serialization::EventBinding<T>> bind(serialization::CodecId codec) {
    if (running_ || stopped_)
      return Status(StatusCode::invalid_argument,
                    "engine " + dir_ + ": bind " + std::string(serialization::EventTraits<T>::name) +
                        " before Engine::start()");
    return registry_->bind<T>(codec, writer_.get());
  }
  // The event types of this log (loaded at open, plus bind()): read-only once started.
  const serialization::SchemaRegistry& registry() const noexcept { return *registry_; }

  Status start();
  // Drains and stops everything within `timeout`; error names what did not drain.
  Status stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // ---- appending (WriterMode::caller: one owning thread) ------------------------------------
  Result<StreamId> stream(std::string_view name);
  AppendResult append(StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept;
  AppendResult append(StreamId stream, ExpectedVersion expected, const EventData& e) noexcept {
    return append(stream, expected, std::span<const EventData>(&e, 1));
  }
  // ---- appending (WriterMode::ingress: any thread) -------------------------------------------
  // A handle for the calling thread (cold: takes a producer from the pool). Error: not in
  // ingress mode or not started, or EngineOptions::ingress.max_producers handles are out.
  Result<Submitter> submitter();
  // Convenience without a handle: the calling thread keeps one producer of this engine for
  // the engine's life (a thread that submits to many engines in turn should hold Submitters).
  // Waits until the event is acknowledged under the log's durability.
  Result<StreamId> submit_stream(std::string_view name);
  AppendResult submit(StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept;
  AppendResult submit(StreamId stream, ExpectedVersion expected, const EventData& e) noexcept {
    return submit(stream, expected, std::span<const EventData>(&e, 1));
  }

  // The ingress (ingress mode, after start()): its counters, or nullptr.
  const Ingress* ingress() const noexcept { return ingress_.get(); }

  // Every position below this is committed / acknowledged.
  uint64_t committed_position() const noexcept { return writer_->committed_position(); }
  uint64_t acknowledged_position() const noexcept { return writer_->acknowledged_position(); }

  // Blue/green rebuild of one projection while the engine runs: replays the log from 0 into
  // a shadow instance on the calling thread (progress reported), then hands it to the
  // projection's worker, which brings it to its own position and swaps it in atomically.
  // Queries see the old model until the swap, the new one after. Blocks until swapped.
  Result<RebuildResult> rebuild(std::string_view projection, std::function<void(const RebuildProgress&)> on_progress = nullptr);

  // ---- stats of the layers above the engine (aggregate repositories, ...) ---------------------
  // A slot of `kind` named `name` in the stats file (cold; any thread). nullptr: the stats
  // file is off. Error: no free slot (EngineOptions::stats_slots).
  Result<counters::Slot*> stats_slot(counters::SlotKind kind, std::string_view name);
  // Publishers run on the monitor thread every monitor_interval and once more in stop(), so
  // a component copies its own counters into its slot off its hot path. Shared, so that a
  // component may remove itself even after the engine is gone.
  std::shared_ptr<StatsPublishers> stats_publishers() const noexcept { return publishers_; }

  ProjectionRunner* runner(std::string_view name) const noexcept;
  std::vector<ProjectionRunner*> runners() const;
  // Per worker: OK, or why it could not be pinned (it then runs unpinned).
  std::vector<Status> pin_status() const;
  const std::string& dir() const noexcept { return dir_; }
  LogWriter& writer() noexcept { return *writer_; }
  counters::CountersFile* stats() noexcept { return stats_.get(); }
  bool running() const noexcept { return running_; }
  // The Prometheus endpoint's port after start() (0 when off).
  uint16_t metrics_port() const noexcept;

 private:
  class WorkerAgent;
  struct Bus;
  Engine(std::string dir, EngineOptions options);
  Result<ProjectionRunner*> add_runner(std::string name, ProjectionOptions options, ProjectionFactory factory);
  IngressProducer* thread_producer() noexcept;
  void checkpoint_loop() noexcept;
  void monitor_loop() noexcept;
  void publish_bus_counters() noexcept;
  bool write_pending_checkpoints(bool final_pass);

  const std::string dir_;
  const uint64_t serial_;  // tells this engine from any other in a thread's producer cache
  EngineOptions o_;
  std::unique_ptr<CommitListeners> listeners_;  // the writer's: head counters, then the bus
  std::unique_ptr<HeadCounters> head_;
  std::unique_ptr<Bus> bus_;  // declared before writer_: outlives it (the writer publishes into it)
  std::unique_ptr<Ingress> ingress_;
  std::unique_ptr<LogWriter> writer_;
  std::unique_ptr<counters::CountersFile> stats_;
  std::unique_ptr<serialization::SchemaRegistry> registry_;
  std::unique_ptr<MetricsServer> metrics_;
  std::vector<std::unique_ptr<ProjectionRunner>> runners_;
  std::vector<std::unique_ptr<WorkerAgent>> workers_;
  std::vector<std::unique_ptr<AgentRunner>> worker_runners_;
  std::unique_ptr<IngressAgent> ingress_agent_;
  std::unique_ptr<AgentRunner> writer_runner_;
  counters::Slot* ingress_slot_ = nullptr;
  std::mutex stats_mu_;  // stats_slot() from any thread
  std::shared_ptr<StatsPublishers> publishers_ = std::make_shared<StatsPublishers>();
  std::thread checkpoint_thread_;
  std::thread monitor_thread_;
  bool running_ = false;
  bool stopped_ = false;
  // stop_services_: set (release) by stop() to end the checkpoint and monitor threads; they
  // acquire it each round. stop() also sets it under services_mu_ and notifies services_cv_,
  // which the services sleep on between rounds, so that stop() does not wait out a sleep.
  std::atomic<bool> stop_services_{false};
  std::mutex services_mu_;
  std::condition_variable services_cv_;
  // Sleeps up to `d` or until stop(); false once the services are to stop.
  bool services_sleep(std::chrono::nanoseconds d);
  // How often the checkpoint thread looks for pending checkpoints: a quarter of the shortest
  // checkpoint_interval, within [5, 50] ms (set by start()).
  std::chrono::milliseconds checkpoint_poll_{50};
};

}  // namespace sluice
