// `sluice bench compare OLD.json NEW.json [--threshold 0.05]` (in sluice-bench): the change
// of every figure between two results files; exit 1 when a figure with a target got worse
// by more than the threshold, 2 on bad input. The comparison is bench/common/compare.h's.
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "common/compare.h"

namespace sluice::tools {

void add_bench_compare(CLI::App& app, int* exit_code) {
  struct Opts {
    std::string old_path, new_path;
    double threshold = 0.05;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "compare", "the change of every figure between two results files; exit 1 when a figure with a target got worse "
                 "by more than --threshold (the regression guard, docs/performance.md)");
  c->add_option("OLD", o->old_path, "results file of the baseline (e.g. main): {\"figures\": {...}}")->required();
  c->add_option("NEW", o->new_path, "results file of the change (e.g. the branch)")->required();
  c->add_option("--threshold", o->threshold, "relative worsening that fails a figure with a target (0.05 = 5 %)")
      ->check(CLI::Range(0.0, 100.0));
  c->callback([o, exit_code] {
    const bench::CompareOutcome r = bench::compare_results_files(o->old_path, o->new_path, o->threshold);
    if (r.exit_code == bench::kCompareBadInput) {
      error_line("bench compare", r.error);
      *exit_code = kExitUsage;
      return;
    }
    std::fputs(r.table.c_str(), stdout);
    std::fflush(stdout);
    if (!r.regressions.empty()) {
      std::string names;
      for (const std::string& n : r.regressions) names += (names.empty() ? "" : ", ") + n;
      char pct[32];
      std::snprintf(pct, sizeof pct, "%g%%", o->threshold * 100);
      error_line("bench compare", std::to_string(r.regressions.size()) +
                                      " figure(s) with a target got worse by more than " + pct + ": " + names);
    }
    *exit_code = r.exit_code;
  });
}

}  // namespace sluice::tools
