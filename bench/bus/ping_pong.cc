// PingPong: round-trip latency, one event in flight.
//
//   thread A (cpu A)                              thread B (cpu B)
//   t0; publish(i) ──► ring "ping" (1 Ki slots) ──► EventProcessor ─┐ handler publishes i
//   poll ◄────────────── ring "pong" (1 Ki slots) ◄──────────────────┘
//   t1 - t0 = one sample
//
//   baseline, same run, same CPUs: two std::atomic<uint64_t>, each alone on its cache line;
//   A stores ping = i and spins until pong == i, B spins until ping == i and stores pong = i.
//   That is the physical limit: one cache-line transfer each way.
//
// Both sides busy-spin (with `pause`) on pinned CPUs. A round trip is closed-loop by nature
// (the next ping waits for the pong), so there is no coordinated omission to correct: every
// sample is a full round trip, and none is skipped.
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "bus/bus_bench.h"
#include "sluice/bus/agent.h"
#include "sluice/bus/event_processor.h"
#include "sluice/bus/ring_buffer.h"

namespace sluice::bench::bus {
namespace {
using Clock = std::chrono::steady_clock;
constexpr uint64_t kWarmup = 20'000;

Latency summarise(std::vector<double>& samples) {
  return {percentile(samples, 50), percentile(samples, 99), percentile(samples, 99.9), std::move(samples)};
}

// The handlers' state is written on every hop by different threads (B's echo resets its
// idle state, A's Last stores the value): each on its own line pair, or A's store would have
// to fetch the line that B just wrote (false sharing measured as ring latency: the p50 was
// 1.1-1.2x the atomic round trip with both on one stack line, 1.0-1.07x apart).
// B's handler: echoes every ping into the pong ring.
struct alignas(2 * kCacheLine) Echo {
  RingBuffer<uint64_t>* pong;
  IdleStrategy idle{spin_idle()};
  void on_event(const uint64_t& v, int64_t, bool) noexcept { pong->publish(v, idle); }
};
// A's handler on the pong ring: remembers the last value.
struct alignas(2 * kCacheLine) Last {
  uint64_t value = ~uint64_t{0};
  void on_event(const uint64_t& v, int64_t, bool) noexcept { value = v; }
};
}  // namespace

Latency ping_pong_ring(const Placement& p, uint64_t round_trips) {
  RingBuffer<uint64_t> ping(1024), pong(1024);
  Echo echo{&pong};
  EventProcessor<uint64_t, Echo> b(ping, echo, ProcessorOptions{});
  Last last;
  EventProcessor<uint64_t, Last> a(pong, last, ProcessorOptions{});
  RunnerOptions ro;
  ro.cpu = p.worker(0);
  ro.idle.kind = IdleKind::busy_spin;
  AgentRunner runner(b, ro);
  if (!runner.start().ok()) bench_fail("ping-pong: cannot start the echo");
  pin_this_thread(p.producer());
  IdleStrategy idle(spin_idle());
  std::vector<double> samples;
  samples.reserve(round_trips);
  for (uint64_t i = 0; i < kWarmup + round_trips; ++i) {
    const auto t0 = Clock::now();
    ping.publish(i, idle);
    while (last.value != i) {
      if (a.do_work() == 0) cpu_relax();
    }
    const auto t1 = Clock::now();
    if (i >= kWarmup) samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  runner.request_stop();
  runner.join().ignore();
  return summarise(samples);
}

Latency ping_pong_atomic(const Placement& p, uint64_t round_trips) {
  struct alignas(128) Line {
    std::atomic<uint64_t> v{~uint64_t{0}};
  };
  Line ping, pong;
  const uint64_t total = kWarmup + round_trips;
  std::thread b([&] {
    pin_this_thread(p.worker(0));
    for (uint64_t i = 0; i < total; ++i) {
      // Acquire/release: the same pairing a ring hand-off needs (the payload is the value).
      while (ping.v.load(std::memory_order_acquire) != i) cpu_relax();
      pong.v.store(i, std::memory_order_release);
    }
  });
  pin_this_thread(p.producer());
  std::vector<double> samples;
  samples.reserve(round_trips);
  for (uint64_t i = 0; i < total; ++i) {
    const auto t0 = Clock::now();
    ping.v.store(i, std::memory_order_release);
    while (pong.v.load(std::memory_order_acquire) != i) cpu_relax();
    const auto t1 = Clock::now();
    if (i >= kWarmup) samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  b.join();
  return summarise(samples);
}

}  // namespace sluice::bench::bus
