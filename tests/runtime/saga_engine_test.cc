// Sagas on the engine: a step that executes a command through a Repository with the
// saga's deterministic idempotency key, and the agent's counters in the stats file.
#include <gtest/gtest.h>

#include "bank_account.h"
#include "runtime/engine_test_util.h"
#include "sluice/runtime/repository.h"
#include "sluice/runtime/saga.h"
#include "sluice/stats/counters_file.h"
#include "sluice/stats/metrics_server.h"

namespace sluice {
namespace {

using bank::BankAccount;
using bank::Deposit;
using bank::Withdraw;

TEST(SagaEngine, StepsRunCommandsWithTheSagasKeysAndTheCountersReachTheStatsFile) {
  const std::string dir = testing::fresh_engine_dir("saga-engine", "stats");
  EngineOptions o = testing::small_engine_options();
  o.worker_cpus = {-1};
  o.writer = WriterMode::ingress;
  auto e = Engine::open(dir, o).value();
  ASSERT_TRUE(e->bind<bank::Deposited>(serialization::CodecId::raw).ok());
  ASSERT_TRUE(e->bind<bank::Withdrawn>(serialization::CodecId::raw).ok());
  ASSERT_TRUE(bind_saga_events(*e).ok());
  ASSERT_TRUE(e->start().ok());
  {
    auto repo = Repository<BankAccount>::open(*e, bank::account_type()).value();
    const StreamId from = repo->stream("account-1").value();
    const StreamId to = repo->stream("account-2").value();
    ASSERT_TRUE(repo->execute(from, Deposit{1, 100, 1}).ok());
    // transfer: withdraw from 1 (undo: deposit back), deposit to 2.
    SagaType transfer("transfer");
    transfer.step(
        "withdraw",
        [&](const SagaContext& c) {
          return step_result_of(repo->execute(from, Withdraw{1, std::stoll(std::string(c.data)), 1},
                                              CommandOptions::keyed(c.key)));
        },
        [&](const SagaContext& c) {
          return step_result_of(repo->execute(from, Deposit{1, std::stoll(std::string(c.data)), 1},
                                              CommandOptions::keyed(c.key)));
        });
    transfer.step("deposit", [&](const SagaContext& c) {
      return step_result_of(repo->execute(to, Deposit{2, std::stoll(std::string(c.data)), 1}, CommandOptions::keyed(c.key)));
    });
    auto agent = SagaAgent::open(*e, {transfer}).value();
    ASSERT_TRUE(agent->start().ok());
    ASSERT_EQ(agent->start_saga("transfer", "t1", "60"), SagaStartCode::started);
    ASSERT_EQ(agent->start_saga("transfer", "t2", "60"), SagaStartCode::started);  // overdraft: rejected
    ASSERT_TRUE(agent->wait_idle(std::chrono::seconds(30)));
    const SagaStats st = agent->stats();
    EXPECT_EQ(st.completed, 1u);
    EXPECT_EQ(st.compensated, 1u);
    EXPECT_EQ(repo->load(from).value().state.balance, 40);
    EXPECT_EQ(repo->load(to).value().state.balance, 60);
    agent->stop();
    ASSERT_TRUE(e->stop().ok());  // publishes the final figures while the agent lives
  }
  const counters::EngineStat st = counters::read_stats(*e->stats());
  ASSERT_EQ(st.sagas.size(), 1u);
  EXPECT_EQ(st.sagas[0].name, "transfer");
  EXPECT_EQ(st.sagas[0].completed, 1u);
  EXPECT_EQ(st.sagas[0].compensated, 1u);
  EXPECT_EQ(st.sagas[0].running, 0u);
  EXPECT_EQ(st.sagas[0].oldest_running_started_ns, 0);
  const std::string text = prometheus_text(st, 0);
  EXPECT_NE(text.find("sluice_sagas_completed{agent=\"transfer\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_sagas_compensated{agent=\"transfer\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_sagas_oldest_running_age_seconds{agent=\"transfer\"} 0"), std::string::npos) << text;
}

}  // namespace
}  // namespace sluice
