// OneToOne: one producer, one consumer.
//
//   producer (cpu A) ──publish──► RingBuffer<uint64_t> (64 Ki slots) ──► EventProcessor (cpu B)
//                                                                         SumHandler
//   unbatched: claim 1 / write / publish 1      batched: publish_n(10): claim 10, write and
//                                               stamp each slot in one pass
//
//   baselines, same run, same CPUs:
//   producer ──push──► boost::lockfree::spsc_queue<uint64_t, capacity 64 Ki> ──pop(buf, 1024)──► consumer
//   producer ──try_enqueue(token)──► moodycamel::ConcurrentQueue<uint64_t> ──try_dequeue_bulk(token, buf, 1024)──► consumer
//   The baselines' consumers drain up to 1024 items per call, as the ring's consumer does
//   (max_batch 1024), so that the ratios measure the ring, not batching.
//
// Every run verifies its result: the consumer's sum must be 0 + 1 + ... + (n - 1), else
// bench_fail() (exit 2, no figure).
#include <concurrentqueue/concurrentqueue.h>

#include <boost/lockfree/spsc_queue.hpp>
#include <chrono>
#include <memory>
#include <thread>

#include "bus/bus_bench.h"
#include "sluice/bus/agent.h"
#include "sluice/bus/event_processor.h"
#include "sluice/bus/ring_buffer.h"

namespace sluice::bench::bus {
namespace {
constexpr size_t kCapacity = 64 * 1024;
using Clock = std::chrono::steady_clock;
}  // namespace

Throughput one_to_one_ring(const Placement& p, uint64_t events, int batch) {
  RingBuffer<uint64_t> ring(kCapacity);
  SumHandler h;
  ProcessorOptions o;
  o.name = "one-to-one";
  o.max_batch = 1024;
  EventProcessor<uint64_t, SumHandler> proc(ring, h, o);
  RunnerOptions ro;
  ro.cpu = p.worker(0);
  ro.idle.kind = IdleKind::busy_spin;
  AgentRunner runner(proc, ro);
  if (!runner.start().ok()) bench_fail("one-to-one: cannot start the consumer");
  pin_this_thread(p.producer());
  IdleStrategy idle(spin_idle());
  const auto t0 = Clock::now();
  if (batch <= 1) {
    for (uint64_t i = 0; i < events; ++i) ring.publish(i, idle);
  } else {
    // publish_n: one claim for `batch` events, each written straight into its slot.
    const auto n = static_cast<int64_t>(batch);
    for (uint64_t i = 0; i + static_cast<uint64_t>(batch) <= events; i += static_cast<uint64_t>(batch))
      ring.publish_n(n, idle, [i](int64_t k) { return i + static_cast<uint64_t>(k); });
  }
  const int64_t last = ring.head();
  await_sequence(proc.sequence(), last);
  const double s = seconds_since(t0);
  runner.request_stop();
  runner.join().ignore();
  const auto published = static_cast<uint64_t>(last + 1);
  if (h.sum != sum_below(published))
    bench_fail("one-to-one ring (batch %d): consumer sum %llu, expected %llu for %llu events", batch,
               static_cast<unsigned long long>(h.sum), static_cast<unsigned long long>(sum_below(published)),
               static_cast<unsigned long long>(published));
  return {static_cast<double>(published) / s};
}

Throughput one_to_one_boost_spsc(const Placement& p, uint64_t events) {
  using Queue = boost::lockfree::spsc_queue<uint64_t, boost::lockfree::capacity<kCapacity>>;
  auto q = std::make_unique<Queue>();
  std::atomic<bool> go{false};
  uint64_t sum = 0;
  std::thread consumer([&] {
    pin_this_thread(p.worker(0));
    // Acquire: pairs with the release below (start together).
    while (!go.load(std::memory_order_acquire)) cpu_relax();
    uint64_t buf[1024];
    for (uint64_t got = 0; got < events;) {
      const size_t n = q->pop(buf, 1024);
      if (n == 0) cpu_relax();
      for (size_t i = 0; i < n; ++i) sum += buf[i];
      got += n;
    }
  });
  pin_this_thread(p.producer());
  go.store(true, std::memory_order_release);
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < events; ++i)
    while (!q->push(i)) cpu_relax();
  consumer.join();
  const double s = seconds_since(t0);
  if (sum != sum_below(events))
    bench_fail("one-to-one %s: consumer sum %llu, expected %llu", "boost spsc", static_cast<unsigned long long>(sum),
               static_cast<unsigned long long>(sum_below(events)));
  return {static_cast<double>(events) / s};
}

Throughput one_to_one_moodycamel(const Placement& p, uint64_t events) {
  moodycamel::ConcurrentQueue<uint64_t> q(kCapacity, 1, 0);
  std::atomic<bool> go{false};
  uint64_t sum = 0;
  std::thread consumer([&] {
    pin_this_thread(p.worker(0));
    moodycamel::ConsumerToken ct(q);
    while (!go.load(std::memory_order_acquire)) cpu_relax();
    uint64_t buf[1024];
    for (uint64_t got = 0; got < events;) {
      const size_t n = q.try_dequeue_bulk(ct, buf, 1024);
      if (n == 0) cpu_relax();
      for (size_t i = 0; i < n; ++i) sum += buf[i];
      got += n;
    }
  });
  pin_this_thread(p.producer());
  moodycamel::ProducerToken pt(q);
  go.store(true, std::memory_order_release);
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < events; ++i)
    while (!q.try_enqueue(pt, i)) cpu_relax();
  consumer.join();
  const double s = seconds_since(t0);
  if (sum != sum_below(events))
    bench_fail("one-to-one %s: consumer sum %llu, expected %llu", "moodycamel", static_cast<unsigned long long>(sum),
               static_cast<unsigned long long>(sum_below(events)));
  return {static_cast<double>(events) / s};
}

}  // namespace sluice::bench::bus
