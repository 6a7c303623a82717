// Sharded 1 -> N: one logical consumer spread over N workers by stream key.
//
//                      ┌─► shard 0/N (worker 0, cpu B)   handles keys with mix(key) % N == 0
//   P (cpu A) ─► ring ─┼─► shard 1/N (worker 1, cpu C)   handles keys with mix(key) % N == 1
//                      └─► ...                            every worker passes over every slot
//
//   1024 stream keys, round robin; each handled event costs `work_iters` dependent
//   multiply-adds (a stand-in for a projection's handler, ~1 ns each). Workers gate the
//   producer (OverrunPolicy::block), idle with `yield` (threads may outnumber CPUs), and are
//   pinned to --cpus[1..], wrapping around onto the producer's CPU when there are fewer CPUs
//   than workers. Scaling efficiency(N) = rate(N) / (N * rate(1)).
#include <chrono>
#include <memory>
#include <vector>

#include "bus/bus_bench.h"
#include "sluice/bus/agent.h"
#include "sluice/bus/event_processor.h"
#include "sluice/bus/ring_buffer.h"

namespace sluice::bench::bus {
namespace {
using Clock = std::chrono::steady_clock;

struct WorkHandler {
  int iters = 0;
  uint64_t acc = 1;
  uint64_t count = 0;
  void on_event(const uint64_t& v, int64_t, bool) noexcept {
    uint64_t x = acc ^ v;
    for (int i = 0; i < iters; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
    acc = x;
    ++count;
  }
};
}  // namespace

Throughput sharded(const Placement& p, uint64_t events, int workers, int work_iters) {
  RingBuffer<uint64_t> ring(64 * 1024);
  using Proc = EventProcessor<uint64_t, WorkHandler>;
  std::vector<std::unique_ptr<WorkHandler>> hs;
  std::vector<std::unique_ptr<Proc>> ps;
  std::vector<std::unique_ptr<AgentRunner>> rs;
  for (int i = 0; i < workers; ++i) {
    hs.push_back(std::make_unique<WorkHandler>());
    hs.back()->iters = work_iters;
    ProcessorOptions o;
    o.name = "shard";
    o.max_batch = 1024;
    o.shard_index = static_cast<uint32_t>(i);
    o.shard_count = static_cast<uint32_t>(workers);
    ps.push_back(std::make_unique<Proc>(ring, *hs.back(), o));
  }
  for (int i = 0; i < workers; ++i) {
    RunnerOptions ro;
    ro.cpu = p.worker(static_cast<size_t>(i));
    ro.idle.kind = IdleKind::yield;
    rs.push_back(std::make_unique<AgentRunner>(*ps[static_cast<size_t>(i)], ro));
    if (!rs.back()->start().ok()) bench_fail("sharded: cannot start worker %d", i);
  }
  pin_this_thread(p.producer());
  IdleOptions io;
  io.kind = IdleKind::yield;
  IdleStrategy idle(io);
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < events; ++i) ring.publish(i % 1024, idle);
  for (auto& proc : ps) {
    while (proc->sequence().get() < ring.head()) std::this_thread::yield();
  }
  const double s = seconds_since(t0);
  uint64_t handled = 0;
  for (auto& r : rs) {
    r->request_stop();
    r->join().ignore();
  }
  for (auto& h : hs) handled += h->count;
  if (handled != events)
    bench_fail("sharded (%d workers): handled %llu events of %llu", workers, static_cast<unsigned long long>(handled),
               static_cast<unsigned long long>(events));
  return {static_cast<double>(events) / s};
}

}  // namespace sluice::bench::bus
