// RealtimeClock: CLOCK_REALTIME in nanoseconds for the append path, read from the TSC.
//
// Why: every append stamps its records. On this VM clock_gettime(CLOCK_REALTIME) through
// the vDSO costs ~26 ns and rdtsc ~12 ns (measured 2026-11-26); at ~40 ns per 64-byte append
// that is a third of the budget. Where the TSC is not invariant (no constant_tsc and
// nonstop_tsc), now() falls back to clock_gettime.
//
// Design
//   now() = base_ns + (rdtsc() - base_tsc) * mult / 2^32. calibrate(), called by the
//   writer's maintenance thread every ~100 ms, re-anchors (base_tsc, base_ns) on a fresh
//   clock_gettime sample and recomputes mult from the first anchor, so the error stays
//   within a few microseconds of CLOCK_REALTIME and never accumulates. The writer clamps
//   timestamps so they never go backwards.
//
// Thread safety
//   One thread calls calibrate(), any thread may call now(). The parameters are published
//   with a seqlock: calibrate() makes seq_ odd, stores the three fields (release), makes it
//   even again (release); now() acquires seq_ and the fields and retries until it reads the
//   same even seq_ before and after.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice::log_internal {

class RealtimeClock {
 public:
  RealtimeClock();
  int64_t now() const noexcept;
  void calibrate() noexcept;
  bool uses_tsc() const noexcept { return tsc_; }

 private:
  bool tsc_ = false;
  uint64_t anchor_tsc_ = 0;  // first sample, for the long-baseline rate (calibrate() only)
  int64_t anchor_ns_ = 0;
  // seq_: odd while calibrate() rewrites the fields below. Release on the final (even)
  // store pairs with the acquire load in now(); the fields are atomics (release stores,
  // acquire loads) so that a torn read is a retried read, never a data race.
  std::atomic<uint64_t> seq_{0};
  std::atomic<uint64_t> base_tsc_{0};
  std::atomic<int64_t> base_ns_{0};
  std::atomic<uint64_t> mult_{0};  // ns per TSC tick, fixed point 32.32
};

}  // namespace sluice::log_internal
