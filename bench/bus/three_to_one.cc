// ThreeToOne: three producers, one consumer — the shape of the ingress (many submitters,
// one log writer).
//
//   P1 ─┐
//   P2 ─┼─► RingBuffer<uint64_t, MultiProducerSequencer> (64 Ki) ──► EventProcessor (cpu B)
//   P3 ─┘   claim by CAS, publish per slot
//
//   baseline, same run, same CPUs:
//   P1..P3 ──try_enqueue(own ProducerToken)──► moodycamel::ConcurrentQueue ──try_dequeue_bulk──► consumer
//
//   The three producers share cpu A (time-sliced), the consumer has cpu B and busy-spins;
//   producers back off (yield) when the ring is full. A producer preempted between its claim
//   and its publish stalls the ring's consumer until it runs again (head-of-line blocking);
//   moodycamel's per-producer sub-queues do not have that problem. This figure is what
//   decides the ingress queue (docs/bus.md).
#include <concurrentqueue/concurrentqueue.h>

#include <chrono>
#include <thread>
#include <vector>

#include "bus/bus_bench.h"
#include "sluice/bus/agent.h"
#include "sluice/bus/event_processor.h"
#include "sluice/bus/ring_buffer.h"

namespace sluice::bench::bus {
namespace {
using Clock = std::chrono::steady_clock;
constexpr int kProducers = 3;
}  // namespace

Throughput three_to_one_ring(const Placement& p, uint64_t events) {
  using Ring = RingBuffer<uint64_t, MultiProducerSequencer>;
  Ring ring(64 * 1024);
  SumHandler h;
  ProcessorOptions o;
  o.name = "three-to-one";
  o.max_batch = 1024;
  EventProcessor<uint64_t, SumHandler, MultiProducerSequencer> proc(ring, h, o);
  RunnerOptions ro;
  ro.cpu = p.worker(0);
  ro.idle.kind = IdleKind::busy_spin;
  AgentRunner runner(proc, ro);
  if (!runner.start().ok()) bench_fail("three-to-one: cannot start the consumer");
  const uint64_t per = events / kProducers;
  std::atomic<bool> go{false};
  std::vector<std::thread> producers;
  for (int k = 0; k < kProducers; ++k) {
    producers.emplace_back([&] {
      pin_this_thread(p.producer());
      IdleOptions io;
      io.kind = IdleKind::yield;
      IdleStrategy idle(io);
      // Acquire: pairs with the release below.
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (uint64_t i = 0; i < per; ++i) ring.publish(i, idle);
    });
  }
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : producers) t.join();
  await_sequence(proc.sequence(), static_cast<int64_t>(per * kProducers) - 1);
  const double s = seconds_since(t0);
  runner.request_stop();
  runner.join().ignore();
  if (h.sum != kProducers * sum_below(per))
    bench_fail("three-to-one ring: consumer sum %llu, expected %llu", static_cast<unsigned long long>(h.sum),
               static_cast<unsigned long long>(kProducers * sum_below(per)));
  return {static_cast<double>(per * kProducers) / s};
}

Throughput three_to_one_moodycamel(const Placement& p, uint64_t events) {
  moodycamel::ConcurrentQueue<uint64_t> q(64 * 1024, kProducers, 0);
  const uint64_t per = events / kProducers;
  const uint64_t total = per * kProducers;
  std::atomic<bool> go{false};
  uint64_t sum = 0;
  std::thread consumer([&] {
    pin_this_thread(p.worker(0));
    moodycamel::ConsumerToken ct(q);
    uint64_t buf[1024];
    uint64_t got = 0;
    while (got < total) {
      const size_t n = q.try_dequeue_bulk(ct, buf, 1024);
      if (n == 0) cpu_relax();
      for (size_t i = 0; i < n; ++i) sum += buf[i];
      got += n;
    }
  });
  std::vector<std::thread> producers;
  for (int k = 0; k < kProducers; ++k) {
    producers.emplace_back([&] {
      pin_this_thread(p.producer());
      moodycamel::ProducerToken pt(q);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (uint64_t i = 0; i < per; ++i)
        while (!q.try_enqueue(pt, i)) std::this_thread::yield();
    });
  }
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : producers) t.join();
  consumer.join();
  const double s = seconds_since(t0);
  if (sum != kProducers * sum_below(per))
    bench_fail("three-to-one moodycamel: consumer sum %llu, expected %llu", static_cast<unsigned long long>(sum),
               static_cast<unsigned long long>(kProducers * sum_below(per)));
  return {static_cast<double>(total) / s};
}

}  // namespace sluice::bench::bus
