// Sequence: a cache-line padded counter that one thread advances and others observe.
//
// Design
//   Every party on a ring publishes how far it has got as a Sequence: the producer's cursor
//   (the highest published sequence) and each consumer's sequence (the highest sequence it
//   has finished with). A Sequence sits alone on its own 64-byte line (and the line after it
//   is left free too, against the adjacent-line prefetcher), so the owner's stores never
//   invalidate a line that another thread reads for something else.
//
// Thread safety
//   One writer (the owner) calls set(); any thread may call get(). MultiProducerSequencer's
//   claim counter is the one exception: several producers CAS it (compare_and_set()).
//
// Invariants
//   - A sequence only grows (its owner never stores a smaller value).
//   - kInitialSequence (-1) means "nothing yet": sequences start at 0.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace sluice {

inline constexpr int64_t kInitialSequence = -1;
inline constexpr std::size_t kCacheLine = 64;

// Hint: move the cache line holding `p` from this core's private caches to the shared one
// (CLDEMOTE), so that the core that reads it next finds it in L3 instead of snooping this
// core's L2. For a producer done with a line that a consumer on another core reads at once.
// A NOP on CPUs without CLDEMOTE (its encoding is in the reserved-NOP space) and off x86.
inline void cache_demote(const void* p) noexcept {
#if defined(__x86_64__)
  asm volatile("cldemote %0" : : "m"(*static_cast<const char*>(p)));
#else
  (void)p;
#endif
}
// cache_demote() of every line that holds a byte of [p, p + n).
inline void cache_demote_range(const void* p, std::size_t n) noexcept {
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  for (std::uintptr_t line = at & ~std::uintptr_t{kCacheLine - 1}; line < at + n; line += kCacheLine)
    cache_demote(reinterpret_cast<const void*>(line));
}

class alignas(2 * kCacheLine) Sequence {
 public:
  explicit Sequence(int64_t initial = kInitialSequence) noexcept : value_(initial) {}
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;

  // Acquire: pairs with the release in set(); everything the owner wrote before publishing
  // this value (slot contents, side effects of handling the events) is visible after it.
  int64_t get() const noexcept { return value_.load(std::memory_order_acquire); }
  // Relaxed: only for the owning thread reading back its own value (no other writer).
  int64_t get_own() const noexcept { return value_.load(std::memory_order_relaxed); }
  // Release: publishes everything this thread did for sequences <= v (pairs with get()).
  void set(int64_t v) noexcept { value_.store(v, std::memory_order_release); }
  // For the multi-producer claim counter: acq_rel so that a producer that wins the CAS sees
  // the gating sequences the previous winner observed (and orders its slot writes after it).
  bool compare_and_set(int64_t expected, int64_t desired) noexcept {
    return value_.compare_exchange_weak(expected, desired, std::memory_order_acq_rel,
                                        std::memory_order_relaxed);
  }
  // acq_rel for the same reason as compare_and_set().
  int64_t fetch_add(int64_t n) noexcept { return value_.fetch_add(n, std::memory_order_acq_rel); }

 private:
  std::atomic<int64_t> value_;
  // Padding is implied by alignas(128): sizeof(Sequence) == 128, the value alone on its line
  // and on its prefetch pair.
};
static_assert(sizeof(Sequence) == 2 * kCacheLine);
static_assert(std::atomic<int64_t>::is_always_lock_free);

}  // namespace sluice
