// sluice bench <suite> [--json FILE] [--dir DIR] [--cpus 0,1] [--scale X]
#include <string>

#include "commands.h"
#include "suites.h"

namespace sluice::tools {

void add_bench(CLI::App& app, int* exit_code) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks with same-run baselines");
  bench->require_subcommand(1);
  for (const bench::Suite& s : bench::kSuites) {
    auto args = std::make_shared<bench::SuiteArgs>();
    CLI::App* c = bench->add_subcommand(s.name, s.summary);
    c->add_option("--json", args->json_path, "write {\"figures\": {...}} to this file");
    c->add_option("--dir", args->dir, "scratch directory for files (default $TMPDIR or /tmp)");
    c->add_option("--cpus", args->cpus, "CPUs to pin threads to, in order")->delimiter(',');
    c->add_option("--scale", args->scale, "multiply the amount of work (0.1 = quick)")
        ->check(CLI::Range(0.001, 1000.0));
    auto run = s.run;
    c->callback([args, run, exit_code] { *exit_code = run(*args); });
  }
}

}  // namespace sluice::tools
