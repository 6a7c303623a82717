#include "micro/figures_reporter.h"

namespace sluice::bench::micro {

namespace {
// Lower case, every run of characters outside [a-z0-9] as one '_', none at either end.
std::string sanitize(const std::string& name) {
  std::string out;
  for (char c : name) {
    const char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9')) {
      out += l;
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}
}  // namespace

std::string figure_stem(const std::string& name) { return "micro_" + sanitize(name); }

bool FiguresReporter::ReportContext(const Context&) { return true; }

void FiguresReporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    if (run.error_occurred) {
      errors_.push_back(run.benchmark_name() + ": " + run.error_message);
      if (progress_) std::fprintf(progress_, "  micro: %s FAILED: %s\n", run.benchmark_name().c_str(), run.error_message.c_str());
      continue;
    }
    // One figure set per benchmark: the run itself, or with repetitions their median.
    const bool repeated = run.repetitions > 1;
    if (repeated ? (run.run_type != Run::RT_Aggregate || run.aggregate_name != "median")
                 : run.run_type != Run::RT_Iteration)
      continue;
    add_run(run);
  }
}

void FiguresReporter::add_run(const Run& run) {
  // function_name + args, without the min_time:/repeats:/threads: decorations.
  std::string name = run.run_name.function_name;
  if (!run.run_name.args.empty()) name += "/" + run.run_name.args;
  const std::string stem = figure_stem(name);
  double ns = run.GetAdjustedCPUTime();
  switch (run.time_unit) {
    case benchmark::kSecond: ns *= 1e9; break;
    case benchmark::kMillisecond: ns *= 1e6; break;
    case benchmark::kMicrosecond: ns *= 1e3; break;
    case benchmark::kNanosecond: break;
  }
  fig_.add(stem + "_ns", ns, "ns/op", "CPU time per iteration");
  std::string rate;
  for (const auto& [key, counter] : run.counters) {
    if (key == "items_per_second") {
      fig_.add(stem + "_items_per_s", counter.value, "items/s");
      rate = "  " + std::to_string(counter.value / 1e6).substr(0, 7) + " M items/s";
    } else if (key == "bytes_per_second") {
      fig_.add(stem + "_bytes_per_s", counter.value, "bytes/s");
      rate = "  " + std::to_string(counter.value / 1e9).substr(0, 7) + " GB/s";
    } else {
      fig_.add(stem + "_" + sanitize(key), counter.value);
    }
  }
  ++reported_;
  if (progress_) {
    std::fprintf(progress_, "  micro: %-32s %10.2f ns%s\n", name.c_str(), ns, rate.c_str());
    std::fflush(progress_);
  }
}

}  // namespace sluice::bench::micro
