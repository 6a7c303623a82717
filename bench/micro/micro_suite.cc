// sluice bench micro: the single-thread micro benchmarks of bench/micro/micro_benchmarks.h,
// run in this process by Google Benchmark, each run turned into figures (FiguresReporter).
//
//   register_micro_benchmarks(min time) ─► benchmark::RunSpecifiedBenchmarks(FiguresReporter)
//                                                  │ one Run per benchmark
//                                                  ▼
//                           Figures: micro_<name>_ns, _items_per_s / _bytes_per_s
//                           + same-run ratios against the baselines (memcpy, unordered_map)
//
// Minimum CPU time per benchmark: 0.2 s (--quick: 0.01 s), times --scale. --cpus N pins this
// thread to CPU N. Beside the figures: the machine load before and after, and the bare
// atomic round trip (two threads, on --cpus or CPUs 0 and 1) as the state of the machine.
// For Google Benchmark's own flags and JSON, run the standalone `bench/micro` executable.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "common/figures.h"
#include "micro/figures_reporter.h"
#include "micro/micro_benchmarks.h"
#include "suites.h"

namespace sluice::bench {
namespace {

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  if (!(f >> a >> b >> c)) return "unknown";
  return a + " " + b + " " + c;
}

// rate(x) / rate(y) from the figures' ns per op: y_ns / x_ns; nothing when either is absent
// (a filtered or failed run).
void add_ratio(Figures& fig, const std::string& name, const std::string& x, const std::string& y,
               const std::string& note) {
  const double xs = fig.get(x + "_ns"), ys = fig.get(y + "_ns");
  if (std::isfinite(xs) && std::isfinite(ys) && xs > 0) fig.add(name, ys / xs, "ratio", note);
}

}  // namespace

int run_micro_suite(const SuiteArgs& args) {
  Figures fig;
  const double min_time = std::max(0.001, (args.quick ? 0.01 : 0.2) * args.scale);
  const std::string machine = machine_description(args.dir.empty() ? "/tmp" : args.dir);
  if (!args.cpus.empty() && !pin_this_thread(args.cpus[0]))
    std::fprintf(stderr, "sluice bench micro: cannot pin to CPU %d; running unpinned\n", args.cpus[0]);
  fig.config("machine", machine);
  fig.config("cpus", args.cpus.empty() ? "unpinned" : std::to_string(args.cpus[0]));
  fig.config("scale", std::to_string(args.scale));
  fig.config("quick", args.quick ? "yes" : "no");
  fig.config("method", "Google Benchmark, one thread; CPU time per iteration; min time " + std::to_string(min_time) +
                           " s per benchmark; rates are items or bytes per CPU second");
  fig.config("load_before", load_average());
  std::printf("sluice bench micro — %s\n", machine.c_str());
  std::fflush(stdout);

  benchmark::ClearRegisteredBenchmarks();
  micro::register_micro_benchmarks(micro::MicroOptions{min_time, args.dir});
  micro::FiguresReporter reporter(fig);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::ClearRegisteredBenchmarks();
  if (!reporter.errors().empty()) {
    std::string all;
    for (const std::string& e : reporter.errors()) all += "\n  " + e;
    bench_fail("micro: %zu benchmark(s) did not verify:%s", reporter.errors().size(), all.c_str());
  }
  if (reporter.benchmarks_reported() == 0) bench_fail("micro: no benchmark ran");

  for (const char* n : {"64", "256", "4096"})
    add_ratio(fig, std::string("ratio_micro_record_encode_vs_memcpy_") + n, std::string("micro_record_encode_") + n,
              std::string("micro_memcpy_") + n, "encode + CRC + commit vs copying the same record bytes");
  for (const char* n : {"1024", "1048576"}) {
    add_ratio(fig, std::string("ratio_micro_keyed_store_get_vs_unordered_map_") + n,
              std::string("micro_keyed_store_get_") + n, std::string("micro_unordered_map_find_") + n,
              "seqlock read vs std::unordered_map::find, same keys and order");
    add_ratio(fig, std::string("ratio_micro_keyed_store_put_vs_unordered_map_") + n,
              std::string("micro_keyed_store_put_") + n, std::string("micro_unordered_map_assign_") + n,
              "seqlock write vs std::unordered_map assignment");
  }

  // The state of the machine beside the figures, on a thread of its own (it pins itself).
  const int cpu_a = args.cpus.size() > 0 ? args.cpus[0] : 0;
  const int cpu_b = args.cpus.size() > 1 ? args.cpus[1] : 1;
  double rtt = 0;
  std::thread t([&] { rtt = atomic_rtt_p50(cpu_a, cpu_b, args.quick ? 20'000 : 200'000); });
  t.join();
  fig.add("atomic_rtt_p50_ns", rtt, "ns", "bare std::atomic ping-pong (the machine's state, not a baseline here)");
  fig.config("load_after", load_average());

  fig.print_table();
  if (!args.json_path.empty() && !fig.write_json(args.json_path, "micro")) return 1;
  return 0;
}

}  // namespace sluice::bench
