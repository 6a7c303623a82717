// `sluice relay` and `sluice ingest`: exit codes and one-line errors for a bad URL or an
// unreachable server, and a relay + ingest round trip with --json status lines.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "sluice/connectors/testing/nats_server.h"
#include "tools/subprocess.h"

namespace sluice::connectors {
namespace {

sluice::testing::RunResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), SLUICE_CLI);
  return sluice::testing::run(args);
}

class RelayCli : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice_relay_cli_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    log_ = dir_ + "/log";
    auto r = cli({"gen", log_, "--count", "5000", "--streams", "10", "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::string dir_, log_;
};

TEST_F(RelayCli, BadUrlIsAUsageErrorNamingTheUrl) {
  auto r = cli({"relay", log_, "--nats", "http://127.0.0.1:4222"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad NATS URL 'http://127.0.0.1:4222'"), std::string::npos) << r.err;
  r = cli({"ingest", log_ + "2", "--nats", "nats://h:99999", "--stream", "S"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("port must be a number"), std::string::npos) << r.err;
}

TEST_F(RelayCli, UnreachableServerFailsNamingIt) {
  const std::string url = "nats://127.0.0.1:" + std::to_string(testing::free_loopback_port());
  auto r = cli({"relay", log_, "--nats", url});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot connect to NATS at " + url), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(RelayCli, RelayThenIngestUntilCaughtUpWithJsonStatus) {
  SLUICE_REQUIRE_NATS_SERVER();
  testing::NatsServer server(dir_ + "/nats");
  ASSERT_TRUE(server.start());
  auto r = cli({"relay", log_, "--nats", server.url(), "--until-caught-up", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto j = nlohmann::json::parse(r.out.substr(r.out.find_last_of('{')), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["acknowledged_position"], 5000);
  EXPECT_EQ(j["lag_events"], 0);
  auto i = cli({"ingest", dir_ + "/follower", "--nats", server.url(), "--stream", "SLUICE", "--until-caught-up", "--json"});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  auto k = nlohmann::json::parse(i.out.substr(i.out.find_last_of('{')), nullptr, false);
  ASSERT_FALSE(k.is_discarded()) << i.out;
  EXPECT_EQ(k["appended"], 5000);
  EXPECT_EQ(k["parked"], 0);

}

#if defined(FOLLOWER_SAMPLE) && defined(BANK_LEDGER_SAMPLE)
// The samples end to end: bank_ledger writes the leader's log, `sluice relay` publishes it,
// `follower` ingests it and compares its three read-model digests with the leader's (exit 0
// only when all are equal).
TEST_F(RelayCli, FollowerSampleDigestsEqualTheBankLedgerLeaders) {
  SLUICE_REQUIRE_NATS_SERVER();
  testing::NatsServer server(dir_ + "/nats");
  ASSERT_TRUE(server.start());
  const std::string leader = dir_ + "/leader";
  auto b = sluice::testing::run({BANK_LEDGER_SAMPLE, "--dir", leader, "--events", "1000", "--producers", "1"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto r = cli({"relay", leader, "--nats", server.url(), "--until-caught-up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto f = sluice::testing::run({FOLLOWER_SAMPLE, "--dir", dir_ + "/follower", "--nats", server.url(), "--leader", leader});
  EXPECT_EQ(f.exit_code, 0) << f.out << f.err;
  EXPECT_EQ(std::count(f.out.begin(), f.out.end(), '\n'), 4) << f.out;
  EXPECT_EQ(f.out.find("DIFFERENT"), std::string::npos) << f.out;
}
#endif

}  // namespace
}  // namespace sluice::connectors
