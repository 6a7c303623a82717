#include "internal/realtime_clock.h"

#include <time.h>

#include <fstream>
#include <string>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace sluice::log_internal {
namespace {

__extension__ typedef unsigned __int128 u128;  // for the 64x64->128 multiply

int64_t clock_realtime() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

#if defined(__x86_64__)
uint64_t ticks() noexcept { return __rdtsc(); }

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
uint64_t ticks() noexcept { return 0; }
bool invariant_tsc() { return false; }
#endif

// A (tsc, realtime) pair taken as close together as we can: the tsc is the midpoint of two
// reads around clock_gettime.
void sample(uint64_t* tsc, int64_t* ns) noexcept {
  const uint64_t a = ticks();
  *ns = clock_realtime();
  const uint64_t b = ticks();
  *tsc = a + (b - a) / 2;
}

}  // namespace

RealtimeClock::RealtimeClock() : tsc_(invariant_tsc()) {
  if (!tsc_) return;
  sample(&anchor_tsc_, &anchor_ns_);
  // A first rate from a 2 ms baseline; calibrate() refines it from the anchor.
  uint64_t t;
  int64_t n;
  do {
    sample(&t, &n);
  } while (n - anchor_ns_ < 2'000'000);
  const uint64_t mult = (static_cast<u128>(n - anchor_ns_) << 32) / (t - anchor_tsc_);
  base_tsc_.store(t, std::memory_order_relaxed);
  base_ns_.store(n, std::memory_order_relaxed);
  mult_.store(mult, std::memory_order_relaxed);
  seq_.store(2, std::memory_order_release);  // pairs with the acquire in now()
}

void RealtimeClock::calibrate() noexcept {
  if (!tsc_) return;
  uint64_t t;
  int64_t n;
  sample(&t, &n);
  if (t <= anchor_tsc_ || n <= anchor_ns_) return;
  const uint64_t mult = (static_cast<u128>(n - anchor_ns_) << 32) / (t - anchor_tsc_);
  const uint64_t s = seq_.load(std::memory_order_relaxed);  // only this thread writes seq_
  seq_.store(s + 1, std::memory_order_relaxed);
  // Release on each field: a reader that acquires a new field value also sees the odd seq_
  // stored above, so its re-check fails and it retries. (No standalone fences: TSan does not
  // model them.)
  base_tsc_.store(t, std::memory_order_release);
  base_ns_.store(n, std::memory_order_release);
  mult_.store(mult, std::memory_order_release);
  seq_.store(s + 2, std::memory_order_release);  // pairs with the acquire in now()
}

int64_t RealtimeClock::now() const noexcept {
  if (!tsc_) return clock_realtime();
  for (;;) {
    // Acquire: pairs with the release stores of seq_ in calibrate().
    const uint64_t s1 = seq_.load(std::memory_order_acquire);
    // Acquire on each field (plain loads on x86): the re-check of seq_ below cannot move
    // before them, and a field written by a newer calibrate() makes that re-check see it.
    const uint64_t bt = base_tsc_.load(std::memory_order_acquire);
    const int64_t bn = base_ns_.load(std::memory_order_acquire);
    const uint64_t m = mult_.load(std::memory_order_acquire);
    if ((s1 & 1) != 0 || s1 != seq_.load(std::memory_order_relaxed)) continue;
    const uint64_t t = ticks();
    const uint64_t d = t > bt ? t - bt : 0;
    return bn + static_cast<int64_t>((static_cast<u128>(d) * m) >> 32);
  }
}

}  // namespace sluice::log_internal
