// The benchmark latency histogram (bench/common/histogram.h): percentiles against a
// sorted-sample reference, the HdrHistogram .hgrm layout parsed back, coordinated-omission
// correction, and no allocation when recording.
#include "common/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/alloc_counter.h"

namespace sluice::bench {
namespace {

// Nearest rank, computed independently of the histogram: the smallest sample with at least
// p % of the samples at or below it.
int64_t nearest_rank(const std::vector<int64_t>& sorted, double p) {
  const double n = static_cast<double>(sorted.size());
  size_t rank = 1;
  while (rank < sorted.size() && static_cast<double>(rank) * 100.0 < p * n - 1e-9) ++rank;
  return sorted[rank - 1];
}

std::vector<int64_t> latency_like(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> body(std::log(800.0), 0.6);
  std::uniform_real_distribution<double> tail(20'000, 5'000'000);
  std::vector<int64_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>(i % 500 == 7 ? tail(rng) : body(rng));
  return v;
}

TEST(BenchHistogram, PercentilesMatchTheSortedSampleReference) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::vector<int64_t> v = latency_like(100'003, seed);
    Histogram h;
    for (int64_t x : v) h.record(x);
    std::sort(v.begin(), v.end());
    ASSERT_EQ(h.count(), v.size());
    for (double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.5, 99.9, 99.99, 100.0}) {
      const int64_t ref = nearest_rank(v, p);
      const int64_t got = h.value_at_percentile(p);
      // Exactly the reported value of the reference sample's bucket (HdrHistogram reports
      // the highest value equivalent to it) ...
      EXPECT_EQ(got, h.highest_equivalent(ref)) << "p" << p << " seed " << seed;
      // ... which is within 3 significant digits of the reference.
      EXPECT_LE(std::abs(static_cast<double>(got - ref)), 1e-3 * static_cast<double>(ref) + 1) << "p" << p;
    }
    EXPECT_EQ(h.min(), h.lowest_equivalent(v.front()));
    EXPECT_EQ(h.max(), h.highest_equivalent(v.back()));
    EXPECT_EQ(h.value_at_percentile(0), h.lowest_equivalent(v.front()));
    double mean = 0;
    for (int64_t x : v) mean += static_cast<double>(x);
    mean /= static_cast<double>(v.size());
    EXPECT_NEAR(h.mean(), mean, mean * 1e-3);
  }
}

TEST(BenchHistogram, SmallValuesAreExactAndLargeOnesKeepThreeDigits) {
  Histogram h;
  for (int64_t v = 0; v < 2048; ++v) {
    EXPECT_EQ(h.lowest_equivalent(v), v);
    EXPECT_EQ(h.highest_equivalent(v), v);
  }
  for (int64_t v : {2048LL, 10'007LL, 999'999LL, 123'456'789LL, 3'000'000'000'000LL}) {
    EXPECT_LE(h.lowest_equivalent(v), v);
    EXPECT_GE(h.highest_equivalent(v), v);
    EXPECT_LE(static_cast<double>(h.highest_equivalent(v) - h.lowest_equivalent(v)), static_cast<double>(v) / 1000);
  }
  h.record(-5);                       // counts as 0
  h.record(h.highest() + 1'000'000);  // counts as highest()
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), h.highest_equivalent(h.highest()));
}

TEST(BenchHistogram, CoordinatedOmissionCorrectionFillsTheExpectedValues) {
  // A sampler meant to take one sample every 100 ns saw one stall of 1000 ns: the stall kept
  // 9 samples from being taken, which would have seen 900, 800, ..., 100 ns.
  Histogram corrected, plain;
  corrected.record_corrected(1000, 100);
  plain.record(1000);
  EXPECT_EQ(plain.count(), 1u);
  ASSERT_EQ(corrected.count(), 10u);
  for (int i = 1; i <= 10; ++i) EXPECT_EQ(corrected.value_at_percentile(i * 10.0), i * 100) << i;
  // A sample within the interval adds nothing.
  Histogram fast;
  fast.record_corrected(80, 100);
  fast.record_corrected(100, 100);
  EXPECT_EQ(fast.count(), 2u);
  // Interval 0 (no rate offered): a plain record.
  Histogram none;
  none.record_corrected(1000, 0);
  EXPECT_EQ(none.count(), 1u);
  // Same as HdrHistogram's copyCorrectedForCoordinatedOmission example: 10 000 samples of
  // 1 ms and one of 100 s at an expected interval of 10 ms -> 10 000 + 10 000 samples.
  Histogram hdr(3'600'000'000'000);
  for (int i = 0; i < 10'000; ++i) hdr.record_corrected(1'000'000, 10'000'000);
  hdr.record_corrected(100'000'000'000, 10'000'000);
  EXPECT_EQ(hdr.count(), 20'000u);
  EXPECT_EQ(hdr.value_at_percentile(50), hdr.highest_equivalent(1'000'000));
  // The 75th percentile lands half way up the stall, ~50 s (HdrHistogram's documented figure).
  EXPECT_NEAR(static_cast<double>(hdr.value_at_percentile(75)), 50e9, 50e9 * 2e-3);
}

TEST(BenchHistogram, RecordDoesNotAllocate) {
  Histogram h;
  const uint64_t before = g_allocations.load();
  t_counting = true;
  for (int64_t v = 1; v < 1'000'000; v += 7) h.record(v * 13);
  h.record_corrected(5'000'000, 1000);
  t_counting = false;
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_GT(h.count(), 142'000u);
}

struct HgrmRow {
  double value, pct;
  uint64_t count;
  double inv;
  bool last;
};

TEST(BenchHistogram, WritesTheHdrHistogramPercentileLayout) {
  std::vector<int64_t> v = latency_like(20'000, 7);
  Histogram h;
  for (int64_t x : v) h.record(x);
  const std::string path = ::testing::TempDir() + "/bench_histogram_test.hgrm";
  std::string err;
  ASSERT_TRUE(h.write_hgrm(path, &err)) << err;
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  std::istringstream hs(line);
  std::string a, b, c, d;
  hs >> a >> b >> c >> d;
  EXPECT_EQ(a, "Value");
  EXPECT_EQ(b, "Percentile");
  EXPECT_EQ(c, "TotalCount");
  EXPECT_EQ(d, "1/(1-Percentile)");
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "");  // the header is followed by an empty line
  std::vector<HgrmRow> rows;
  std::vector<std::string> footer;
  while (std::getline(in, line)) {
    if (line.rfind("#[", 0) == 0) {
      footer.push_back(line);
      continue;
    }
    ASSERT_TRUE(footer.empty()) << "row after the footer: " << line;
    HgrmRow r{};
    std::istringstream ls(line);
    ASSERT_TRUE(ls >> r.value >> r.pct >> r.count) << line;
    r.last = !(ls >> r.inv);
    rows.push_back(r);
  }
  ASSERT_GT(rows.size(), 30u);
  // Rows rise in value, percentile and count; the last one (only) is the 100 % row.
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].last, i + 1 == rows.size()) << i;
    if (i > 0) {
      EXPECT_GE(rows[i].value, rows[i - 1].value);
      EXPECT_GE(rows[i].pct, rows[i - 1].pct);
      EXPECT_GE(rows[i].count, rows[i - 1].count);
    }
    if (!rows[i].last) {
      EXPECT_NEAR(rows[i].inv, 1.0 / (1.0 - rows[i].pct), 0.01 + 1e-6 * rows[i].inv);
    }
  }
  EXPECT_EQ(rows.front().pct, 0.0);
  EXPECT_EQ(rows.back().pct, 1.0);
  EXPECT_EQ(rows.back().count, h.count());
  // HdrHistogram's reporting levels: 0, 10, 20, ... 50 %, then 55, 60 ... (5 per halving).
  EXPECT_NEAR(rows[1].pct, 0.1, 1e-12);
  // Each row's value is the histogram's value at that percentile (file in µs, 3 decimals).
  for (const HgrmRow& r : rows)
    if (r.pct > 0 && !r.last) {
      EXPECT_NEAR(r.value, static_cast<double>(h.value_at_percentile(r.pct * 100)) / 1000.0, 0.0011) << r.pct;
    }
  EXPECT_NEAR(rows.back().value, static_cast<double>(h.max()) / 1000.0, 0.0011);
  // The footer.
  ASSERT_EQ(footer.size(), 3u);
  double mean = 0, sd = 0, max = 0;
  unsigned long long total = 0;
  int buckets = 0, sub = 0;
  EXPECT_EQ(std::sscanf(footer[0].c_str(), "#[Mean = %lf, StdDeviation = %lf]", &mean, &sd), 2) << footer[0];
  EXPECT_EQ(std::sscanf(footer[1].c_str(), "#[Max = %lf, Total count = %llu]", &max, &total), 2) << footer[1];
  EXPECT_EQ(std::sscanf(footer[2].c_str(), "#[Buckets = %d, SubBuckets = %d]", &buckets, &sub), 2) << footer[2];
  EXPECT_NEAR(mean, h.mean() / 1000, 0.0011);
  EXPECT_NEAR(sd, h.stddev() / 1000, 0.0011);
  EXPECT_NEAR(max, static_cast<double>(h.max()) / 1000, 0.0011);
  EXPECT_EQ(total, h.count());
  EXPECT_EQ(buckets, h.bucket_count());
  EXPECT_EQ(sub, 2048);
  std::remove(path.c_str());
}

TEST(BenchHistogram, EmptyHistogramWritesHeaderAndFooterOnly) {
  Histogram h;
  const std::string text = h.hgrm_text();
  EXPECT_NE(text.find("1/(1-Percentile)"), std::string::npos);
  EXPECT_NE(text.find("Total count    =            0]"), std::string::npos);
  EXPECT_EQ(h.value_at_percentile(99), 0);
}

TEST(BenchHistogram, SeriesWritesAGnuplotReadyFile) {
  const std::string dir = ::testing::TempDir() + "/bench_series_test";
  {
    Series s(dir, "rate", "append rate", {"t_s", "events_per_s"});
    s.note("mark: 0.5 roll");
    s.row({0.25, 1e6});
    s.row({0.75, 2e6});
  }
  std::ifstream in(dir + "/rate.dat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "# append rate\n# t_s events_per_s\n# mark: 0.5 roll\n0.25 1000000\n0.75 2000000\n");
  Series none("", "x", "nothing", {"a"});  // data_dir "" writes nothing
  none.row({1});
}

}  // namespace
}  // namespace sluice::bench
