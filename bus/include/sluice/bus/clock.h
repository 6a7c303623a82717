// The wall and monotonic clocks every layer reads off the append path, in nanoseconds: one
// definition (the append path has its own TSC-based clock, bus/src/internal/realtime_clock.h).
#pragma once

#include <time.h>

#include <cstdint>

namespace sluice {

// CLOCK_REALTIME (through the vDSO: no system call). Log timestamps, heartbeats, lag.
inline int64_t realtime_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// CLOCK_MONOTONIC: deadlines and durations.
inline int64_t steady_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace sluice
