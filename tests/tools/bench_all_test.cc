// `sluice bench all` (tools/sluice/cmd_bench_all.cc): every suite run as a child process at a
// tiny scale, one merged JSON with the keys docs/performance.md describes, a missing
// prerequisite reported as skipped, bad options refused with exit 2. No figure is checked
// against a target (tests never assert on timing).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bus/log_test_util.h"
#include "tools/subprocess.h"

namespace sluice {
namespace {

using namespace sluice::testing;
using nlohmann::json;

RunResult sluice_cli(std::vector<std::string> args) {
  args.insert(args.begin(), SLUICE_CLI);
  return run(args);
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  json j = json::parse(in, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << path << " is not JSON";
  return j;
}

// SLUICE_BENCH_ALL_TEST_SCALE (default 0.0005): the multiplier of every suite's `--quick`
// scale; each suite's own floor keeps a run meaningful (its figures are still verified).
std::string test_scale() {
  const char* s = std::getenv("SLUICE_BENCH_ALL_TEST_SCALE");
  return s != nullptr ? s : "0.0005";
}

TEST(BenchAll, QuickRunWritesTheMergedJson) {
  TempDir tmp("benchall");
  const std::string out = tmp.sub("all.json");
  // --durability none: the log suite leaves out its fsync-bound parts (thousands of fsyncs at any
  // scale); every other suite still runs.
  RunResult r = sluice_cli({"bench", "all", "--quick", "--scale", test_scale(), "--durability", "none", "--dir",
                            tmp.path().string(), "--json", out});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const json j = read_json(out);
  for (const char* key : {"figures", "machine", "config", "suites", "date", "targets"})
    EXPECT_TRUE(j.contains(key)) << key;
  ASSERT_TRUE(j["figures"].is_object());
  EXPECT_FALSE(j["figures"].empty());
  for (const char* key : {"cpu", "cpus_online", "kernel", "compiler", "build_type", "scratch_filesystem",
                          "atomic_rtt_p50_ns"})
    EXPECT_TRUE(j["machine"].contains(key)) << key;
  EXPECT_GT(j["machine"]["atomic_rtt_p50_ns"].get<double>(), 0);
  EXPECT_EQ(j["config"]["quick"], true);
  EXPECT_EQ(j["config"]["workload"]["durability"], "none");
  // Every suite ran (or was skipped, saying why); none failed.
  for (const char* suite : {"log", "bus", "codec", "e2e", "e2e:order_book", "relay", "aggregate", "saga"}) {
    ASSERT_TRUE(j["suites"].contains(suite)) << suite;
    const json& s = j["suites"][suite];
    const std::string status = s["status"];
    EXPECT_TRUE(status == "ok" || status == "skipped") << suite << ": " << s.dump();
    if (status == "skipped") {
      EXPECT_FALSE(s.value("reason", "").empty()) << suite;
    }
    if (status == "ok") {
      EXPECT_FALSE(s["figures"].empty()) << suite;
      EXPECT_TRUE(j["config"]["suites"].contains(suite)) << suite;
      EXPECT_EQ(j["config"]["suites"][suite]["quick"], true) << suite;
    }
  }
  // Figure names are flat: unprefixed where unique, SUITE.name where two suites share one.
  ASSERT_EQ(j["suites"]["e2e"]["status"], "ok");
  EXPECT_TRUE(j["figures"].contains("ratio_e2e_p50_vs_atomic_rtt"));
  EXPECT_TRUE(j["figures"].contains("e2e.atomic_rtt_p50_ns"));  // e2e, aggregate and saga report it
  EXPECT_FALSE(j["figures"].contains("atomic_rtt_p50_ns"));
  // The summary names every suite.
  for (const char* suite : {"log", "bus", "codec", "e2e", "saga"}) EXPECT_NE(r.out.find(suite), std::string::npos);
  EXPECT_NE(r.out.find("targets:"), std::string::npos) << r.out;
  // The suites said where they were.
  EXPECT_NE(r.err.find("[log] "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[e2e] "), std::string::npos) << r.err;
}

TEST(BenchAll, MissingNatsServerIsSkippedNotFailed) {
  TempDir tmp("benchall");
  const std::string out = tmp.sub("relay.json");
  ::setenv("NATS_SERVER", "/nonexistent/nats-server", 1);  // the relay suite finds no server
  RunResult r = sluice_cli({"bench", "all", "--quick", "--suites", "relay", "--dir", tmp.path().string(), "--json", out});
  ::unsetenv("NATS_SERVER");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = read_json(out);
  ASSERT_TRUE(j["suites"].contains("relay")) << j.dump();
  EXPECT_EQ(j["suites"]["relay"]["status"], "skipped");
  EXPECT_NE(j["suites"]["relay"]["reason"].get<std::string>().find("nats-server"), std::string::npos);
  EXPECT_NE(r.out.find("skipped"), std::string::npos) << r.out;
  // The suite alone says so with exit 3.
  ::setenv("NATS_SERVER", "", 1);
  RunResult alone = sluice_cli({"bench", "relay", "--dir", tmp.path().string()});
  ::unsetenv("NATS_SERVER");
  EXPECT_EQ(alone.exit_code, 3) << alone.err;
  EXPECT_NE(alone.err.find("bench SKIPPED: relay: nats-server is not installed"), std::string::npos) << alone.err;
}

TEST(BenchAll, BadOptionsAreUsageErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"bench", "all", "--suites", "nosuch"},
           {"bench", "all", "--durability", "sometimes"},
           {"bench", "all", "--codec", "xml"},
           {"bench", "all", "--workload", "lottery"},
           {"bench", "log", "--payload-bytes", "0"},
           {"bench", "e2e", "--rate", "-5"},
           {"bench", "bus", "--events", "0"},
           {"bench", "e2e", "--producers", "1000"},
           {"bench", "nosuch"}}) {
    RunResult r = sluice_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args[1] << " " << args[2] << ": " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  RunResult r = sluice_cli({"bench", "all", "--suites", "nosuch"});
  EXPECT_NE(r.err.find("unknown suite 'nosuch'"), std::string::npos) << r.err;
}

TEST(BenchAll, ASuiteSaysWhichOptionItIgnores) {
  TempDir tmp("benchall");
  // The codec suite takes --codec and --events, not --rate.
  RunResult r = sluice_cli({"bench", "codec", "--scale", "0.0001", "--codec", "raw", "--rate", "1000", "--dir",
                            tmp.path().string(), "--json", tmp.sub("codec.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("sluice bench codec: ignores --rate"), std::string::npos) << r.err;
  const json j = read_json(tmp.sub("codec.json"));
  EXPECT_TRUE(j["figures"].contains("decode_raw_small")) << j.dump();
  EXPECT_FALSE(j["figures"].contains("decode_json_small")) << "--codec raw runs the raw codec only";
  EXPECT_TRUE(j["figures"]["ratio_raw_decode_vs_json_decode_medium"].is_null()) << "a ratio without its baseline is null";
}

}  // namespace
}  // namespace sluice
