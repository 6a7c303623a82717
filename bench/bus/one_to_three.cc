// OneToThree fan-out, ThreeStepPipeline and Diamond: one producer, three consumers, all
// three consumers on ONE worker thread (a CompositeAgent) — on a 2-core machine that is how
// three projections run next to the writer.
//
//   OneToThree (fan-out)              ThreeStepPipeline              Diamond
//
//             ┌─► C1                  P ─► C1 ─► C2 ─► C3            ┌─► C1 ─┐
//   P ─► ring ├─► C2                  (C2 after C1, C3 after C2)  P ─┤       ├─► C3
//             └─► C3                                                 └─► C2 ─┘
//   every consumer sees every event                                  (C3 after C1 and C2)
//
//   P on cpu A (unbatched publishes); C1, C2, C3 on cpu B, polled in turn, busy-spin.
//   Ring: 64 Ki slots of uint64_t. Consumers gate the producer (OverrunPolicy::block).
//   The rate is events through the topology per second (each consumer saw all of them).
#include <chrono>

#include "bus/bus_bench.h"
#include "sluice/bus/agent.h"
#include "sluice/bus/event_processor.h"
#include "sluice/bus/ring_buffer.h"

namespace sluice::bench::bus {
namespace {
using Clock = std::chrono::steady_clock;
enum class Shape { fanout, pipeline, diamond };

ProcessorOptions opts(const char* name, std::vector<const Sequence*> deps) {
  ProcessorOptions o;
  o.name = name;
  o.max_batch = 1024;
  o.depends_on = std::move(deps);
  return o;
}

Throughput run(const Placement& p, uint64_t events, Shape shape) {
  RingBuffer<uint64_t> ring(64 * 1024);
  SumHandler h1, h2, h3;
  using Proc = EventProcessor<uint64_t, SumHandler>;
  Proc c1(ring, h1, opts("c1", {}));
  Proc c2(ring, h2, opts("c2", shape == Shape::pipeline ? std::vector<const Sequence*>{&c1.sequence()}
                                                        : std::vector<const Sequence*>{}));
  std::vector<const Sequence*> d3;
  if (shape == Shape::pipeline) d3 = {&c2.sequence()};
  if (shape == Shape::diamond) d3 = {&c1.sequence(), &c2.sequence()};
  Proc c3(ring, h3, opts("c3", d3));
  CompositeAgent worker({&c1, &c2, &c3}, "worker");
  RunnerOptions ro;
  ro.cpu = p.worker(0);
  ro.idle.kind = IdleKind::busy_spin;
  AgentRunner runner(worker, ro);
  if (!runner.start().ok()) bench_fail("one-to-three: cannot start the worker");
  pin_this_thread(p.producer());
  IdleStrategy idle(spin_idle());
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < events; ++i) ring.publish(i, idle);
  const int64_t last = ring.head();
  await_sequence(c1.sequence(), last);
  await_sequence(c2.sequence(), last);
  await_sequence(c3.sequence(), last);
  const double s = seconds_since(t0);
  runner.request_stop();
  runner.join().ignore();
  // Every consumer saw every event, once.
  if (h1.sum != sum_below(events) || h2.sum != h1.sum || h3.sum != h1.sum)
    bench_fail("one-to-three (shape %d): consumer sums %llu %llu %llu, expected %llu", static_cast<int>(shape),
               static_cast<unsigned long long>(h1.sum), static_cast<unsigned long long>(h2.sum),
               static_cast<unsigned long long>(h3.sum), static_cast<unsigned long long>(sum_below(events)));
  return {static_cast<double>(events) / s};
}
}  // namespace

Throughput one_to_three_fanout(const Placement& p, uint64_t events) { return run(p, events, Shape::fanout); }
Throughput three_step_pipeline(const Placement& p, uint64_t events) { return run(p, events, Shape::pipeline); }
Throughput diamond(const Placement& p, uint64_t events) { return run(p, events, Shape::diamond); }

}  // namespace sluice::bench::bus
