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
//       s1 = stamp (acquire); copy the words (relaxed); fence(acquire); s2 = stamp (relaxed)
//   and uses the copy only if s1 == s2 == "sequence s, complete". The producer brackets its
//   writes with stamp = "s, writing" (relaxed) + fence(release) before the words and the
//   final stamp (release) after them, so a copy that saw any newer word sees a changed stamp.
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
#ifndef NDEBUG
  std::atomic<std::thread::id> owner_{};
#endif
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
    while (!try_claim(n, &hi)) idle.idle();
    idle.reset();
    return hi;
  }
  // Writes the event of a claimed sequence (not yet visible).
  void write(int64_t seq, const T& event) noexcept {
    Slot& s = slot(seq);
    // Relaxed + the release fence below: marks the slot as being rewritten before any word
    // changes, for catch-up readers that validate their copy (seqlock writer side).
    s.stamp.store(stamp_of(seq, true), std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    const Words w = std::bit_cast<Words>(event);
    // Relaxed: published by the release store of the stamp in publish().
    for (size_t i = 0; i < kWords; ++i) s.words[i].store(w[i], std::memory_order_relaxed);
  }
  // Publishes claimed and written sequences [lo, hi].
  void publish(int64_t lo, int64_t hi) noexcept {
    for (int64_t q = lo; q <= hi; ++q) {
      // Release: makes the words written in write() visible to a consumer that acquires
      // this stamp in probe().
      slot(q).stamp.store(stamp_of(q, false), std::memory_order_release);
    }
    sequencer_.published(lo, hi);
    signal_.notify();
  }
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
  // A batch in one claim and one publish (events.size() <= capacity).
  int64_t publish_batch(std::span<const T> events, IdleStrategy& idle) noexcept {
    const auto n = static_cast<int64_t>(events.size());
    const int64_t hi = claim(n, idle);
    const int64_t lo = hi - n + 1;
    for (int64_t i = 0; i < n; ++i) write(lo + i, events[static_cast<size_t>(i)]);
    publish(lo, hi);
    return hi;
  }

  // ---- consumer side ----
  // Is `seq` readable? *stamp receives the stamp to validate a catch-up copy against.
  SlotState probe(int64_t seq, uint64_t* stamp) const noexcept {
    // Acquire: pairs with the release in publish(); the words of `seq` are visible.
    const uint64_t st = slot(seq).stamp.load(std::memory_order_acquire);
    *stamp = st;
    const int64_t in_slot = stamp_sequence(st);
    if (in_slot == seq) return (st & 1) ? SlotState::not_yet : SlotState::available;
    return in_slot < seq ? SlotState::not_yet : SlotState::overrun;
  }
  // Copies the event of a probed sequence.
  void read(int64_t seq, T* out) const noexcept {
    const Slot& s = slot(seq);
    Words w;
    // Relaxed: ordered after the acquire in probe(); for catch-up readers validate() checks
    // that no rewrite overlapped.
    for (size_t i = 0; i < kWords; ++i) w[i] = s.words[i].load(std::memory_order_relaxed);
    *out = std::bit_cast<T>(w);
  }
  // After read(): true if the copy is exactly `seq`'s event (no rewrite overlapped it).
  bool validate(int64_t seq, uint64_t stamp) const noexcept {
    // Acquire fence: the word loads above are ordered before the stamp re-load (seqlock
    // reader side; pairs with the release fence in write()).
    std::atomic_thread_fence(std::memory_order_acquire);
    // Relaxed: ordered by the fence above.
    return slot(seq).stamp.load(std::memory_order_relaxed) == stamp;
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
  ConsumerRegistry consumers_;
  Sequencer sequencer_;
  WakeSignal signal_;
};

}  // namespace sluice
