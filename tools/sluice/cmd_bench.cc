// sluice-bench (run as `sluice bench <suite> [--json FILE] [--dir DIR] [--cpus 0,1] [--scale X]`):
// the benchmark suites of bench/suites.h, in an executable of their own so that the `sluice`
// tool does not link them (nor SQLite, Boost and the samples they compare against).
#include <memory>
#include <string>

#include "commands.h"
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
    c->add_flag("--quick", args->quick, "the short mode");  // bench-micro; bench-harness adds the same
    auto run = s.run;
    c->callback([args, run, &exit_code] { exit_code = run(*args); });
  }
  add_bench_compare(app, &exit_code);
  return run_cli(app, argc, argv, &exit_code);
}
