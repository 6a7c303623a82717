// FiguresReporter: a Google Benchmark reporter that turns each run into figures of the
// `sluice bench` table and JSON (bench/common/figures.h) instead of printing the library's
// own table:
//
//   benchmark "crc32c/4096"  ──►  micro_crc32c_4096_ns           CPU ns per iteration
//                                 micro_crc32c_4096_bytes_per_s  (SetBytesProcessed)
//                                 micro_crc32c_4096_items_per_s  (SetItemsProcessed)
//                                 micro_crc32c_4096_<counter>    any other user counter
//
// With repetitions, only the median aggregate becomes figures. A run that reported an error
// (SkipWithError: its result did not verify) yields no figure; errors() lists it, and the
// suite fails.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/figures.h"

namespace sluice::bench::micro {

// "crc32c/4096" -> "micro_crc32c_4096": lower case, every character outside [a-z0-9]
// becomes '_', no repeated or trailing '_'.
std::string figure_stem(const std::string& name);

class FiguresReporter : public benchmark::BenchmarkReporter {
 public:
  // `progress`: one line per benchmark as it finishes (nullptr = silent).
  explicit FiguresReporter(Figures& figures, FILE* progress = stderr) : fig_(figures), progress_(progress) {}

  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;

  const std::vector<std::string>& errors() const noexcept { return errors_; }
  size_t benchmarks_reported() const noexcept { return reported_; }

 private:
  void add_run(const Run& run);

  Figures& fig_;
  FILE* progress_;
  std::vector<std::string> errors_;
  size_t reported_ = 0;
};

}  // namespace sluice::bench::micro
