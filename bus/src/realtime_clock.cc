#include "internal/realtime_clock.h"

#include <fstream>
#include <string>

namespace sluice::log_internal {
namespace {

#if defined(__x86_64__)
bool invariant_tsc() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("flags", 0) == 0)
      return line.find(" constant_tsc") != std::string::npos &&
             line.find(" nonstop_tsc") != std::string::npos;
  }
  return false;
}
#else
bool invariant_tsc() { return false; }
#endif

// A (tsc, realtime) pair taken as close together as we can: the tsc is the midpoint of two
// reads around clock_gettime, and of four tries the one with the narrowest window is kept. A
// single try preempted between its reads (a busy machine) paired times milliseconds apart:
// with the 2 ms first baseline that made the rate tens of percent wrong (found by
// tests/bus/realtime_clock_test.cc under ctest -j2).
void sample(uint64_t* tsc, int64_t* ns) noexcept {
  uint64_t best_window = ~uint64_t{0};
  for (int i = 0; i < 4; ++i) {
    const uint64_t a = RealtimeClock::ticks();
    const int64_t n = RealtimeClock::clock_realtime();
    const uint64_t b = RealtimeClock::ticks();
    if (b >= a && b - a < best_window) {
      best_window = b - a;
      *tsc = a + (b - a) / 2;
      *ns = n;
    }
  }
  if (best_window == ~uint64_t{0}) {  // the TSC went backwards every time: take the last
    *tsc = RealtimeClock::ticks();
    *ns = RealtimeClock::clock_realtime();
  }
}

}  // namespace

RealtimeClock::RealtimeClock(int64_t (*injected)())
    : injected_(injected), tsc_(injected == nullptr && invariant_tsc()) {
  if (!tsc_) return;
  sample(&anchor_tsc_, &anchor_ns_);
  // A first rate from a 2 ms baseline; reanchor() refines it from the anchor.
  uint64_t t;
  int64_t n;
  do {
    sample(&t, &n);
  } while (n - anchor_ns_ < 2'000'000);
  if (t <= anchor_tsc_) {  // the TSC went backwards across the baseline: do not trust it
    tsc_ = false;
    return;
  }
  mult_ = (static_cast<U128>(n - anchor_ns_) << 32) / (t - anchor_tsc_);
  base_tsc_ = t;
  base_ns_ = n;
  // 100 ms of ticks (mult_ > 0: n - anchor_ns_ >= 2 ms over fewer than 2^64 ticks).
  reanchor_ticks_ = static_cast<uint64_t>((static_cast<U128>(100'000'000) << 32) / mult_);
}

int64_t RealtimeClock::slow_now() noexcept {
  if (!tsc_) return injected_ != nullptr ? injected_() : clock_realtime();
  return reanchor();
}

int64_t RealtimeClock::reanchor() noexcept {
  uint64_t t;
  int64_t n;
  sample(&t, &n);
  if (t > anchor_tsc_ && n > anchor_ns_)
    mult_ = (static_cast<U128>(n - anchor_ns_) << 32) / (t - anchor_tsc_);
  base_tsc_ = t;
  base_ns_ = n;
  return n;
}

}  // namespace sluice::log_internal
