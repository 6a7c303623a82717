// RingBuffer<T, Sequencer>: a Disruptor-class ring of preallocated slots.
//
// Design
//   The ring is `capacity` (a power of two) slots; sequence s lives in slot s & (capacity-1).
//   Each slot is one `stamp` word followed by the event, stored as 64-bit words:
//
//     slot:  +0  stamp  = ((sequence + 1) << 1) | writing      (0 = never written)
//            +8  event word 0 .. word k-1                        (sizeof(T) = 8k bytes)
//
//   A producer claims sequences from its Sequencer (single- or multi-producer), writes each
//   slot and publishes it by release-storing the slot's stamp. Availability is therefore a
//   property of the slot itself (Disruptor's MultiProducerSequencer keeps the same thing in
//   a separate "available buffer"): a consumer waiting for sequence s spins on the line that
//   the producer writes anyway, so a hand-off costs one cache-line transfer, not two (cursor
//   line + slot line). The single producer also release-stores its cursor, but only
//   observers of the head (lag, drain) read it, never the consumers' hot path.
//
//   Consumers do not contend with each other: each owns a Sequence (the last sequence it is
//   done with). A consumer registered with OverrunPolicy::block gates the producers: a slot is
//   reused only once every gating sequence has passed it (Disruptor gating). A consumer with
//   OverrunPolicy::catch_up never holds the producer back; the slot it wants may be
//   overwritten under it, so it reads like a seqlock reader:
//       s1 = stamp (acquire); copy the words (acquire each); s2 = stamp (relaxed)
//   and uses the copy only if s1 == s2 == "sequence s, complete". The producer writes
//   stamp = "s, writing" (relaxed), then the words (release each), then the final stamp
//   (release), so a copy that saw any newer word sees a changed stamp. Per-word
//   release/acquire rather than fences: on x86 both are plain movs, and ThreadSanitizer
//   understands them (it does not model fences).
//   A consumer that finds a newer sequence in its slot has been overrun and reads from its
//   CatchUpSource (the log) instead — see EventProcessor.
//
// Thread safety
//   Setup (add_consumer) happens before any producer or consumer runs. Then: producers call
//   claim/try_claim/write/publish (one producer thread for SingleProducerSequencer, any number
//   for MultiProducerSequencer); consumers call probe/read/validate; anyone may call head(),
//   min_consumer_sequence(). The event words are std::atomic<uint64_t> accessed relaxed, so an
//   overwritten-while-read slot is a detected race, not undefined behaviour (TSan agrees).
//
// Invariants
//   - For every slot, the sequence in its stamp only grows, by multiples of capacity.
//   - A gating consumer at sequence g never has a slot for a sequence > g overwritten:
//     the producer claims s only when s - capacity <= min(gating sequences).
//   - A slot's stamp says "s, complete" only after all of s's words are written.
//
// Hot path (claim, write, publish, probe, read): no allocation, no lock, no system call
// (notify() makes a futex syscall only when a consumer is parked), no exception.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <thread>
#include <type_traits>

#include "sluice/bus/idle_strategy.h"
#include "sluice/bus/sequence.h"

namespace sluice {

// What a consumer does when it falls a whole ring behind.
enum class OverrunPolicy : uint8_t {
  block,     // Disruptor gating: the producer waits for this consumer
  catch_up,  // the producer never waits; the consumer reads the log until it reaches the ring
};

// The consumers of a ring: every consumer's sequence (for lag, drain and the release of
// segment mappings) and the gating subset. Written during setup only.
class ConsumerRegistry {
 public:
  static constexpr size_t kMaxConsumers = 64;
  // Returns false when the registry is full (kMaxConsumers).
  [[nodiscard]] bool add(const Sequence* s, OverrunPolicy p) noexcept {
    if (n_all_ == kMaxConsumers) return false;
    all_[n_all_++] = s;
    if (p == OverrunPolicy::block) gating_[n_gating_++] = s;
    return true;
  }
  bool has_gating() const noexcept { return n_gating_ != 0; }
  size_t size() const noexcept { return n_all_; }
  // Minimum over the gating sequences (acquire each: pairs with the consumer's release in
  // Sequence::set(), so its reads of a slot happen before the producer rewrites that slot).
  int64_t min_gating() const noexcept { return min_of(gating_, n_gating_); }
  int64_t min_all() const noexcept { return min_of(all_, n_all_); }

 private:
  static int64_t min_of(const std::array<const Sequence*, kMaxConsumers>& a, size_t n) noexcept {
    int64_t m = std::numeric_limits<int64_t>::max();
    for (size_t i = 0; i < n; ++i) m = std::min(m, a[i]->get());
    return m;
  }
  std::array<const Sequence*, kMaxConsumers> all_{};
  std::array<const Sequence*, kMaxConsumers> gating_{};
  size_t n_all_ = 0;
  size_t n_gating_ = 0;
};

// SingleProducerSequencer: sequences claimed by one thread.
//   Design: the claim counter and the cached minimum of the gating sequences are plain
//   fields of the producer thread; the gating sequences are read only when the cached value
//   says the ring might be full (once per `capacity` claims when consumers keep up). The
//   cursor (highest published) is a Sequence, for observers (head, lag, drain).
//   Thread safety: one producer thread (a debug build asserts it); head() from anyone.
class SingleProducerSequencer {
 public:
  // Sequences are published in order: if s is published, so is every sequence before it.
  static constexpr bool kInOrderPublication = true;
  SingleProducerSequencer(int64_t capacity, int64_t start) noexcept
      : capacity_(capacity), claimed_(start - 1), cached_gating_(start - 1), cursor_(start - 1) {}

  // Claims n (1..capacity) sequences, returning the highest in *hi (the lowest is hi-n+1).
  // False: back-pressure (a gating consumer is too far behind); nothing claimed.
  [[nodiscard]] bool try_claim(int64_t n, const ConsumerRegistry& consumers, int64_t* hi) noexcept {
    check_owner();
    const int64_t want = claimed_ + n;
    const int64_t wrap = want - capacity_;
    if (wrap > cached_gating_) {
      cached_gating_ = consumers.min_gating();  // acquire loads inside
      if (wrap > cached_gating_) return false;
    }
    claimed_ = want;
    *hi = want;
    return true;
  }
  void published(int64_t /*lo*/, int64_t hi) noexcept { cursor_.set(hi); }
  // Highest published sequence (acquire: pairs with the release in published()).
  int64_t head() const noexcept { return cursor_.get(); }

 private:
  void check_owner() noexcept {
#ifndef NDEBUG
    // Debug-only single-producer guard. Relaxed: the guard publishes nothing; a second
    // producer thread is caught the first time it claims.
    const auto me = std::this_thread::get_id();
    auto expected = std::thread::id{};
    if (!owner_.compare_exchange_strong(expected, me, std::memory_order_relaxed))
      assert(expected == me && "SingleProducerSequencer: claimed from a second thread");
#endif
  }
  const int64_t capacity_;
  int64_t claimed_;        // producer thread only
  int64_t cached_gating_;  // producer thread only
  // Checked only without NDEBUG; always present, so that the layout does not depend on it.
  std::atomic<std::thread::id> owner_{};
  Sequence cursor_;
};

// MultiProducerSequencer: sequences claimed by any number of threads.
//   Design: a CAS on the shared claim counter, after checking the wrap point against a
//   shared cache of the minimum gating sequence (Disruptor's gatingSequenceCache). Without
//   gating consumers it is one fetch_add. Publication is per slot (the stamps), so producers
//   publish out of order and consumers still see each sequence exactly when it is complete.
//   Thread safety: any producer thread.
class MultiProducerSequencer {
 public:
  // Producers publish their claims independently, so s may be published before s - 1.
  static constexpr bool kInOrderPublication = false;
  MultiProducerSequencer(int64_t capacity, int64_t start) noexcept
      : capacity_(capacity), claim_(start - 1), gating_cache_(start - 1) {}

  [[nodiscard]] bool try_claim(int64_t n, const ConsumerRegistry& consumers, int64_t* hi) noexcept {
    if (!consumers.has_gating()) {
      *hi = claim_.fetch_add(n) + n;
      return true;
    }
    int64_t current;
    do {
      current = claim_.get();
      const int64_t want = current + n;
      const int64_t wrap = want - capacity_;
      // Acquire: pairs with the release below, so the consumer reads that another producer
      // observed (through the gating sequences) happen before our slot writes.
      int64_t cached = gating_cache_.load(std::memory_order_acquire);
      if (wrap > cached) {
        cached = consumers.min_gating();
        gating_cache_.store(cached, std::memory_order_release);
        if (wrap > cached) return false;
      }
    } while (!claim_.compare_and_set(current, current + n));
    *hi = current + n;
    return true;
  }
  void published(int64_t, int64_t) noexcept {}
  // Highest claimed sequence: an upper bound of what is published (equal once producers stop).
  int64_t head() const noexcept { return claim_.get(); }

 private:
  const int64_t capacity_;
  Sequence claim_;
  alignas(2 * kCacheLine) std::atomic<int64_t> gating_cache_;
};

// How to shard an event type by key (stream). Specialise for your event type.
template <class T, class = void>
struct ShardKey {
  static uint64_t of(const T& e) noexcept {
    static_assert(std::is_integral_v<T>, "specialise sluice::ShardKey<T> for sharded consumers");
    return static_cast<uint64_t>(e);
  }
};

template <class T, class SequencerT = SingleProducerSequencer>
class RingBuffer {
  static_assert(std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>);
  static_assert(sizeof(T) % 8 == 0, "ring events are copied as 64-bit words: pad T to 8 bytes");
  static constexpr size_t kWords = sizeof(T) / 8;
  using Words = std::array<uint64_t, kWords>;

 public:
  using value_type = T;
  using Sequencer = SequencerT;

  struct Slot {
    std::atomic<uint64_t> stamp{0};
    std::array<std::atomic<uint64_t>, kWords> words{};
  };
  static_assert(sizeof(Slot) == 8 + sizeof(T));
  static_assert(std::atomic<uint64_t>::is_always_lock_free);

  enum class SlotState : uint8_t { available, not_yet, overrun };

  // capacity: a power of two >= 2. start: the first sequence that will be published (for
  // the record ring: the log's next position, so sequence == log position).
  explicit RingBuffer(size_t capacity, int64_t start = 0)
      : capacity_(static_cast<int64_t>(capacity)),
        mask_(static_cast<int64_t>(capacity) - 1),
        start_(start),
        slots_(allocate_slots(capacity)),
        sequencer_(static_cast<int64_t>(capacity), start) {
    assert(capacity >= 2 && std::has_single_bit(capacity));
  }
  RingBuffer(const RingBuffer&) = delete;
  RingBuffer& operator=(const RingBuffer&) = delete;

  // Setup, before producers and consumers run. False when ConsumerRegistry is full.
  [[nodiscard]] bool add_consumer(const Sequence* s, OverrunPolicy p) noexcept {
    if (p == OverrunPolicy::catch_up) has_catch_up_ = true;
    return consumers_.add(s, p);
  }

  // ---- producer side ----
  [[nodiscard]] bool try_claim(int64_t n, int64_t* hi) noexcept {
    assert(n >= 1 && n <= capacity_);
    return sequencer_.try_claim(n, consumers_, hi);
  }
  // Claims n sequences, idling with `idle` while gating consumers hold the ring full.
  int64_t claim(int64_t n, IdleStrategy& idle) noexcept {
    int64_t hi;
    if (try_claim(n, &hi)) [[likely]] return hi;  // no store to `idle` when it did not idle
    while (!try_claim(n, &hi)) idle.idle();
    idle.reset();
    return hi;
  }
  // Writes the event of a claimed sequence (not yet visible).
  void write(int64_t seq, const T& event) noexcept {
    Slot& s = slot(seq);
    const Words w = std::bit_cast<Words>(event);
    if (has_catch_up_) {
      // Relaxed: marks the slot as being rewritten; the release word stores below are
      // ordered after it, so a catch-up reader that sees any new word also sees this mark
      // (seqlock writer side).
      s.stamp.store(stamp_of(seq, true), std::memory_order_relaxed);
      // Release (a plain mov on x86): orders the mark before each word; pairs with the
      // acquire word loads of a validating reader (consume_run<true>).
      for (size_t i = 0; i < kWords; ++i) s.words[i].store(w[i], std::memory_order_release);
    } else {
      // Relaxed: only gating readers, who never race with a rewrite; the words are
      // published by the release store of the stamp in publish().
      for (size_t i = 0; i < kWords; ++i) s.words[i].store(w[i], std::memory_order_relaxed);
    }
  }
  // Publishes claimed and written sequences [lo, hi].
  void publish(int64_t lo, int64_t hi) noexcept {
    Slot* const base = slots_.get();
    const int64_t mask = mask_;
    for (int64_t q = lo; q <= hi; ++q) {
      // Release: makes the words written in write() visible to a consumer that acquires
      // this stamp (published_run, probe).
      base[q & mask].stamp.store(stamp_of(q, false), std::memory_order_release);
    }
    sequencer_.published(lo, hi);
    signal_.notify();
  }
  // Hints the line(s) of a published slot out to the shared cache (cache_demote): for a
  // producer whose consumer on another core is waiting for it (one event in flight, a
  // request and its reply). Not in a stream: where slots are smaller than a line, the
  // producer's next slot shares the demoted line and its write has to fetch it back.
  void demote(int64_t seq) const noexcept { cache_demote_range(&slot(seq), sizeof(Slot)); }
  // claim + write + publish of one event; false on back-pressure.
  [[nodiscard]] bool try_publish(const T& event) noexcept {
    int64_t q;
    if (!try_claim(1, &q)) return false;
    write(q, event);
    publish(q, q);
    return true;
  }
  int64_t publish(const T& event, IdleStrategy& idle) noexcept {
    const int64_t q = claim(1, idle);
    write(q, event);
    publish(q, q);
    return q;
  }
  // A batch in one claim (events.size() <= capacity); see publish_n.
  int64_t publish_batch(std::span<const T> events, IdleStrategy& idle) noexcept {
    return publish_n(static_cast<int64_t>(events.size()), idle,
                     [&events](int64_t i) -> const T& { return events[static_cast<size_t>(i)]; });
  }
  // n events (1..capacity) in one claim: event i is make(i), written straight into its slot
  // (no staging copy). Each slot is published as soon as it is written — words, then its
  // stamp — so the producer writes each cache line once and is done with it: a consumer
  // spinning on the first slot's stamp takes that line away only after the producer has
  // finished with it. (Writing all the words first and then all the stamps, as
  // claim/write/publish(lo, hi) does, can let a spinning consumer take the first line
  // between the two passes, and the producer must fetch it back.) Publication stays in
  // order, so a consumer sees a prefix of the batch at any moment, and the whole batch once
  // the last stamp is stored.
  template <class Make>
  int64_t publish_n(int64_t n, IdleStrategy& idle, Make&& make) noexcept {
    const int64_t hi = claim(n, idle);
    const int64_t lo = hi - n + 1;
    Slot* const base = slots_.get();
    const int64_t mask = mask_;
    for (int64_t q = lo; q <= hi; ++q) {
      write(q, make(q - lo));
      // Release: makes the words just written visible to a consumer that acquires this
      // stamp (published_run, probe); same pairing as in publish().
      base[q & mask].stamp.store(stamp_of(q, false), std::memory_order_release);
    }
    sequencer_.published(lo, hi);
    signal_.notify();
    return hi;
  }

  // ---- consumer side ----
  // The highest h in [from - 1, limit] such that every sequence in [from, h] is published.
  // One acquire load and compare per slot, in ring order, stopping at the first slot not
  // published: it never reads a slot ahead of the publication boundary except that first
  // one, on the line the consumer reads next anyway. (It used to probe `limit` and then
  // binary-search: reads of lines the producer had not written yet, each of which costs the
  // producer an extra ownership transfer when it comes to write them. Measured on a loaded
  // 2-vCPU VM, same sittings: 10 events per claim at 0.45-0.91x the one-per-claim rate
  // before, 0.62-1.98x after this and publish_n; bench/results/hotpath-2026-11-29.md.)
  // With out-of-order publication (multi producer) the same scan finds the in-order prefix.
  // Catch-up readers may get a run that includes slots rewritten since; consume_run<true>
  // validates every copy, so they never use one.
  int64_t published_run(int64_t from, int64_t limit) const noexcept {
    const Slot* const base = slots_.get();  // locals: not reloaded after each acquire
    const int64_t mask = mask_;
    // Acquire: pairs with the release in publish(); the words of q, and (in-order
    // publication) of every sequence published before q, are visible.
    auto published = [base, mask](int64_t q) {
      return base[q & mask].stamp.load(std::memory_order_acquire) == stamp_of(q, false);
    };
    if (limit < from || !published(from)) return from - 1;
    int64_t h = from;
    while (h < limit && published(h + 1)) ++h;
    return h;
  }
  // Copies the events of [lo, hi] (found by published_run) and calls f(event, seq) for each.
  // kValidate (catch-up readers): stops before the first copy a rewrite overlapped.
  // Returns the first sequence not handed to f (hi + 1 when all were).
  // Copies go through a small local buffer (512 bytes) in chunks: the loop that calls f has
  // no atomic access in it, so the compiler can keep the handler's state in registers
  // (a summing consumer, single-threaded on this machine: 2.5 -> 0.85 ns per event).
  template <bool kValidate, class F>
  int64_t consume_run(int64_t lo, int64_t hi, F&& f) const noexcept {
    constexpr int64_t kChunk = sizeof(T) >= 512 ? 1 : static_cast<int64_t>(512 / sizeof(T));
    const Slot* const base = slots_.get();
    const int64_t mask = mask_;
    Words buf[kChunk];  // trivially default-constructible: left uninitialised
    for (int64_t q = lo; q <= hi;) {
      int64_t n = std::min(kChunk, hi - q + 1);
      bool torn = false;
      for (int64_t k = 0; k < n; ++k) {
        const Slot& s = base[(q + k) & mask];
        if constexpr (kValidate) {
          // Acquire: pairs with the release word stores of a rewrite; orders these loads
          // before the stamp re-load below (seqlock reader side).
          for (size_t i = 0; i < kWords; ++i) buf[k][i] = s.words[i].load(std::memory_order_acquire);
          // Relaxed: ordered by the acquire loads above; a newer word means a changed stamp.
          if (s.stamp.load(std::memory_order_relaxed) != stamp_of(q + k, false)) {
            n = k;
            torn = true;
            break;
          }
        } else {
          // Relaxed: ordered after the acquire of the stamp in published_run(); a gating
          // reader's slot is not rewritten until it has passed it.
          for (size_t i = 0; i < kWords; ++i) buf[k][i] = s.words[i].load(std::memory_order_relaxed);
        }
      }
      for (int64_t k = 0; k < n; ++k) f(std::bit_cast<T>(buf[k]), q + k);
      q += n;
      if (torn) return q;
    }
    return hi + 1;
  }
  // Single-slot helpers (tests, tools): is `seq` published and not yet rewritten?
  bool is_published(int64_t seq) const noexcept {
    // Acquire: pairs with the release in publish(); the words of `seq` are visible.
    return slot(seq).stamp.load(std::memory_order_acquire) == stamp_of(seq, false);
  }
  // Copies the event of a sequence found published.
  void read(int64_t seq, T* out) const noexcept {
    const Slot& s = slot(seq);
    Words w;
    // Acquire: orders these loads before still_published()'s stamp re-load, and pairs with
    // the release word stores of a rewrite (seqlock reader side).
    for (size_t i = 0; i < kWords; ++i) w[i] = s.words[i].load(std::memory_order_acquire);
    *out = std::bit_cast<T>(w);
  }
  // After read(): true if no rewrite overlapped the copy.
  bool still_published(int64_t seq) const noexcept {
    // Relaxed: ordered after the acquire word loads of read(); a newer word means a
    // changed stamp.
    return slot(seq).stamp.load(std::memory_order_relaxed) == stamp_of(seq, false);
  }
  // Is `seq` readable? *stamp receives the stamp to validate a catch-up copy against.
  SlotState probe(int64_t seq, uint64_t* stamp) const noexcept {
    // Acquire: pairs with the release in publish(); the words of `seq` are visible.
    const uint64_t st = slot(seq).stamp.load(std::memory_order_acquire);
    *stamp = st;
    const int64_t in_slot = stamp_sequence(st);
    if (in_slot == seq) return (st & 1) ? SlotState::not_yet : SlotState::available;
    return in_slot < seq ? SlotState::not_yet : SlotState::overrun;
  }
  // Highest published (single producer) or claimed (multi producer) sequence.
  int64_t head() const noexcept { return sequencer_.head(); }
  int64_t start() const noexcept { return start_; }
  int64_t capacity() const noexcept { return capacity_; }
  // The slowest consumer's sequence (max int64 when there is none).
  int64_t min_consumer_sequence() const noexcept { return consumers_.min_all(); }
  size_t consumer_count() const noexcept { return consumers_.size(); }
  WakeSignal& signal() noexcept { return signal_; }

  static constexpr uint64_t stamp_of(int64_t seq, bool writing) noexcept {
    return (static_cast<uint64_t>(seq + 1) << 1) | (writing ? 1u : 0u);
  }
  static constexpr int64_t stamp_sequence(uint64_t stamp) noexcept {
    return static_cast<int64_t>(stamp >> 1) - 1;
  }

 private:
  // Slots are trivially destructible (atomics of integers), so freeing the storage is enough.
  struct AlignedDelete {
    void operator()(Slot* p) const noexcept { ::operator delete(p, std::align_val_t{kCacheLine}); }
  };
  static_assert(std::is_trivially_destructible_v<Slot>);
  static Slot* allocate_slots(size_t n) {
    void* raw = ::operator new(n * sizeof(Slot), std::align_val_t{kCacheLine});
    Slot* p = static_cast<Slot*>(raw);
    for (size_t i = 0; i < n; ++i) new (p + i) Slot();
    return p;
  }
  Slot& slot(int64_t seq) noexcept { return slots_[static_cast<size_t>(seq & mask_)]; }
  const Slot& slot(int64_t seq) const noexcept { return slots_[static_cast<size_t>(seq & mask_)]; }

  // Read-mostly configuration, on its own lines.
  alignas(kCacheLine) const int64_t capacity_;
  const int64_t mask_;
  const int64_t start_;
  std::unique_ptr<Slot[], AlignedDelete> slots_;
  bool has_catch_up_ = false;  // set during setup: a catch_up consumer validates its copies
  ConsumerRegistry consumers_;
  Sequencer sequencer_;
  WakeSignal signal_;
};

}  // namespace sluice
