// sluice bench bus: the bus against its baselines, measured in the same run.
//
//   OneToOne            P ─► ring ─► C                    vs Boost spsc_queue, moodycamel
//   PingPong            A ─► ring ─► B ─► ring ─► A       vs two bare atomics (the limit)
//   OneToThree          P ─► ring ─► {C1, C2, C3}         vs OneToOne
//   ThreeStepPipeline   P ─► ring ─► C1 ─► C2 ─► C3       (reported)
//   Diamond             P ─► ring ─► {C1, C2} ─► C3       (reported)
//   ThreeToOne          {P1, P2, P3} ─► ring ─► C         vs moodycamel with producer tokens
//   Sharded 1 -> N      P ─► ring ─► N shards by key      vs N x the 1-worker rate
//
// The diagram of each topology opens its file (one_to_one.cc, ping_pong.cc, ...).
// --cpus A,B[,C...]: A runs producers, B the first consumer worker, C... further workers.
// Throughput figures are the median of 3 runs; the ring and its baseline alternate.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "bus/bus_bench.h"
#include "common/histogram.h"
#include "suites.h"

namespace sluice::bench {
namespace bus {

Placement placement_from(const SuiteArgs& args) {
  Placement p;
  if (!args.cpus.empty()) {
    p.cpus = args.cpus;
  } else if (std::thread::hardware_concurrency() >= 2) {
    p.cpus = {0, 1};
  }
  return p;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace bus

int run_bus_suite(const SuiteArgs& args) {
  using namespace bus;
  // SLUICE_BENCH_BUS_PARTS=1p1c,pingpong,fanout,3to1,sharded (default: all): a subset, for
  // quick A/B runs while tuning, or to leave out a part a loaded machine cannot finish (3to1
  // runs three yielding producers on one CPU); the config records which parts ran.
  const char* parts_env = std::getenv("SLUICE_BENCH_BUS_PARTS");
  const std::string parts = parts_env ? std::string(",") + parts_env + "," : "";
  const auto part = [&](const char* name) { return parts.empty() || parts.find(std::string(",") + name + ",") != std::string::npos; };
  check_workload(args, "bus", kOptEvents);
  const auto progress = [](const char* what) { sluice::bench::progress("bus", std::string(what) + " done"); };
  const Placement pl = placement_from(args);
  const auto n = [&](double base) { return events_or(args, static_cast<uint64_t>(std::max(10'000.0, base * args.scale))); };
  Figures fig;
  std::string cpus;
  for (int c : pl.cpus) cpus += (cpus.empty() ? "" : ",") + std::to_string(c);
  fig.config("machine", machine_description(args.dir.empty() ? "/tmp" : args.dir));
  fig.config("cpus", cpus.empty() ? "unpinned" : cpus);
  fig.config("scale", std::to_string(args.scale));
  fig.config("event", "uint64_t (8 bytes); ring slot 16 bytes (stamp + event)");
  fig.config("ring_capacity", "65536 (ping-pong: 1024)");
  fig.config("idle", "busy_spin for the pinned 1:1 topologies; yield for oversubscribed ones");
  fig.config("repetitions", "median of 3 for throughput");
  fig.config("parts", parts_env ? parts_env : "all");
  std::printf("sluice bench bus — cpus %s\n", cpus.empty() ? "unpinned" : cpus.c_str());
  std::printf("  %s\n", machine_description(args.dir.empty() ? "/tmp" : args.dir).c_str());
  std::fflush(stdout);

  // OneToOne and its baselines.
  double r1 = 0;
  if (part("1p1c")) {
  std::vector<double> ring1, ring10, boost, moody;
  for (int rep = 0; rep < 3; ++rep) {
    boost.push_back(one_to_one_boost_spsc(pl, n(20'000'000)).events_per_s);
    ring1.push_back(one_to_one_ring(pl, n(20'000'000), 1).events_per_s);
    ring10.push_back(one_to_one_ring(pl, n(50'000'000), 10).events_per_s);
    moody.push_back(one_to_one_moodycamel(pl, n(4'000'000)).events_per_s);
  }
  r1 = median(ring1);
  const double r10 = median(ring10), rb = median(boost), rm = median(moody);
  fig.add("rate_1p1c", r1, "events/s", "ring, one event per publish");
  fig.add("rate_1p1c_batched", r10, "events/s", "ring, 10 events per publish");
  fig.add("rate_boost_spsc", rb, "events/s", "Boost.Lockfree spsc_queue, push one, pop(buf, 1024)");
  fig.add("rate_moodycamel_1p1c", rm, "events/s", "ConcurrentQueue with tokens, enqueue one, try_dequeue_bulk 1024");
  fig.add("ratio_1p1c_vs_boost_spsc", r1 / rb, "ratio", "target >= 1.0");
  fig.add("ratio_1p1c_batched_vs_1p1c", r10 / r1, "ratio", "target >= 1.5");
  fig.add("ratio_1p1c_batched_vs_boost_spsc", r10 / rb, "ratio", "target >= 11");
  fig.add("ratio_1p1c_vs_moodycamel", r1 / rm, "ratio", "");
  progress("one-to-one");
  }

  // PingPong.
  if (part("pingpong")) {
  // In blocks, atomic and ring back to back (alternating which first): the vCPUs can move between measurements
  // within one run (an atomic round trip of 239 ns, then the ring at 320 ns, in one run that
  // had both at ~320 before and after: a ratio of 1.34 that the ring did not cause). The
  // p50 ratio is the median of the blocks' ratios; the percentiles pool every block.
  constexpr int kBlocks = 10;
  const uint64_t rt = n(200'000);
  Latency la, lr;
  std::vector<double> block_ratios;
  const uint64_t per_block = std::max<uint64_t>(1, rt / kBlocks);
  for (int b = 0; b < kBlocks; ++b) {
    // Alternate which goes first, so that neither side always runs after the other.
    Latency a, r;
    if (b % 2 == 0) {
      a = ping_pong_atomic(pl, per_block);
      r = ping_pong_ring(pl, per_block);
    } else {
      r = ping_pong_ring(pl, per_block);
      a = ping_pong_atomic(pl, per_block);
    }
    block_ratios.push_back(r.p50_ns / a.p50_ns);
    la.samples_ns.insert(la.samples_ns.end(), a.samples_ns.begin(), a.samples_ns.end());
    lr.samples_ns.insert(lr.samples_ns.end(), r.samples_ns.begin(), r.samples_ns.end());
  }
  for (Latency* l : {&la, &lr}) {
    l->p50_ns = percentile(l->samples_ns, 50);
    l->p99_ns = percentile(l->samples_ns, 99);
    l->p999_ns = percentile(l->samples_ns, 99.9);
  }
  fig.add("pingpong_atomic_p50_ns", la.p50_ns, "ns", "two bare atomics, round trip");
  fig.add("pingpong_atomic_p99_ns", la.p99_ns, "ns");
  fig.add("pingpong_atomic_p999_ns", la.p999_ns, "ns");
  fig.add("pingpong_ring_p50_ns", lr.p50_ns, "ns", "two rings, round trip");
  fig.add("pingpong_ring_p99_ns", lr.p99_ns, "ns");
  fig.add("pingpong_ring_p999_ns", lr.p999_ns, "ns");
  fig.add("ratio_pingpong_p50_vs_atomic", percentile(block_ratios, 50), "ratio",
          "target <= 1.1 (median of " + std::to_string(kBlocks) + " interleaved blocks' ratios)");
  fig.add("ratio_pingpong_p99_vs_atomic", lr.p99_ns / la.p99_ns, "ratio", "target <= 2.0");
  write_distribution(args.data_dir, "bus-pingpong_ring", lr.samples_ns);
  write_distribution(args.data_dir, "bus-pingpong_atomic_baseline", la.samples_ns);
  progress("ping-pong");
  }

  // One producer, three consumers on one worker.
  if (part("fanout")) {
  if (r1 == 0) r1 = one_to_one_ring(pl, n(20'000'000), 1).events_per_s;
  std::vector<double> fan, pipe, dia;
  for (int rep = 0; rep < 3; ++rep) {
    fan.push_back(one_to_three_fanout(pl, n(20'000'000)).events_per_s);
    pipe.push_back(three_step_pipeline(pl, n(10'000'000)).events_per_s);
    dia.push_back(diamond(pl, n(10'000'000)).events_per_s);
  }
  fig.add("rate_fanout3", median(fan), "events/s", "1 -> 3 consumers on one worker thread");
  fig.add("ratio_fanout3_vs_1p1c", median(fan) / r1, "ratio", "target >= 0.5");
  fig.add("rate_pipeline3", median(pipe), "events/s", "C1 -> C2 -> C3 on one worker thread");
  fig.add("ratio_pipeline3_vs_1p1c", median(pipe) / r1, "ratio");
  fig.add("rate_diamond", median(dia), "events/s", "{C1, C2} -> C3 on one worker thread");
  fig.add("ratio_diamond_vs_1p1c", median(dia) / r1, "ratio");
  progress("fan-out, pipeline, diamond");
  }

  // ThreeToOne: the ingress decision.
  if (part("3to1")) {
  std::vector<double> mp, mpm;
  for (int rep = 0; rep < 3; ++rep) {
    mpm.push_back(three_to_one_moodycamel(pl, n(6'000'000)).events_per_s);
    mp.push_back(three_to_one_ring(pl, n(6'000'000)).events_per_s);
  }
  fig.add("rate_3to1_ring", median(mp), "events/s", "multi-producer ring, 3 producers on one CPU");
  fig.add("rate_3to1_moodycamel", median(mpm), "events/s", "ConcurrentQueue, producer tokens, bulk dequeue");
  fig.add("ratio_3to1_moodycamel_vs_ring", median(mpm) / median(mp), "ratio", "ingress: moodycamel if >= ~1");
  progress("three-to-one");
  }

  // Sharded 1 -> N.
  if (part("sharded")) {
  const int work = 200;
  fig.config("sharded_work", std::to_string(work) + " dependent multiply-adds per handled event, 1024 keys");
  const size_t max_workers = std::max<size_t>(2, pl.cpus.size() > 1 ? pl.cpus.size() - 1 : 1);
  std::vector<int> ns;
  for (int w = 1; static_cast<size_t>(w) <= max_workers; w *= 2) ns.push_back(w);
  if (static_cast<size_t>(ns.back()) != max_workers) ns.push_back(static_cast<int>(max_workers));
  double one = 0;
  Series vs_workers(args.data_dir, "bus-throughput_vs_workers",
                    "bus: sharded 1 -> N, throughput vs workers; one producer, median of 3, " +
                        std::to_string(pl.cpus.size()) + " CPUs; ideal = N x the one-worker rate",
                    {"workers", "events_per_s", "ideal_N_x_rate_1"});
  vs_workers.note("ylabel: events/s");
  for (int w : ns) {
    std::vector<double> rates;
    for (int rep = 0; rep < 3; ++rep) rates.push_back(sharded(pl, n(2'000'000), w, work).events_per_s);
    const double r = median(rates);
    if (w == 1) one = r;
    vs_workers.row({static_cast<double>(w), r, w * one});
    const std::string sfx = "_n" + std::to_string(w);
    const bool shares = pl.cpus.size() < static_cast<size_t>(w) + 1;
    fig.add("sharded_rate" + sfx, r, "events/s", shares ? "a worker shares the producer's CPU" : "");
    fig.add("sharded_efficiency" + sfx, r / (w * one), "ratio",
            w == 8 ? "target >= 0.75" : "rate(N) / (N x rate(1))");
  }
  progress("sharded");
  }

  fig.print_table();
  if (!args.json_path.empty() && !fig.write_json(args.json_path, "bus")) return 1;
  return 0;
}

}  // namespace sluice::bench
