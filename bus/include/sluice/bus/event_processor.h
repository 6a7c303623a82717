// EventProcessor<T, Handler>: one consumer of a RingBuffer, as an Agent.
//
// Design
//   Each poll (do_work) handles up to max_batch events: from its own sequence + 1 up to the
//   lowest of (a) what the ring has published (the slot stamps) and (b) the sequences of the
//   consumers it depends on (its SequenceBarrier: pipeline "B after A", diamond "C after A
//   and B"). The handler gets on_event(event, sequence, end_of_batch); end_of_batch is true
//   for the last event this poll hands it, so a read model commits once per batch. Only then
//   does the processor release-store its sequence, which is what the producer (gating) and
//   dependent consumers observe.
//
//   Sharding: with shard_count N > 1, this processor handles only events whose
//   mix(ShardKey<T>::of(event)) % N == shard_index, and skips (but passes) the rest; N
//   processors with indices 0..N-1 on the same ring make one logical consumer spread over N
//   workers. All events of one key go to one worker, in ring order, so per-key order is kept.
//
//   Overrun (OverrunPolicy::catch_up, the default for projections): the producer never
//   waits for this consumer. When the slot of the next sequence already holds a newer one
//   (or the copy fails validation because it was rewritten while read), the processor
//   switches to catching up: it reads sequences from its CatchUpSource (the log) from
//   exactly where it was, and before each batch looks at the ring again; as soon as the slot
//   of its next sequence is not newer than it (published, or not yet published), it rejoins
//   the ring. Its sequence is the single cursor in both modes, so no event is missed and
//   none is seen twice. With OverrunPolicy::block the processor gates the producer and can
//   never be overrun.
//
// Thread safety
//   Constructed (and registered with the ring) during setup; then do_work(), has_work()
//   and on_* run on the one thread polling it. sequence(), lag_estimate(), stats(),
//   drained() may be read from any thread.
//
// Invariants
//   - sequence() only grows; every sequence <= sequence() has been handled (or skipped as
//     another shard's) exactly once, in order.
//   - With dependencies, sequence() <= min(dependency sequences).
#pragma once

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "sluice/bus/agent.h"
#include "sluice/bus/ring_buffer.h"
#include "sluice/bus/sequence.h"
#include "sluice/status.h"

namespace sluice {

// Where a catch_up consumer reads events that the ring no longer holds (the log).
template <class T>
class CatchUpSource {
 public:
  enum class ReadResult : uint8_t { ok, not_yet, error };
  virtual ~CatchUpSource() = default;
  // The event at `sequence`. not_yet: not committed yet; error: see status().
  virtual ReadResult read(int64_t sequence, T* out) noexcept = 0;
  virtual Status status() const = 0;
};

struct ProcessorOptions {
  std::string name = "consumer";
  OverrunPolicy overrun = OverrunPolicy::block;
  uint32_t max_batch = 256;           // events per poll at most
  uint32_t shard_index = 0;           // sharding: this worker's index ...
  uint32_t shard_count = 1;           // ... of this many (1 = not sharded)
  std::vector<const Sequence*> depends_on;  // barrier: handle s only after these passed s
  // Start after this sequence (default: the ring's start - 1). Earlier than the ring's start
  // (a checkpoint) means catching up from the source first; needs OverrunPolicy::catch_up.
  int64_t start_after = std::numeric_limits<int64_t>::min();
};

struct ProcessorStats {
  uint64_t events = 0;          // handled (this shard's)
  uint64_t overruns = 0;        // times the ring lapped it
  uint64_t caught_up = 0;       // events read from the catch-up source
  uint64_t rejoins = 0;         // times it went back to the ring
};

// 64-bit mix (splitmix64 finaliser) so that sequential keys spread over shards.
constexpr uint64_t mix_key(uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

template <class T, class Handler, class SequencerT = SingleProducerSequencer>
class EventProcessor final : public Agent {
 public:
  using Ring = RingBuffer<T, SequencerT>;

  // Registers with the ring (setup time). Check status() for a setup error.
  EventProcessor(Ring& ring, Handler& handler, ProcessorOptions options,
                 CatchUpSource<T>* source = nullptr)
      : ring_(ring), handler_(handler), o_(std::move(options)), source_(source),
        sequence_(o_.start_after == std::numeric_limits<int64_t>::min() ? ring.start() - 1
                                                                        : o_.start_after) {
    if (o_.max_batch == 0) o_.max_batch = 1;
    if (o_.shard_count == 0 || o_.shard_index >= o_.shard_count)
      setup_ = Status(StatusCode::invalid_argument, "consumer " + o_.name + ": shard index out of range");
    if (o_.overrun == OverrunPolicy::catch_up && source_ == nullptr)
      setup_ = Status(StatusCode::invalid_argument, "consumer " + o_.name + ": catch_up needs a catch-up source");
    if (sequence_.get_own() < ring.start() - 1) {
      if (o_.overrun != OverrunPolicy::catch_up)
        setup_ = Status(StatusCode::invalid_argument,
                        "consumer " + o_.name + ": starting before the ring's start needs catch_up");
      catching_up_ = true;
    }
    if (!ring.add_consumer(&sequence_, o_.overrun))
      setup_ = Status(StatusCode::invalid_argument, "consumer " + o_.name + ": too many consumers on one ring");
  }

  const Status& status() const noexcept { return setup_; }
  const Sequence& sequence() const noexcept { return sequence_; }
  // Events published but not yet handled by this consumer (racy: an estimate).
  int64_t lag_estimate() const noexcept { return std::max<int64_t>(0, ring_.head() - sequence_.get()); }
  bool catching_up() const noexcept { return catching_up_flag_.load(std::memory_order_relaxed); }
  ProcessorStats stats() const noexcept {
    // Relaxed: monotonic counters for display; nothing is published through them.
    return {events_.load(std::memory_order_relaxed), overruns_.load(std::memory_order_relaxed),
            caught_up_.load(std::memory_order_relaxed), rejoins_.load(std::memory_order_relaxed)};
  }
  // The source's error if catching up failed (the consumer then stands still).
  Status source_status() const { return source_ ? source_->status() : Status::OK(); }

  const char* role_name() const noexcept override { return o_.name.c_str(); }
  WakeSignal* wake_signal() noexcept override { return &ring_.signal(); }
  bool drained() const noexcept override {
    if (!setup_.ok()) return true;
    return sequence_.get() >= ring_.head();
  }
  bool has_work() const noexcept override {
    const int64_t next = sequence_.get_own() + 1;
    if (barrier_limit(next) < next) return false;
    if (catching_up_) return true;
    uint64_t stamp;
    return ring_.probe(next, &stamp) != Ring::SlotState::not_yet;
  }

  int do_work() noexcept override {
    if (!setup_.ok()) return 0;
    const int64_t next = sequence_.get_own() + 1;
    const int64_t limit = barrier_limit(next);
    if (limit < next) return 0;
    if (catching_up_) {
      uint64_t stamp;
      // Rejoin as soon as the ring holds `next` or will: its slot is not newer than it.
      if (next >= ring_.start() && ring_.probe(next, &stamp) != Ring::SlotState::overrun) {
        set_catching_up(false);
        bump(rejoins_, 1);
      } else {
        return catch_up(next, limit);
      }
    }
    return from_ring(next, limit);
  }

 private:
  // Highest sequence this consumer may handle: next + max_batch - 1, capped by the
  // sequences of the consumers it depends on.
  int64_t barrier_limit(int64_t next) const noexcept {
    int64_t limit = next + static_cast<int64_t>(o_.max_batch) - 1;
    // Acquire loads (Sequence::get): pair with the dependency's release in set(), so its
    // effects on sequences <= its value happen before we handle them.
    for (const Sequence* d : o_.depends_on) limit = std::min(limit, d->get());
    return limit;
  }

  bool mine(const T& e) const noexcept {
    if (o_.shard_count == 1) return true;
    return mix_key(ShardKey<T>::of(e)) % o_.shard_count == o_.shard_index;
  }

  // Hands events to the handler one behind, so that the last one of the poll can carry
  // end_of_batch = true (also when the poll ends on another shard's event).
  struct Batch {
    T buf[2];
    int cur = 0;
    bool pending = false;
    int64_t pending_seq = 0;
    uint64_t handled = 0;
  };
  void offer(Batch& b, int64_t seq) noexcept {
    if (!mine(b.buf[b.cur])) return;
    if (b.pending) {
      handler_.on_event(b.buf[b.cur ^ 1], b.pending_seq, false);
      ++b.handled;
    }
    b.pending = true;
    b.pending_seq = seq;
    b.cur ^= 1;
  }
  void finish(Batch& b, int64_t last) noexcept {
    if (b.pending) {
      handler_.on_event(b.buf[b.cur ^ 1], b.pending_seq, true);
      ++b.handled;
    }
    finish_run(last, b.handled);
  }
  void finish_run(int64_t last, uint64_t handled) noexcept {
    if (last < sequence_.get_own() + 1) return;  // nothing passed
    // Release (Sequence::set): publishes the handling of every sequence <= last to the
    // producer (gating) and to dependent consumers.
    sequence_.set(last);
    bump(events_, handled);
  }
  // Single-writer counters: a relaxed load and store, no read-modify-write (a locked
  // instruction per poll would cost more than the poll on the latency path).
  static void bump(std::atomic<uint64_t>& c, uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  // Two passes over [next, limit]: find the run of published slots by their stamps (one
  // load and compare each), then copy and hand over each event, knowing which is last.
  int from_ring(int64_t next, int64_t limit) noexcept {
    const int64_t hi = ring_.published_run(next, limit);
    bool overrun = false;
    if (hi < limit && o_.overrun == OverrunPolicy::catch_up) {
      uint64_t stamp;
      overrun = ring_.probe(hi + 1, &stamp) == Ring::SlotState::overrun;
    }
    int64_t end = next;
    if (hi >= next) {
      if (o_.shard_count == 1) {
        auto deliver = [this, hi](const T& e, int64_t q) { handler_.on_event(e, q, q == hi); };
        end = o_.overrun == OverrunPolicy::catch_up ? ring_.template consume_run<true>(next, hi, deliver)
                                                    : ring_.template consume_run<false>(next, hi, deliver);
        finish_run(end - 1, static_cast<uint64_t>(end - next));
      } else {
        Batch b;
        auto collect = [this, &b](const T& e, int64_t q) {
          b.buf[b.cur] = e;
          offer(b, q);
        };
        end = o_.overrun == OverrunPolicy::catch_up ? ring_.template consume_run<true>(next, hi, collect)
                                                    : ring_.template consume_run<false>(next, hi, collect);
        finish(b, end - 1);
      }
      if (end <= hi) overrun = true;  // a copy was rewritten under us
    }
    if (overrun) {
      // A gating (block) consumer is never lapped: that would be a bug in the sequencer.
      assert(o_.overrun == OverrunPolicy::catch_up);
      bump(overruns_, 1);
      set_catching_up(true);
      return static_cast<int>(end - next) + 1;  // not idle: go on from the log at once
    }
    return static_cast<int>(end - next);
  }

  int catch_up(int64_t next, int64_t limit) noexcept {
    Batch b;
    int64_t seq = next;
    for (; seq <= limit; ++seq) {
      if (source_->read(seq, &b.buf[b.cur]) != CatchUpSource<T>::ReadResult::ok) break;
      offer(b, seq);
    }
    if (seq > next) {
      finish(b, seq - 1);
      bump(caught_up_, static_cast<uint64_t>(seq - next));
    }
    return static_cast<int>(seq - next);
  }

  void set_catching_up(bool v) noexcept {
    catching_up_ = v;
    // Relaxed: a display flag; the poller uses catching_up_.
    catching_up_flag_.store(v, std::memory_order_relaxed);
  }

  Ring& ring_;
  Handler& handler_;
  ProcessorOptions o_;
  CatchUpSource<T>* source_;
  Status setup_;
  bool catching_up_ = false;  // poller thread only
  // The consumer's position: written by the poller (release), read by producer, dependents
  // and observers (acquire). Alone on its lines (Sequence is 128-byte aligned).
  Sequence sequence_;
  alignas(kCacheLine) std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> overruns_{0};
  std::atomic<uint64_t> caught_up_{0};
  std::atomic<uint64_t> rejoins_{0};
  std::atomic<bool> catching_up_flag_{false};
};

}  // namespace sluice
