// RealtimeClock: CLOCK_REALTIME in nanoseconds for the append path, read from the TSC.
//
// Why: every append stamps its records. On this VM clock_gettime(CLOCK_REALTIME) through
// the vDSO costs ~24 ns and rdtsc ~10 ns (measured 2026-11-27 with a throwaway loop); at
// ~40 ns per 64-byte append the difference is a third of the budget. Where the TSC is not
// invariant (no constant_tsc and nonstop_tsc), now() falls back to clock_gettime.
//
// Design
//   now() = base_ns + (rdtsc() - base_tsc) * mult / 2^32. When the anchor (base_tsc,
//   base_ns) is older than ~100 ms of ticks, or the TSC reads behind it (the thread moved to
//   a CPU whose TSC lags), now() re-anchors inline on a fresh clock_gettime sample and
//   recomputes mult from the first anchor, taken at construction; the error so stays within
//   a few microseconds of CLOCK_REALTIME and never accumulates. One re-anchor costs ~50 ns
//   (two rdtsc, one vDSO clock_gettime, one division), once per 100 ms of use. The writer
//   clamps timestamps so that they never go backwards.
//
// Thread safety
//   One thread at a time calls now() (the log writer's owning thread): it keeps the anchor
//   in plain members, so the hot path has no atomics. An earlier version was recalibrated by
//   the maintenance thread through a seqlock: four acquire loads and a retry loop per append.
#pragma once

#include <time.h>

#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace sluice::log_internal {

class RealtimeClock {
 public:
  // `injected` (tests: LogOptions::clock_ns), when set, replaces both sources.
  explicit RealtimeClock(int64_t (*injected)() = nullptr);
  int64_t now() noexcept {
    // One test for the three ways off the fast path: the anchor is old, the TSC reads behind
    // it (d wraps to huge), or there is no TSC to use (reanchor_ticks_ stays 0).
    const uint64_t d = ticks() - base_tsc_;
    if (d >= reanchor_ticks_) [[unlikely]] return slow_now();
    // d < reanchor_ticks_, so d * mult_ is below ~100 ms in 32.32 fixed point (~2^58.6):
    // a 64-bit multiply is exact. (reanchor_ticks_ comes from the first rate; a re-anchor
    // refines mult_ by far less than the 40x it would take to overflow.)
    return base_ns_ + static_cast<int64_t>((d * mult_) >> 32);
  }
  bool uses_tsc() const noexcept { return tsc_; }

  // The two sources: CLOCK_REALTIME through the vDSO, and the TSC.
  static int64_t clock_realtime() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);  // vDSO
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  }
#if defined(__x86_64__)
  static uint64_t ticks() noexcept { return __rdtsc(); }
#else
  static uint64_t ticks() noexcept { return 0; }
#endif

 private:
  __extension__ typedef unsigned __int128 U128;  // for the rate divisions
  // reanchor(), or the clock without the TSC: clock_gettime, or the injected one.
  [[gnu::noinline, gnu::cold]] int64_t slow_now() noexcept;
  int64_t reanchor() noexcept;

  int64_t (*const injected_)();
  bool tsc_ = false;
  uint64_t anchor_tsc_ = 0;  // first sample, for the long-baseline rate
  int64_t anchor_ns_ = 0;
  uint64_t base_tsc_ = 0;    // the current anchor
  int64_t base_ns_ = 0;
  uint64_t mult_ = 0;        // ns per TSC tick, fixed point 32.32
  uint64_t reanchor_ticks_ = 0;  // ~100 ms of ticks; 0 without the TSC
};

}  // namespace sluice::log_internal
