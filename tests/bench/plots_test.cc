// write_plots (bench/common/plots.h) on synthetic data: one PNG and one SVG per plot, not
// empty. Skipped where gnuplot is not installed.
#include "common/plots.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/histogram.h"

namespace sluice::bench {
namespace {

namespace fs = std::filesystem;

bool have_gnuplot() { return std::system("command -v gnuplot > /dev/null 2>&1") == 0; }

std::string head(const fs::path& p, size_t n) {
  std::ifstream in(p, std::ios::binary);
  std::string s(n, '\0');
  in.read(s.data(), static_cast<std::streamsize>(n));
  s.resize(static_cast<size_t>(in.gcount()));
  return s;
}

TEST(BenchPlots, DrawsPngAndSvgFromSyntheticData) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (Debian: gnuplot-nox); plots not tested";
  const fs::path root = fs::path(::testing::TempDir()) / "bench_plots_test";
  fs::remove_all(root);
  const std::string data = (root / "data").string(), out = (root / "plots").string();
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> lat(std::log(900.0), 0.5);
  for (const char* name : {"e2e-100k", "e2e-1m"}) {
    Histogram h;
    for (int i = 0; i < 50'000; ++i) h.record(static_cast<int64_t>(lat(rng)));
    write_distribution(data, name, h);
  }
  write_distribution(data, "bus-ping_pong", std::vector<double>{400, 420, 450, 900, 40'000});
  {
    Series s(data, "e2e-throughput-vs-workers", "throughput against workers", {"workers", "events_per_s", "ideal"});
    s.note("ylabel: events/s");
    for (int w = 1; w <= 4; ++w) s.row({double(w), 1e6 * w * 0.8, 1e6 * w});
  }
  {
    Series s(data, "log-append-rate", "append rate across segment rolls", {"t_s", "appends_per_s"});
    s.note("mark: 0.3 roll 1");
    s.note("mark: 0.7 roll 2");
    for (int i = 0; i < 100; ++i) s.row({i * 0.01, i % 30 == 0 ? 2e5 : 9e6});
  }
  std::string err;
  ASSERT_TRUE(write_plots(data, out, &err)) << err;
  for (const char* name : {"latency-e2e", "latency-bus", "e2e-throughput-vs-workers", "log-append-rate"}) {
    const fs::path png = fs::path(out) / (std::string(name) + ".png");
    const fs::path svg = fs::path(out) / (std::string(name) + ".svg");
    ASSERT_TRUE(fs::exists(png)) << png;
    ASSERT_TRUE(fs::exists(svg)) << svg;
    EXPECT_GT(fs::file_size(png), 1000u) << png;
    EXPECT_GT(fs::file_size(svg), 1000u) << svg;
    EXPECT_EQ(head(png, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << png;
    EXPECT_NE(head(svg, 400).find("<svg"), std::string::npos) << svg;
  }
  // The nines axis is labelled in percentiles.
  std::ifstream gp(fs::path(out) / "latency-e2e.gp");
  std::string script((std::istreambuf_iterator<char>(gp)), std::istreambuf_iterator<char>());
  EXPECT_NE(script.find("'99.9%%' 1000"), std::string::npos) << script.substr(0, 2000);
  if (!HasFailure()) fs::remove_all(root);
}

TEST(BenchPlots, NothingToDrawIsAnError) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed";
  const fs::path root = fs::path(::testing::TempDir()) / "bench_plots_empty";
  fs::create_directories(root / "data");
  std::string err;
  EXPECT_FALSE(write_plots((root / "data").string(), (root / "plots").string(), &err));
  EXPECT_NE(err.find("nothing to draw"), std::string::npos) << err;
  EXPECT_FALSE(write_plots((root / "missing").string(), (root / "plots").string(), &err));
  fs::remove_all(root);
}

}  // namespace
}  // namespace sluice::bench
