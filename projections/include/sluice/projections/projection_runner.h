// ProjectionRunner: drives one projection — applies committed records in log order, with
// retries and per-key dead-lettering, commits once per batch, publishes its position and
// lag counters, and hands checkpoints to a checkpoint writer.
//
//   source (the engine worker's ring consumer, or LogTail / a LogReader)
//        │ apply_record(view) per event, end_batch(now) per batch    worker thread
//        │ (or on_record(view, end_of_batch): both, with the runner's own clock)
//        ▼
//   ProjectionRunner ──apply──► Projection (read model)        queries: any thread
//        │ end_batch: on_batch_end(); applied_ (release)       wait_for(P)
//        │            counters, latency histogram (stores) ───► sluice.stats ──► `sluice stat`
//        │ checkpoint due: snapshot ──► pending (release)
//        ▼
//   checkpoint thread: wait until the log is durable to P, write file atomically
//
// Design
//   The worker owns everything the hot path touches: next_, the live projection, the parked
//   key set, the counters slot. Per event it makes no allocation, takes no lock, makes no
//   system call, reads no clock and throws nothing (a handler's exception is caught — the
//   failure path). Per batch it release-stores applied_, which is what wait_for() and
//   dependants observe, stores its counters (relaxed single-writer stores into the slot)
//   and records the batch's append -> applied latencies against one clock reading (the
//   vDSO, or Context::clock_ns), taken only when stats are on or checkpoints are timed.
//
//   Failure isolation: a handler that throws or returns retry is tried up to max_attempts
//   times; then (or at once for reject) the event is parked: recorded in the dead-letter list
//   under its key, and every later event of that key is parked behind it, so per-key order
//   holds while other keys go on. With FailurePolicy::stop, the projection stops instead
//   (state failed); other projections continue.
//
//   Checkpoint hand-off: when a checkpoint is due at a batch end, the worker serialises the
//   read model, parked keys and dead letters into pending_ and release-stores
//   pending_state_ = ready; the checkpoint thread acquires it, waits until the log is durable
//   up to the checkpoint's position, writes the file (checkpoint.h) and stores idle. The
//   worker never waits for it: while a checkpoint is being written, the next is skipped.
//
// Thread safety
//   open(), restore: before the worker starts (or on the worker). on_record(),
//   apply_record(), end_batch(), poll_*:
//   the worker thread only. applied_position(), wait_for(), model(), failure(),
//   dead_letters(), take_pending()/pending_done(): any thread (documented per method).
//
// Invariants
//   - Events [0, next_) have been applied or parked exactly once, in log order.
//   - applied_ <= next_; a checkpoint's position <= applied_ when it was taken, and it is
//     written only when the log is durable up to it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "sluice/stats/counters_file.h"
#include "sluice/bus/log_types.h"
#include "sluice/projections/checkpoint.h"
#include "sluice/projections/projection.h"
#include "sluice/status.h"

namespace sluice {

enum class FailurePolicy : uint8_t {
  park,  // park the event (and its key) in the dead-letter list; go on with other keys
  stop,  // stop this projection (state failed); others continue
};

struct LagThresholds {
  uint64_t max_events_behind = 0;           // 0 = no threshold
  std::chrono::nanoseconds max_time_behind{0};  // 0 = no threshold
};

struct ProjectionOptions {
  uint32_t max_attempts = 3;                    // tries per event before parking (>= 1)
  FailurePolicy on_failure = FailurePolicy::park;
  uint64_t checkpoint_every = 100'000;          // events between checkpoints (0 = time only)
  std::chrono::milliseconds checkpoint_interval{1000};  // or this much time (0 = events only)
  LagThresholds alert{};                        // raise an alert above these (engine monitor)
  int worker = -1;                              // engine worker index; -1 = round robin
};

struct DeadLetter {
  uint64_t position = 0;
  StreamId stream = 0;
  uint64_t key = 0;
  uint32_t type = 0;
  uint32_t attempts = 0;
  std::string reason;
};

using ProjectionFactory = std::function<std::unique_ptr<Projection>()>;

// What a projection's checkpoint records besides its read model: the parked keys and dead
// letters as of `position` (what `sluice stat DIR --dead-letters` lists).
struct CheckpointState {
  uint64_t position = 0;
  uint64_t events_applied = 0;
  int64_t written_ns = 0;
  int64_t applied_timestamp_ns = 0;
  std::vector<uint64_t> parked_keys;
  std::vector<DeadLetter> dead_letters;
};
// nullopt when the projection has no checkpoint; corruption (naming the file) when damaged.
Result<std::optional<CheckpointState>> read_checkpoint_state(const std::string& log_dir, std::string_view projection);

class ProjectionRunner {
 public:
  struct Context {
    std::string log_dir;
    counters::Slot* slot = nullptr;     // nullptr: stats file off
    int64_t (*clock_ns)() = nullptr;    // latency clock; nullptr: CLOCK_REALTIME
    uint64_t segment_size = 64ull << 20;  // for log addresses (bytes behind)
    // Decoders of typed events (Projection::resolve_types); nullptr: the raw convention.
    // Must outlive the runner and not change while it runs.
    const serialization::SchemaRegistry* registry = nullptr;
  };

  ProjectionRunner(std::string name, ProjectionFactory factory, ProjectionOptions options, Context ctx);
  ~ProjectionRunner();
  ProjectionRunner(const ProjectionRunner&) = delete;
  ProjectionRunner& operator=(const ProjectionRunner&) = delete;

  // Creates the projection and restores it from its checkpoint, if any (cold). `log_end`:
  // the log's end; a checkpoint past it is refused (it would skip events), naming the file.
  Status open(uint64_t log_end, bool use_checkpoint = true);

  const std::string& name() const noexcept { return name_; }
  const ProjectionOptions& options() const noexcept { return o_; }
  const ProjectionFactory& factory() const noexcept { return factory_; }

  // ---- worker thread -------------------------------------------------------------------------
  // Applies the record at next_position() (others are ignored: below = already applied;
  // above = a gap, which fails the projection). end_of_batch: commit point — the same as
  // apply_record(v) then, if end_of_batch, end_batch() with the runner's own clock.
  void on_record(const RecordView& v, bool end_of_batch) noexcept {
    apply_record(v);
    if (end_of_batch) end_batch(needs_clock() ? now_ns() : 0);
  }
  // The two halves of on_record(), for a caller that feeds several runners the same records
  // (the engine's worker): apply the record to each, then at the batch's end read the clock
  // once (if any runner needs_clock()) and end the batch of each with that reading.
  // apply_record() reads no clock and touches no counter but the runner's own fields.
  void apply_record(const RecordView& v) noexcept;
  // Commit point: on_batch_end(), applied_ (release), the counters, the latency histogram
  // of the batch's events (append -> committed, measured against `now`) and a checkpoint
  // if one is due. Does nothing when no event was applied since the last commit.
  // `now`: this runner's latency clock (now_ns()), read once per batch; ignored (may be 0)
  // when !needs_clock().
  void end_batch(int64_t now) noexcept;
  // Whether end_batch() uses its clock reading: stats on (histogram) or time-based
  // checkpoints. A rebuild (no stats, no checkpoints) reads no clock at all.
  bool needs_clock() const noexcept { return ctx_.slot != nullptr || o_.checkpoint_interval.count() > 0; }
  // The latency clock (Context::clock_ns, else CLOCK_REALTIME through the vDSO).
  int64_t now_ns() const noexcept;
  // Next position the worker expects (worker thread; others: applied_position()).
  uint64_t next_position() const noexcept { return next_; }
  bool stopped() const noexcept { return stopped_; }

  // ---- any thread ----------------------------------------------------------------------------
  // Every position below this is applied and its batch committed.
  uint64_t applied_position() const noexcept {
    // Acquire: pairs with the release at each batch end; the read model's updates for those
    // positions happen-before the caller's later queries.
    return applied_.load(std::memory_order_acquire);
  }
  // Read-your-writes: waits until applied_position() > position (the event at `position` is
  // applied), the projection fails, or the timeout passes (timeout error naming the
  // projection). Polls with backoff (spin, yield, then sleeps up to 1 ms).
  Status wait_for(uint64_t position, std::chrono::nanoseconds timeout) const;
  // The current projection (read model) for queries. Holding the pointer keeps it alive
  // across a swap.
  std::shared_ptr<const Projection> model() const;
  // Failed (policy stop, a gap, an I/O error): the reason, naming the projection. OK otherwise.
  Status failure() const;
  bool failed() const noexcept {
    // Acquire: pairs with the release in fail(); failure() is then readable.
    return failed_.load(std::memory_order_acquire);
  }
  std::vector<DeadLetter> dead_letters() const;
  // The counters slot (nullptr when stats are off).
  counters::Slot* slot() const noexcept { return ctx_.slot; }

  // ---- checkpoint thread ---------------------------------------------------------------------
  // Takes the checkpoint the worker prepared, if one is ready.
  bool take_pending(CheckpointData* out);
  // After the checkpoint thread wrote (or dropped) it: frees the hand-off slot.
  void pending_done(const CheckpointData& written, bool ok);
  // Prepares a checkpoint of the current state at once (worker stopped, or on the worker).
  CheckpointData snapshot_now() const;

  // Offline use (rebuild, tests): the digest of the current read model.
  uint64_t digest() const noexcept { return live_->digest(); }

  // Blue/green swap, on the worker thread: `shadow` (a runner rebuilt from the log, at the
  // same next_position()) hands over its read model, parked keys and dead letters; queries
  // see the new model from the next model() call on.
  void adopt(ProjectionRunner& shadow) noexcept;

 private:
  void record_latencies(int64_t now) noexcept;
  void park(const Event& e, uint64_t key, uint32_t attempts, std::string reason) noexcept;
  void fail(Status st) noexcept;
  void maybe_checkpoint(int64_t now) noexcept;
  uint64_t address_of(const RecordView& v) const noexcept;
  Status restore(const CheckpointData& d);

  const std::string name_;
  const ProjectionFactory factory_;
  const ProjectionOptions o_;
  const Context ctx_;

  // Worker-owned.
  std::shared_ptr<Projection> live_owner_;  // guarded by model_mu_ for copies; see model()
  Projection* live_ = nullptr;
  uint64_t next_ = 0;
  uint64_t applied_address_ = 0;
  int64_t applied_ts_ = 0;
  uint64_t events_applied_ = 0;
  uint64_t batch_events_ = 0;
  uint64_t since_checkpoint_ = 0;
  int64_t last_checkpoint_ns_ = 0;
  bool stopped_ = false;
  std::unordered_set<uint64_t> parked_;
  // Append timestamps of the events applied since the last histogram update (stats on
  // only): recorded at end_batch() against one clock reading, or, when a batch outgrows the
  // buffer, against a reading taken when it fills (so a clock read per kLatencyBuffer
  // events at most; such events are measured a little before their commit).
  static constexpr uint32_t kLatencyBuffer = 256;
  uint32_t latency_count_ = 0;
  std::array<int64_t, kLatencyBuffer> latency_ts_{};

  // applied_: positions below it are applied and committed. Release store at each batch
  // end (worker); acquire loads in applied_position() / wait_for().
  alignas(64) std::atomic<uint64_t> applied_{0};
  // failed_: set once with release after failure_ is written under mu_.
  std::atomic<bool> failed_{false};
  // pending_state_: 0 idle (the worker may fill pending_), 1 ready (the checkpoint thread
  // owns pending_). Release stores on both sides publish pending_ to the other; acquire
  // loads pair with them.
  alignas(64) std::atomic<int> pending_state_{0};
  CheckpointData pending_;

  // Cold state shared with other threads.
  mutable std::mutex mu_;
  Status failure_;
  std::vector<DeadLetter> dead_letters_;
};

}  // namespace sluice
