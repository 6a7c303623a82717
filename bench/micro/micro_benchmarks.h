// The single-thread micro benchmarks, on Google Benchmark: the log's record encoder and
// decoder, CRC32C, one append, the codecs (raw, FlatBuffers, JSON; encode and decode), the
// latency histogram record and the keyed store's get/put — each beside the baseline that
// does the same work without Sluice (memcpy of the same bytes, std::unordered_map).
//
// Registered explicitly (no static BENCHMARK() objects), so that `sluice bench micro`
// (bench/micro/micro_suite.cc: figures through FiguresReporter) and the standalone
// `bench/micro` executable (benchmark_main: Google Benchmark's own flags and JSON) run the
// same list. Each benchmark keeps its result alive (DoNotOptimize/ClobberMemory) and checks
// it where that is cheap; a wrong result ends the run with SkipWithError, never a figure.
#pragma once

#include <string>

namespace sluice::bench::micro {

struct MicroOptions {
  // Minimum CPU time per benchmark, seconds; 0 leaves it to the library
  // (--benchmark_min_time, 0.5 s by default).
  double min_time_s = 0;
  // Where the append benchmark creates its logs ("" = $TMPDIR or /tmp).
  std::string dir;
};

// Registers every micro benchmark with the library (call once per process, or after
// benchmark::ClearRegisteredBenchmarks()).
void register_micro_benchmarks(const MicroOptions& options);

}  // namespace sluice::bench::micro
