// The plots of a benchmark run, drawn with Debian's gnuplot (PNG and SVG): latency
// percentile curves on a log-scaled "nines" axis, throughput against workers / producers,
// lag over time during a burst and its recovery, the append rate across segment rolls.
#pragma once

#include <string>

namespace sluice::bench {

// Reads the .hgrm distributions and .dat series the suites wrote under `data_dir` (see
// SuiteArgs::data_dir) and writes one PNG and one SVG per plot into `plots_dir`. Returns
// false and sets *error when gnuplot is missing or fails, or when there is nothing to draw.
bool write_plots(const std::string& data_dir, const std::string& plots_dir, std::string* error);

}  // namespace sluice::bench
