// Shared pieces of `sluice bench bus`: thread placement from --cpus, the handlers the
// topologies use, and the measurement functions each topology file provides.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "common/figures.h"
#include "sluice/bus/idle_strategy.h"
#include "sluice/bus/sequence.h"

namespace sluice::bench::bus {

// --cpus a,b,...: cpus[0] runs the producer, cpus[1] the (first) consumer worker, further
// CPUs the further workers. Without --cpus: 0 and 1 (when the machine has them).
struct Placement {
  std::vector<int> cpus;
  int producer() const { return cpus.empty() ? -1 : cpus[0]; }
  // Worker i (0-based) runs on cpus[1 + i], wrapping around the list (onto the producer's
  // CPU when there are fewer CPUs than threads).
  int worker(size_t i) const {
    if (cpus.empty()) return -1;
    if (cpus.size() == 1) return cpus[0];
    return cpus[(1 + i) % cpus.size()];
  }
};
Placement placement_from(const SuiteArgs& args);

// Sums what it sees: the work a throughput test gives each consumer. Defeats dead-code
// elimination without touching shared memory.
// (The count is the consumer's sequence; the handler keeps just the sum, like the Boost
// baseline's consumer loop.)
// Aligned to a line pair: the consumer thread writes it on every event, and it must not share
// a line with the producer's state (its IdleStrategy, its loop variables) on the same stack.
struct alignas(2 * kCacheLine) SumHandler {
  uint64_t sum = 0;
  void on_event(const uint64_t& v, int64_t, bool) noexcept { sum += v; }
};

inline IdleOptions spin_idle() {
  IdleOptions o;
  o.kind = IdleKind::busy_spin;
  return o;
}

// Spins until `s` reaches `target` (the producer waiting for the consumers to finish).
inline void await_sequence(const Sequence& s, int64_t target) noexcept {
  while (s.get() < target) cpu_relax();
}

// Median of repeated measurements.
double median(std::vector<double> v);

// ---- measurements (one file per topology) ----
struct Throughput {
  double events_per_s = 0;
};
// OneToOne: ring, one event per publish / `batch` events per publish.
Throughput one_to_one_ring(const Placement& p, uint64_t events, int batch);
// Baselines: Boost.Lockfree spsc_queue and moodycamel ConcurrentQueue, one item per op.
Throughput one_to_one_boost_spsc(const Placement& p, uint64_t events);
Throughput one_to_one_moodycamel(const Placement& p, uint64_t events);

struct Latency {
  double p50_ns = 0, p99_ns = 0, p999_ns = 0;
  std::vector<double> samples_ns;  // every round trip, for the .hgrm distribution
};
// Round trip through two rings vs two bare atomics on separate lines.
Latency ping_pong_ring(const Placement& p, uint64_t round_trips);
Latency ping_pong_atomic(const Placement& p, uint64_t round_trips);

// OneToThree fan-out, ThreeStepPipeline, Diamond: consumers on one worker thread.
Throughput one_to_three_fanout(const Placement& p, uint64_t events);
Throughput three_step_pipeline(const Placement& p, uint64_t events);
Throughput diamond(const Placement& p, uint64_t events);

// ThreeToOne: three producers, multi-producer ring vs moodycamel with producer tokens.
Throughput three_to_one_ring(const Placement& p, uint64_t events);
Throughput three_to_one_moodycamel(const Placement& p, uint64_t events);

// Sharded 1 -> N: one logical consumer over N workers, `work_iters` of work per event.
Throughput sharded(const Placement& p, uint64_t events, int workers, int work_iters);

}  // namespace sluice::bench::bus
