// The Prometheus histogram beside the latency summary: coarse cumulative buckets derived
// exactly from the counters file's log-linear histogram.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "sluice/stats/counters_file.h"
#include "sluice/stats/metrics_server.h"

namespace sluice {
namespace {

std::string fresh_path(const std::string& tag) {
  const auto p = std::filesystem::path(::testing::TempDir()) /
                 ("sluice_promhist_" + tag + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return (p / counters::kFileName).string();
}

TEST(PrometheusHistogram, CoarseBucketsCountExactlyTheValuesBelowEachBound) {
  const std::string path = fresh_path("coarse");
  auto f = counters::CountersFile::create(path, {.log_dir = "/x", .segment_size = 1 << 20, .slot_count = 2}).value();
  counters::Slot* s = f->allocate(counters::SlotKind::projection, "p\"q").value();
  // Values on both sides of each bound 2^(10+2i) ns.
  uint64_t sum = 0, n = 0;
  for (uint32_t i = 0; i < counters::kCoarseBuckets; ++i) {
    const uint64_t b = counters::coarse_bound_ns(i);
    for (uint64_t v : {b - 1, b}) {
      counters::record(s->histogram, v);
      sum += v;
      ++n;
    }
  }
  counters::record(s->histogram, uint64_t{1} << 40);  // beyond the last bound: only in +Inf
  sum += uint64_t{1} << 40;
  ++n;
  const counters::CoarseHistogram h = counters::coarsen(s->histogram);
  EXPECT_EQ(h.count, n);
  EXPECT_EQ(h.sum_ns, sum);
  for (uint32_t i = 0; i < counters::kCoarseBuckets; ++i)
    EXPECT_EQ(h.below[i], 2 * i + 1) << "bound " << counters::coarse_bound_ns(i);  // b-1 of bound i and all below
}

TEST(PrometheusHistogram, ExpositionHasBucketsSumAndCountBesideTheSummary) {
  const std::string path = fresh_path("text");
  auto f = counters::CountersFile::create(path, {.log_dir = "/x", .segment_size = 1 << 20, .slot_count = 2}).value();
  counters::Slot* s = f->allocate(counters::SlotKind::projection, "balances").value();
  for (uint64_t v = 1; v <= 1000; ++v) counters::record(s->histogram, v * 1000);  // 1 us .. 1 ms
  auto r = counters::CountersFile::open_read(path).value();
  const std::string text = prometheus_text(counters::read_stats(*r), 0);
  EXPECT_NE(text.find("# TYPE sluice_projection_applied_latency_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE sluice_projection_latency_seconds summary\n"), std::string::npos);
  std::map<std::string, double> buckets;  // le -> cumulative count
  std::istringstream in(text);
  double last = -1;
  for (std::string line; std::getline(in, line);) {
    const std::string prefix = "sluice_projection_applied_latency_seconds_bucket{projection=\"balances\",le=\"";
    if (line.rfind(prefix, 0) != 0) continue;
    const size_t q = line.find('"', prefix.size());
    const double v = std::stod(line.substr(line.find("} ") + 2));
    EXPECT_GE(v, last) << "cumulative: " << line;
    last = v;
    buckets[line.substr(prefix.size(), q - prefix.size())] = v;
  }
  ASSERT_EQ(buckets.size(), counters::kCoarseBuckets + 1);
  EXPECT_EQ(buckets["+Inf"], 1000);
  EXPECT_EQ(buckets["1.024e-06"], 1);       // 1000 ns only
  EXPECT_EQ(buckets["6.5536e-05"], 65);     // 1..65 us
  EXPECT_EQ(buckets["0.00104858"], 1000);   // everything is under 2^20 ns
  EXPECT_NE(text.find("sluice_projection_applied_latency_seconds_count{projection=\"balances\"} 1000\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_projection_applied_latency_seconds_sum{projection=\"balances\"} 0.5005"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace sluice
