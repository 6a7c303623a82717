// The standalone `bench/micro` executable: the micro benchmarks of micro_benchmarks.h under
// Google Benchmark's own main (benchmark_main), for its flags (--benchmark_filter,
// --benchmark_min_time, --benchmark_repetitions, --benchmark_format=json, --benchmark_out)
// and its table and JSON. `sluice bench micro` runs the same benchmarks as figures.
#include "micro/micro_benchmarks.h"

namespace {
// Registered before benchmark_main's main() parses the flags; no MinTime of our own, so
// --benchmark_min_time applies.
const bool registered = [] {
  sluice::bench::micro::register_micro_benchmarks(sluice::bench::micro::MicroOptions{});
  return true;
}();
}  // namespace
