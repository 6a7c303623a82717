// IdleStrategy: what a thread does when it found no work (Agrona's IdleStrategy), and
// WakeSignal: how a producer wakes consumers that parked.
//
// Design
//   Three kinds, chosen per consumer (ProcessorOptions / RunnerOptions):
//     busy_spin     — a `pause` per idle call. Lowest latency; burns its core. Only for a
//                     thread pinned to a core of its own.
//     yield         — sched_yield() per idle call. Gives the core away when another thread
//                     is runnable, still wakes within a scheduler tick.
//     backoff_park  — THE DEFAULT: `spins` pauses, then `yields` sched_yield()s, then parks
//                     for min_park, doubling up to max_park. Safe when threads outnumber cores
//                     (this is what a 2-core machine with 3 projections needs): an idle thread
//                     costs almost nothing, and a producer's notify() ends a park early.
//   Parking is a futex wait on the ring's WakeSignal with a timeout (a plain timed sleep when
//   the agent has no signal). The timeout is what makes the protocol safe without a full
//   fence on the producer's hot path: see WakeSignal.
//
// Thread safety
//   An IdleStrategy belongs to one thread (it keeps the backoff state). A WakeSignal is
//   shared: producers call notify(), parked consumers call park().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace sluice {

// WakeSignal
//   Design: `sleepers_` counts parked threads; `epoch_` is the futex word. A consumer parks
//   with: sleepers_++ (seq_cst), re-check for work, futex_wait(epoch_, e, timeout). A producer
//   after publishing: if sleepers_ != 0 { epoch_++; futex_wake(all) }.
//   The producer's check is a relaxed load with no StoreLoad fence before it (a fence on
//   every publish would cost more than the whole publish), so a consumer that registers in
//   the few nanoseconds between the producer's publish and its check can miss the wake: it
//   then sleeps until its park timeout (max_park, 1 ms by default) — late, never lost.
//   Invariant: sleepers_ is the number of threads between prepare_park() and the end of
//   park()/cancel_park().
class WakeSignal {
 public:
  // Producer side, after publishing. When nobody parks this is one load of a line that
  // nobody writes: nearly free.
  void notify() noexcept {
    // Relaxed: a hint (see the class comment: a miss is bounded by the park timeout).
    if (sleepers_.load(std::memory_order_relaxed) != 0) wake_all();
  }
  // Consumer side: register as a sleeper and read the epoch to wait on; then re-check for
  // work and either cancel_park() or park(epoch, timeout).
  uint32_t prepare_park() noexcept {
    // seq_cst RMW: orders the registration before the caller's re-check of the ring (a full
    // fence on x86), so a publish the re-check misses sees sleepers_ != 0 unless it raced.
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    // Acquire: pairs with the release increment in wake_all().
    return epoch_.load(std::memory_order_acquire);
  }
  void cancel_park() noexcept {
    // Relaxed: only a count; nothing is published through it.
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }
  // Waits until the epoch moves past `epoch` or `timeout` passes, then unregisters.
  void park(uint32_t epoch, std::chrono::nanoseconds timeout) noexcept;
  uint32_t sleepers_estimate() const noexcept { return sleepers_.load(std::memory_order_relaxed); }

 private:
  void wake_all() noexcept;
  alignas(64) std::atomic<uint32_t> epoch_{0};
  std::atomic<uint32_t> sleepers_{0};
};

enum class IdleKind : uint8_t { busy_spin, yield, backoff_park };
std::string_view to_string(IdleKind k) noexcept;
bool parse_idle_kind(std::string_view s, IdleKind* out) noexcept;

struct IdleOptions {
  IdleKind kind = IdleKind::backoff_park;       // default: safe with more threads than cores
  uint32_t spins = 100;                         // backoff_park: pause-spins before yielding
  uint32_t yields = 10;                         // backoff_park: sched_yield()s before parking
  std::chrono::nanoseconds min_park{1'000};     // backoff_park: first park (1 µs)
  std::chrono::nanoseconds max_park{1'000'000}; // backoff_park: longest park (1 ms); bounds a missed wake
};

class IdleStrategy {
 public:
  // `signal`: where to park (nullptr: timed sleep). `has_work(ctx)`: re-checked after
  // registering as a sleeper, so a publish between the last poll and the park is not slept
  // through (nullptr: no re-check; the park timeout bounds the delay).
  explicit IdleStrategy(const IdleOptions& options = {}, WakeSignal* signal = nullptr,
                        bool (*has_work)(const void*) = nullptr, const void* ctx = nullptr) noexcept
      : o_(options), signal_(signal), has_work_(has_work), ctx_(ctx), park_(options.min_park) {}

  // Agrona style: work_count > 0 resets the backoff; 0 idles one step.
  void idle(int work_count) noexcept {
    if (work_count > 0) {
      reset();
      return;
    }
    idle();
  }
  void idle() noexcept;
  void reset() noexcept {
    step_ = 0;
    park_ = o_.min_park;
  }
  const IdleOptions& options() const noexcept { return o_; }
  uint64_t parks() const noexcept { return parks_; }

 private:
  void park() noexcept;
  IdleOptions o_;
  WakeSignal* signal_;
  bool (*has_work_)(const void*);
  const void* ctx_;
  uint64_t step_ = 0;
  std::chrono::nanoseconds park_;
  uint64_t parks_ = 0;
};

// One `pause` (x86) / `yield` (arm): tells the core this is a spin loop.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace sluice
