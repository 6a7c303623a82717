// `sluice bench compare` (bench/common/compare.h) on crafted results files: which way is
// better comes from the targets table, only figures with a target can fail, bad input is 2.
#include "common/compare.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "common/targets.h"
#ifdef SLUICE_CLI
#include "tools/subprocess.h"
#endif

namespace sluice::bench {
namespace {

// Figures used below, with the direction the targets table gives them.
constexpr const char* kLowerBetter = "ratio_pingpong_p50_vs_atomic";  // <= 1.1
constexpr const char* kHigherBetter = "ratio_submit_2p_vs_append";    // >= 0.5

class BenchCompare : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-compare-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  // A single suite's results file with these figures.
  std::string results(const std::string& name, const std::string& figures) {
    return write(name, R"({"suite": "x", "date": "2026-11-29T00:00:00Z", "config": {"machine": "m"}, "figures": {)" +
                           figures + R"(}, "units": {}})");
  }

  std::filesystem::path dir_;
};

TEST_F(BenchCompare, TheTargetsTableNamesEachFigureOnceWithADirectionAndAValue) {
  std::set<std::string> seen;
  ASSERT_FALSE(targets().empty());
  for (const Target& t : targets()) {
    EXPECT_TRUE(seen.insert(t.figure).second) << t.figure << " is in the table twice";
    EXPECT_GT(t.value, 0) << t.figure;
    EXPECT_EQ(find_target(t.figure), &t);
  }
  ASSERT_NE(find_target(kLowerBetter), nullptr);
  EXPECT_FALSE(find_target(kLowerBetter)->at_least);
  ASSERT_NE(find_target(kHigherBetter), nullptr);
  EXPECT_TRUE(find_target(kHigherBetter)->at_least);
  EXPECT_EQ(find_target("micro_crc32c_4096_ns"), nullptr);
}

TEST_F(BenchCompare, ImprovementsInTheTargetsDirectionPass) {
  const auto o = results("old.json", R"("ratio_pingpong_p50_vs_atomic": 1.4, "ratio_submit_2p_vs_append": 0.2)");
  const auto n = results("new.json", R"("ratio_pingpong_p50_vs_atomic": 1.05, "ratio_submit_2p_vs_append": 0.6)");
  const CompareOutcome r = compare_results_files(o, n, 0.05);
  EXPECT_EQ(r.exit_code, kCompareOk) << r.table;
  EXPECT_TRUE(r.regressions.empty());
  EXPECT_NE(r.table.find("better"), std::string::npos) << r.table;
  EXPECT_EQ(r.table.find("REGRESSION"), std::string::npos) << r.table;
}

TEST_F(BenchCompare, AHigherIsBetterFigureThatFellPastTheThresholdFailsNamingIt) {
  const auto o = results("old.json", R"("ratio_submit_2p_vs_append": 0.50, "ratio_pingpong_p50_vs_atomic": 1.0)");
  const auto n = results("new.json", R"("ratio_submit_2p_vs_append": 0.40, "ratio_pingpong_p50_vs_atomic": 1.0)");
  const CompareOutcome r = compare_results_files(o, n, 0.05);
  EXPECT_EQ(r.exit_code, kCompareRegression) << r.table;
  ASSERT_EQ(r.regressions.size(), 1u);
  EXPECT_EQ(r.regressions[0], kHigherBetter);
  EXPECT_NE(r.table.find("-20.0%"), std::string::npos) << r.table;
  EXPECT_NE(r.table.find("REGRESSION"), std::string::npos) << r.table;
}

TEST_F(BenchCompare, ALowerIsBetterFigureThatRosePastTheThresholdFails) {
  const auto o = results("old.json", R"("ratio_pingpong_p50_vs_atomic": 1.00)");
  const auto n = results("new.json", R"("ratio_pingpong_p50_vs_atomic": 1.08)");
  const CompareOutcome r = compare_results_files(o, n, 0.05);
  EXPECT_EQ(r.exit_code, kCompareRegression) << r.table;
  ASSERT_EQ(r.regressions.size(), 1u);
  EXPECT_EQ(r.regressions[0], kLowerBetter);
}

TEST_F(BenchCompare, AWorseningWithinTheThresholdPasses) {
  const auto o = results("old.json", R"("ratio_submit_2p_vs_append": 0.50, "ratio_pingpong_p50_vs_atomic": 1.00)");
  const auto n = results("new.json", R"("ratio_submit_2p_vs_append": 0.49, "ratio_pingpong_p50_vs_atomic": 1.04)");
  const CompareOutcome r = compare_results_files(o, n, 0.05);
  EXPECT_EQ(r.exit_code, kCompareOk) << r.table;
  EXPECT_NE(r.table.find("same"), std::string::npos) << r.table;
  // The same files fail under a tighter threshold.
  EXPECT_EQ(compare_results_files(o, n, 0.01).exit_code, kCompareRegression);
}

TEST_F(BenchCompare, FiguresWithoutATargetAreShownButNeverFail) {
  const auto o = results("old.json", R"("micro_crc32c_4096_ns": 100, "rate_1p1c": 2e8, "gone": 1)");
  const auto n = results("new.json", R"("micro_crc32c_4096_ns": 900, "rate_1p1c": 1e7, "fresh": 2)");
  const CompareOutcome r = compare_results_files(o, n, 0.05);
  EXPECT_EQ(r.exit_code, kCompareOk) << r.table;
  EXPECT_NE(r.table.find("micro_crc32c_4096_ns"), std::string::npos);
  EXPECT_NE(r.table.find("+800.0%"), std::string::npos) << r.table;
  EXPECT_NE(r.table.find("removed"), std::string::npos) << r.table;
  EXPECT_NE(r.table.find("added"), std::string::npos) << r.table;
  EXPECT_NE(r.table.find("fresh"), std::string::npos) << r.table;
}

TEST_F(BenchCompare, ReadsTheResultsOfBenchAllAndNullFigures) {
  const auto o = write("all-old.json", R"({"figures": {"ratio_submit_2p_vs_append": 0.5, "e2e_p99": null},
      "machine": {"cpu": "x", "cores": 2}, "config": {"build": "RelWithDebInfo"}})");
  const auto n = write("all-new.json", R"({"figures": {"ratio_submit_2p_vs_append": null, "e2e_p99": 3},
      "machine": {"cpu": "x", "cores": 2}, "config": {"build": "RelWithDebInfo"}})");
  const CompareOutcome r = compare_results_files(o, n, 0.05);
  EXPECT_EQ(r.exit_code, kCompareOk) << r.table;
  EXPECT_NE(r.table.find("null"), std::string::npos) << r.table;
  EXPECT_NE(r.table.find("no value"), std::string::npos) << r.table;
}

TEST_F(BenchCompare, BadInputIsExitTwoWithTheReason) {
  const auto good = results("good.json", R"("ratio_submit_2p_vs_append": 0.5)");
  const auto missing = (dir_ / "missing.json").string();
  const auto not_json = write("bad.json", "{\"figures\": {\"a\": 1,");
  const auto no_figures = write("nofig.json", R"({"suite": "log"})");
  const auto empty = write("empty.json", R"({"figures": {}})");
  const auto text_figure = write("text.json", R"({"figures": {"a": "fast"}})");
  for (const auto& [bad, why] : {std::pair{missing, "cannot read"}, std::pair{not_json, "is not JSON"},
                                 std::pair{no_figures, "has no figures"}, std::pair{empty, "has no figures"},
                                 std::pair{text_figure, "is not a number"}}) {
    const CompareOutcome r1 = compare_results_files(bad, good, 0.05);
    EXPECT_EQ(r1.exit_code, kCompareBadInput) << bad;
    EXPECT_NE(r1.error.find(why), std::string::npos) << r1.error;
    EXPECT_NE(r1.error.find(bad), std::string::npos) << r1.error;
    EXPECT_EQ(compare_results_files(good, bad, 0.05).exit_code, kCompareBadInput) << bad;
  }
}

#ifdef SLUICE_CLI
TEST_F(BenchCompare, TheCommandExitsOneNamingTheRegressionTwoOnBadInputZeroOtherwise) {
  const auto o = results("old.json", R"("ratio_submit_2p_vs_append": 0.50)");
  const auto worse = results("worse.json", R"("ratio_submit_2p_vs_append": 0.40)");
  const auto same = results("same.json", R"("ratio_submit_2p_vs_append": 0.49)");

  auto r = sluice::testing::run({SLUICE_CLI, "bench", "compare", o, worse});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(kHigherBetter), std::string::npos) << r.err;
  EXPECT_NE(r.out.find(kHigherBetter), std::string::npos) << r.out;

  r = sluice::testing::run({SLUICE_CLI, "bench", "compare", o, same});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = sluice::testing::run({SLUICE_CLI, "bench", "compare", o, worse, "--threshold", "0.25"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  r = sluice::testing::run({SLUICE_CLI, "bench", "compare", o, (dir_ / "missing.json").string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot read"), std::string::npos) << r.err;
  r = sluice::testing::run({SLUICE_CLI, "bench", "compare", o, write("bad.json", "not json")});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  r = sluice::testing::run({SLUICE_CLI, "bench", "compare", o});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;  // NEW missing: usage
}
#endif

}  // namespace
}  // namespace sluice::bench
