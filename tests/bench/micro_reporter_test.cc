// The micro suite's FiguresReporter (bench/micro/figures_reporter.h): a Google Benchmark run
// becomes figures; a run whose result did not verify becomes an error and no figure.
#include "micro/figures_reporter.h"
#include "micro/micro_benchmarks.h"

#include <benchmark/benchmark.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

namespace sluice::bench::micro {
namespace {

TEST(MicroReporter, FigureStemsAreLowerCaseWordsJoinedByUnderscores) {
  EXPECT_EQ(figure_stem("crc32c/4096"), "micro_crc32c_4096");
  EXPECT_EQ(figure_stem("codec_encode/json/small"), "micro_codec_encode_json_small");
  EXPECT_EQ(figure_stem("BM_Odd--Name//8/"), "micro_bm_odd_name_8");
}

TEST(MicroReporter, EachRunBecomesNanosecondsPerOpAndItsRates) {
  benchmark::ClearRegisteredBenchmarks();
  benchmark::RegisterBenchmark("tiny_sum", [](benchmark::State& state) {
    uint64_t x = 0;
    for (auto _ : state) {
      x += static_cast<uint64_t>(state.range(0));
      benchmark::DoNotOptimize(x);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * 8);
  })->Arg(8)->MinTime(0.001);
  Figures fig;
  FiguresReporter reporter(fig, nullptr);
  EXPECT_EQ(benchmark::RunSpecifiedBenchmarks(&reporter, "^tiny_sum"), 1u);
  benchmark::ClearRegisteredBenchmarks();

  EXPECT_TRUE(reporter.errors().empty());
  EXPECT_EQ(reporter.benchmarks_reported(), 1u);
  const double ns = fig.get("micro_tiny_sum_8_ns");
  const double items = fig.get("micro_tiny_sum_8_items_per_s");
  const double bytes = fig.get("micro_tiny_sum_8_bytes_per_s");
  ASSERT_TRUE(std::isfinite(ns));
  ASSERT_TRUE(std::isfinite(items));
  ASSERT_TRUE(std::isfinite(bytes));
  EXPECT_GT(ns, 0);
  EXPECT_GT(items, 0);
  // Rates and time per op come from the same CPU time: items/s = 1e9 / ns, bytes/s = 8 x that.
  EXPECT_NEAR(items * ns / 1e9, 1.0, 1e-6);
  EXPECT_NEAR(bytes / items, 8.0, 1e-6);
}

TEST(MicroReporter, ARunThatDidNotVerifyIsAnErrorAndNoFigure) {
  benchmark::ClearRegisteredBenchmarks();
  benchmark::RegisterBenchmark("tiny_wrong", [](benchmark::State& state) {
    for (auto _ : state) {
      state.SkipWithError("sum differs");
      break;
    }
  })->MinTime(0.001);
  Figures fig;
  FiguresReporter reporter(fig, nullptr);
  benchmark::RunSpecifiedBenchmarks(&reporter, "^tiny_wrong");
  benchmark::ClearRegisteredBenchmarks();

  ASSERT_EQ(reporter.errors().size(), 1u);
  EXPECT_NE(reporter.errors()[0].find("tiny_wrong"), std::string::npos);
  EXPECT_NE(reporter.errors()[0].find("sum differs"), std::string::npos);
  EXPECT_EQ(reporter.benchmarks_reported(), 0u);
  EXPECT_TRUE(std::isnan(fig.get("micro_tiny_wrong_ns")));
}

// Every benchmark of `sluice bench micro` runs and verifies its own result (a tiny min time;
// the 1 Mi-key stores are left to the suite: building them is most of their time).
TEST(MicroReporter, EveryMicroBenchmarkRunsAndVerifies) {
  benchmark::ClearRegisteredBenchmarks();
  register_micro_benchmarks(MicroOptions{0.0005, ""});
  Figures fig;
  FiguresReporter reporter(fig, nullptr);
  const size_t ran = benchmark::RunSpecifiedBenchmarks(&reporter, "-/1048576");
  benchmark::ClearRegisteredBenchmarks();
  for (const std::string& e : reporter.errors()) ADD_FAILURE() << e;
  EXPECT_GE(ran, 25u);
  EXPECT_EQ(reporter.benchmarks_reported(), ran);
  for (const char* f : {"micro_record_encode_64_ns", "micro_memcpy_64_ns", "micro_record_decode_256_ns",
                        "micro_crc32c_4096_bytes_per_s", "micro_append_none_64_items_per_s",
                        "micro_codec_encode_json_small_ns", "micro_codec_decode_flatbuffers_medium_ns",
                        "micro_codec_decode_raw_small_ns", "micro_histogram_record_ns", "micro_keyed_store_get_1024_ns",
                        "micro_keyed_store_put_1024_ns", "micro_unordered_map_find_1024_ns"}) {
    EXPECT_TRUE(std::isfinite(fig.get(f))) << f;
    EXPECT_GT(fig.get(f), 0) << f;
  }
}

}  // namespace
}  // namespace sluice::bench::micro
