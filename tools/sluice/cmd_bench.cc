// sluice-bench (run as `sluice bench <suite> [--json FILE] [--dir DIR] [--cpus 0,1] [--scale X]
// [--quick] [--data DIR] [workload options]`, `sluice bench all`, or `sluice bench plot DATA_DIR
// PLOTS_DIR`): the benchmark suites of bench/suites.h, in an executable of their own so that
// the `sluice` tool does not link them (nor SQLite, Boost and the samples they compare against).
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "bench_cli.h"
#include "commands.h"
#include "common/plots.h"
#include "suites.h"

namespace sluice::tools {

void add_suite_options(CLI::App* c, bench::SuiteArgs* args) {
  c->add_option("--json", args->json_path, "write {\"figures\": {...}} to this file");
  c->add_option("--dir", args->dir, "scratch directory for files")->default_str("$TMPDIR or /tmp");
  c->add_option("--cpus", args->cpus, "CPUs to pin threads to, in order")->delimiter(',');
  c->add_option("--scale", args->scale, "multiply the amount of work (0.1 = quick)")
      ->check(CLI::Range(0.000001, 1000.0));
  c->add_flag("--quick", args->quick, "the short mode (fewer repetitions)");
  c->add_option("--data", args->data_dir,
                "write every latency distribution (HdrHistogram .hgrm) and time series (.dat) into this directory");
  bench::Workload& w = args->workload;
  c->add_option("--rate", w.rate, "events/s offered (open loop; e2e)")
      ->check(CLI::Range(1.0, 1e9))->default_str("suite's");
  c->add_option("--events", w.events, "events per measured run")
      ->check(CLI::Range(uint64_t{1}, uint64_t{10'000'000'000}))->default_str("suite's");
  c->add_option("--payload-bytes", w.payload_bytes, "event payload size")
      ->check(CLI::Range(uint32_t{8}, uint32_t{1u << 20}))->default_str("suite's");
  c->add_option("--producers", w.producers, "submitting threads")->check(CLI::Range(1, 64))->default_str("suite's");
  c->add_option("--workers", w.workers, "projection worker threads")->check(CLI::Range(1, 64))->default_str("suite's");
  c->add_option("--durability", w.durability, "none|group|sync")
      ->check(CLI::IsMember({"none", "group", "sync"}))->default_str("suite's");
  c->add_option("--codec", w.codec, "raw|flatbuffers|json")
      ->check(CLI::IsMember({"raw", "flatbuffers", "json"}))->default_str("suite's");
  c->add_option("--workload", w.kind, "synthetic|order_book (e2e)")
      ->check(CLI::IsMember({"synthetic", "order_book"}))->default_str("synthetic");
}

}  // namespace sluice::tools

int main(int argc, char** argv) {
  using namespace sluice;
  using namespace sluice::tools;
  CLI::App app{"sluice bench: benchmarks with same-run baselines", "sluice bench"};
  app.option_defaults()->always_capture_default();
  app.require_subcommand(1);
  app.footer("Exit codes: 0 ok; 1 a suite failed; 2 usage (bad option value) or a result that does not verify; "
             "3 the suite was skipped (a prerequisite is missing). docs/performance.md: which suite takes which option.");
  int exit_code = kExitOk;
  add_bench_all(app, &exit_code);
  for (const bench::Suite& s : bench::kSuites) {
    auto args = std::make_shared<bench::SuiteArgs>();
    CLI::App* c = app.add_subcommand(s.name, s.summary);
    add_suite_options(c, args.get());
    auto run = s.run;
    c->callback([args, run, &exit_code] { exit_code = run(*args); });
  }
  // `sluice bench plot DATA_DIR PLOTS_DIR`: the plots (PNG + SVG, gnuplot) of the .hgrm and
  // .dat files a run wrote with --data.
  auto plot_dirs = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* plot = app.add_subcommand("plot", "draw the plots (gnuplot: PNG + SVG) of a --data directory");
  plot->add_option("data_dir", plot_dirs->first, "directory a suite wrote with --data")->required();
  plot->add_option("plots_dir", plot_dirs->second, "where the .png, .svg and .gp files go")->required();
  plot->callback([plot_dirs, &exit_code] {
    std::string err;
    if (!bench::write_plots(plot_dirs->first, plot_dirs->second, &err)) {
      std::fprintf(stderr, "sluice bench plot: %s\n", err.c_str());
      exit_code = 1;
    } else {
      std::printf("plots written to %s\n", plot_dirs->second.c_str());
    }
  });
  add_bench_compare(app, &exit_code);
  return run_cli(app, argc, argv, &exit_code);
}
