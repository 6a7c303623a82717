// `sluice bench compare OLD.json NEW.json [--threshold 0.05]`: the regression guard.
//
// Reads two results files — one suite's `--json` or `sluice bench all`'s, both with a flat
// `"figures": {name: number | null}` object — and reports every figure's old value, new
// value and relative change, the figures added and removed. Which way is better is known
// only for figures with a target (bench/common/targets.h): such a figure that got worse by
// more than the threshold (relative to its old value) is a regression. Figures without a
// target are shown and never fail.
//
// Exit codes: 0 no regression; 1 at least one regression (each named); 2 bad input (a file
// that cannot be read, is not JSON, or has no figures).
#pragma once

#include <string>
#include <vector>

namespace sluice::bench {

inline constexpr int kCompareOk = 0;
inline constexpr int kCompareRegression = 1;
inline constexpr int kCompareBadInput = 2;

struct CompareOutcome {
  int exit_code = kCompareOk;
  std::string table;                     // what to print on stdout (empty on bad input)
  std::vector<std::string> regressions;  // names of the figures that regressed
  std::string error;                     // why the input is bad (exit code 2)
};

// threshold: relative, 0.05 = 5 %.
CompareOutcome compare_results_files(const std::string& old_path, const std::string& new_path, double threshold);

}  // namespace sluice::bench
