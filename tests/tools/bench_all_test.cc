// `sluice bench all` (tools/sluice/cmd_bench_all.cc): every suite run as a child process at a
// tiny scale, one merged JSON with the keys docs/performance.md describes, a missing
// prerequisite reported as skipped, bad options refused with exit 2. No figure is checked
// against a target (tests never assert on timing).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
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

// SLUICE_BENCH_ALL_TEST_SUITES (default bus,codec,e2e,relay): the suites the merged-JSON test
// runs, "all" for every one. The others have fixed costs at any scale (log: fsyncs and
// sync(2); aggregate: 101 replays of 10,000 events; saga: its timers) that took the run from
// 30 s to 3 minutes on a loaded 2-CPU machine, so CI leaves them to the long mode.
std::vector<std::string> test_suites() {
  const char* s = std::getenv("SLUICE_BENCH_ALL_TEST_SUITES");
  const std::string list = s != nullptr ? s : "bus,codec,e2e,relay";
  if (list == "all") return {"log", "bus", "codec", "e2e", "relay", "aggregate", "saga"};
  std::vector<std::string> out;
  for (size_t at = 0; at <= list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    if (comma > at) out.push_back(list.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

TEST(BenchAll, QuickRunWritesTheMergedJson) {
  TempDir tmp("benchall");
  const std::string out = tmp.sub("all.json");
  // --durability none: the log suite leaves out its fsync-bound parts (thousands of fsyncs at any
  // scale); every other suite still runs.
  const std::vector<std::string> suites = test_suites();
  std::vector<std::string> args = {"bench", "all", "--quick", "--scale", test_scale(), "--durability", "none",
                                   "--dir", tmp.path().string(), "--json", out};
  if (suites.size() < 7) {
    std::string list;
    for (const std::string& x : suites) list += (list.empty() ? "" : ",") + x;
    args.insert(args.end(), {"--suites", list});
  }
  RunResult r = sluice_cli(args);
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
  // Every suite ran (or was skipped, saying why); none failed. The e2e suite ran twice.
  std::vector<std::string> runs = suites;
  if (std::find(suites.begin(), suites.end(), "e2e") != suites.end()) runs.push_back("e2e:order_book");
  for (const std::string& suite : runs) {
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
  ASSERT_TRUE(std::find(suites.begin(), suites.end(), "e2e") != suites.end()) << "the test needs the e2e suite";
  ASSERT_EQ(j["suites"]["e2e"]["status"], "ok");
  EXPECT_TRUE(j["figures"].contains("ratio_e2e_p50_vs_atomic_rtt"));
  int rtt_reporters = 0;  // e2e, relay, aggregate and saga each report atomic_rtt_p50_ns
  for (const char* s : {"e2e", "relay", "aggregate", "saga"})
    rtt_reporters += j["suites"].contains(s) && j["suites"][s]["status"] == "ok";
  if (rtt_reporters > 1) {
    EXPECT_TRUE(j["figures"].contains("e2e.atomic_rtt_p50_ns")) << j["figures"].dump();
    EXPECT_FALSE(j["figures"].contains("atomic_rtt_p50_ns"));
  } else {
    EXPECT_TRUE(j["figures"].contains("atomic_rtt_p50_ns")) << "unique names stay unprefixed";
  }
  // The summary names every suite, and each suite said where it was (a progress line).
  for (const std::string& suite : suites) {
    EXPECT_NE(r.out.find("\n" + suite + " "), std::string::npos) << suite << "\n" << r.out;
    if (j["suites"][suite]["status"] == "ok") {
      EXPECT_NE(r.err.find("[" + suite + "] "), std::string::npos) << suite;
    }
  }
  EXPECT_NE(r.out.find("targets:"), std::string::npos) << r.out;
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
