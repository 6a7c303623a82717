// The engine's worker: an Agent polled by the bus's AgentRunner (pinning, idle strategy and
// drain are the runner's), and the pieces it runs. Private to runtime/.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/bus/agent.h"
#include "sluice/bus/log_publisher.h"
#include "sluice/bus/log_reader.h"
#include "sluice/projections/worker_heap.h"
#include "sluice/runtime/engine.h"

namespace sluice {
namespace runtime_internal {

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

}  // namespace runtime_internal

// The bus on the live path: one ring, fed by one publisher on the writer's thread.
struct Engine::Bus {
  Bus(const std::string& dir, size_t capacity, int64_t start) : ring(capacity, start), publisher(dir, ring) {}
  RecordRing ring;
  LogPublisher publisher;
};

// One worker: an Agent polled by its AgentRunner (pinning, idle strategy and drain are the
// runner's). It owns the worker's ring consumer, applies blue/green hand-overs between polls,
// and keeps the worker's read models in its own mimalloc heap.
class Engine::WorkerAgent final : public Agent {
 public:
  WorkerAgent(int index, const LogWriter& writer) : index_(index), writer_(writer) {}

  // start(): after the runners are assigned (cold).
  Status open(RecordRing& ring, const std::string& dir, uint32_t max_batch) {
    name_ = "worker-" + std::to_string(index_);
    if (!runners.empty()) {
      name_ += " (";
      for (size_t i = 0; i < runners.size(); ++i) name_ += (i ? ", " : "") + runners[i]->name();
      name_ += ")";
    }
    if (runners.empty()) return Status::OK();
    // The consumer starts right after the lowest runner position: at the ring's start, or
    // behind it (a checkpoint older than the log's end), catching up from the log first.
    uint64_t lowest = UINT64_MAX;
    for (ProjectionRunner* r : runners) lowest = std::min(lowest, r->next_position());
    ProcessorOptions po;
    po.name = "worker-" + std::to_string(index_);
    po.overrun = OverrunPolicy::catch_up;  // the writer never waits for a read model
    po.max_batch = max_batch;
    po.start_after = static_cast<int64_t>(lowest) - 1;
    fan_out_ = std::make_unique<runtime_internal::RunnerFanOut>(runners);
    consumer_ = std::make_unique<RecordConsumer>(ring, dir, *fan_out_, po);
    dir_ = dir;
    return consumer_->status();
  }

  void on_start() noexcept override { heap_.emplace(); }  // read models allocate from this thread's heap
  void on_close() noexcept override { heap_.reset(); }
  int do_work() noexcept override {
    if (runtime_internal::RebuildHandover* h = handover.load(std::memory_order_acquire)) {  // pairs with rebuild()'s release
      if (try_handover(*h)) {
        handover.store(nullptr, std::memory_order_relaxed);  // only this thread reads it non-null again
        h->done.store(1, std::memory_order_release);         // pairs with rebuild()'s acquire
      }
    }
    return consumer_ ? consumer_->do_work() : 0;
  }
  const char* role_name() const noexcept override { return name_.c_str(); }
  // Every projection of the worker has applied everything committed (or has stopped).
  bool drained() const noexcept override {
    const uint64_t end = writer_.committed_position();
    for (ProjectionRunner* r : runners)
      if (!r->stopped() && r->next_position() < end) return false;
    return true;
  }
  // Relaxed: a hint before parking; do_work() re-reads the hand-over with acquire.
  bool has_work() const noexcept override {
    return handover.load(std::memory_order_relaxed) != nullptr || (consumer_ && consumer_->has_work());
  }
  WakeSignal* wake_signal() noexcept override { return consumer_ ? consumer_->wake_signal() : nullptr; }

  const RecordConsumer* consumer() const noexcept { return consumer_.get(); }

  std::vector<ProjectionRunner*> runners;
  counters::Slot* slot = nullptr;  // kind consumer (stats on, runners present)
  // handover: a pending blue/green swap. Release store by rebuild() publishes the shadow;
  // the worker's acquire load in do_work() pairs with it.
  std::atomic<runtime_internal::RebuildHandover*> handover{nullptr};

 private:
  // Brings the shadow to the live runner's position from the log (the one replay routine),
  // then swaps it in. False: the log reader does not show those records yet (a commit racing
  // its refresh): try again on the next poll; the live runner moves on meanwhile.
  bool try_handover(runtime_internal::RebuildHandover& h) noexcept {
    constexpr uint32_t kMaxTries = 10'000;
    const uint64_t target = h.live->next_position();
    if (h.shadow->next_position() < target && !h.shadow->failed()) {
      try {
        if (!reader_) {
          auto r = LogReader::open(dir_);
          if (r.ok()) reader_ = std::move(r.value());
        }
        if (reader_) (void)replay_into(*reader_, *h.shadow, target);  // a transient failure is retried
      } catch (...) {  // cold path (allocation failure): treated as not-yet
      }
      if (h.shadow->next_position() < target && !h.shadow->failed() && ++h.tries < kMaxTries) return false;
    }
    h.swapped = h.shadow->next_position() == target && !h.shadow->failed();
    if (h.swapped) h.live->adopt(*h.shadow);
    h.position = h.live->next_position();
    h.digest = h.live->digest();
    return true;
  }

  const int index_;
  const LogWriter& writer_;
  std::string name_;
  std::string dir_;
  std::unique_ptr<runtime_internal::RunnerFanOut> fan_out_;
  std::unique_ptr<RecordConsumer> consumer_;
  std::unique_ptr<LogReader> reader_;  // opened on the first blue/green hand-over
  std::optional<WorkerHeap::Scope> heap_;
};

}  // namespace sluice
