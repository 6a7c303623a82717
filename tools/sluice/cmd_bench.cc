// sluice-bench (run as `sluice bench <suite> [--json FILE] [--dir DIR] [--cpus 0,1] [--scale X] [--data DIR]`,
// or `sluice bench plot DATA_DIR PLOTS_DIR`):
// the benchmark suites of bench/suites.h, in an executable of their own so that the `sluice`
// tool does not link them (nor SQLite, Boost and the samples they compare against).
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "commands.h"
#include "common/plots.h"
#include "suites.h"

int main(int argc, char** argv) {
  using namespace sluice;
  using namespace sluice::tools;
  CLI::App app{"sluice bench: benchmarks with same-run baselines", "sluice bench"};
  app.option_defaults()->always_capture_default();
  app.require_subcommand(1);
  int exit_code = kExitOk;
  for (const bench::Suite& s : bench::kSuites) {
    auto args = std::make_shared<bench::SuiteArgs>();
    CLI::App* c = app.add_subcommand(s.name, s.summary);
    c->add_option("--json", args->json_path, "write {\"figures\": {...}} to this file");
    c->add_option("--dir", args->dir, "scratch directory for files")->default_str("$TMPDIR or /tmp");
    c->add_option("--cpus", args->cpus, "CPUs to pin threads to, in order")->delimiter(',');
    c->add_option("--scale", args->scale, "multiply the amount of work (0.1 = quick)")
        ->check(CLI::Range(0.001, 1000.0));
    c->add_option("--data", args->data_dir,
                  "write every latency distribution (HdrHistogram .hgrm) and time series (.dat) into this directory");
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
  return run_cli(app, argc, argv, &exit_code);
}
