// `sluice sagas DIR [--json] [--all]`: lists the unfinished and failed sagas of a log.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/saga_test_util.h"
#include "tools/subprocess.h"

namespace sluice {
namespace {

using testing::FakeServices;
using Mode = FakeServices::Mode;

TEST(SagasCli, ListsUnfinishedAndFailedSagasWithStepAttemptsAndDeadline) {
  testing::SagaLog log;
  log.open(testing::fresh_engine_dir("sagas-cli", "log"));
  {
    FakeServices svc;
    svc.script(1, false, {Mode::fail});
    svc.script(0, true, {Mode::always_retry});
    auto failing = log.agent({svc.type("pay", 2, testing::fast_steps(2))});
    ASSERT_TRUE(failing->start().ok());
    ASSERT_EQ(failing->start_saga("pay", "f", ""), SagaStartCode::started);
    ASSERT_TRUE(failing->wait_idle(std::chrono::seconds(30)));
    failing->stop();
  }
  {
    FakeServices svc;
    SagaStepOptions o = testing::fast_steps(3);
    o.retry.initial_backoff = std::chrono::hours(1);  // stays pending
    o.retry.max_backoff = std::chrono::hours(1);
    svc.script(0, false, {Mode::always_retry});
    auto waiting = log.agent({svc.type("ship", 2, o)});
    ASSERT_TRUE(waiting->start().ok());
    ASSERT_EQ(waiting->start_saga("ship", "w", ""), SagaStartCode::started);
    ASSERT_EQ(waiting->start_saga("ship", "w2", ""), SagaStartCode::started);
    for (int i = 0; i < 30000 && !(log.saga("ship", "w").timer_pending && log.saga("ship", "w2").timer_pending); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    waiting->stop();
  }
  log.close();

  auto r = testing::run({SLUICE_CLI, "sagas", log.dir, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["sagas"].size(), 3u) << r.out;
  EXPECT_EQ(j["counts"]["running"], 2);
  EXPECT_EQ(j["counts"]["compensation_failed"], 1);
  for (const auto& s : j["sagas"]) {
    if (s["id"] == "f") {
      EXPECT_EQ(s["status"], "compensation_failed");
      EXPECT_EQ(s["direction"], "compensating");
      EXPECT_EQ(s["step"], 0);
      EXPECT_EQ(s["attempts"], 2);
      EXPECT_NE(s["reason"].get<std::string>().find("compensation of step s0"), std::string::npos);
    } else {
      EXPECT_EQ(s["status"], "running");
      EXPECT_EQ(s["step"], 0);
      EXPECT_EQ(s["attempts"], 1);
      EXPECT_GT(s["next_deadline_ns"].get<int64_t>(), 0);
    }
  }
  auto text = testing::run({SLUICE_CLI, "sagas", log.dir});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("compensation_failed"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("in "), std::string::npos) << text.out;  // the next deadline, in the future
  auto all = testing::run({SLUICE_CLI, "sagas", log.dir, "--json", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(nlohmann::json::parse(all.out)["sagas"].size(), 3u);
  EXPECT_EQ(testing::run({SLUICE_CLI, "sagas", log.dir + "-missing"}).exit_code, 2);
}

}  // namespace
}  // namespace sluice
