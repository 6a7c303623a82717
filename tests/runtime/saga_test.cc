// Sagas: steps and compensations in reverse order, retries, timeouts, failed compensations,
// restart and timers across it, replay safety, parking a saga that does not fold.
#include <gtest/gtest.h>

#include <time.h>

#include <set>
#include <thread>

#include "runtime/saga_test_util.h"

namespace sluice {
namespace {

struct OrderPlaced {
  uint64_t order = 0;
  int64_t amount = 0;
};

}  // namespace
}  // namespace sluice

template <>
struct sluice::serialization::EventTraits<sluice::OrderPlaced> {
  using T = sluice::OrderPlaced;
  static constexpr std::string_view name = "test.OrderPlaced";
  static constexpr uint16_t version = 1;
  static constexpr auto fields = std::make_tuple(field("order", &T::order), field("amount", &T::amount));
};

namespace sluice {
namespace {

using testing::FakeServices;
using testing::SagaLog;
using Mode = FakeServices::Mode;
constexpr auto kWait = std::chrono::seconds(30);

std::string dir_for(const char* name) { return testing::fresh_engine_dir("saga", name); }

TEST(Saga, AllStepsSucceed) {
  SagaLog log;
  log.open(dir_for("ok"));
  FakeServices svc;
  auto agent = log.agent({svc.type("order", 3, testing::fast_steps())});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_EQ(agent->start_saga("order", "1", "input"), SagaStartCode::started);
  ASSERT_EQ(agent->start_saga("order", "1", "input"), SagaStartCode::duplicate);
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.calls("1"), (std::vector<std::string>{"do0", "do1", "do2"}));
  const SagaState s = log.saga("order", "1");
  EXPECT_EQ(s.status, SagaStatus::completed);
  EXPECT_EQ(s.data, "input");
  EXPECT_EQ(s.completed_steps, 3u);
  EXPECT_EQ(agent->stats().completed, 1u);
}

TEST(Saga, EachStepsFailureCompensatesTheCompletedStepsInReverseOrder) {
  for (uint32_t failing = 0; failing < 4; ++failing) {
    SCOPED_TRACE("failing step " + std::to_string(failing));
    SagaLog log;
    log.open(dir_for(("fail" + std::to_string(failing)).c_str()));
    FakeServices svc;
    svc.script(failing, false, {Mode::fail});
    auto agent = log.agent({svc.type("order", 4, testing::fast_steps())});
    ASSERT_TRUE(agent->start().ok());
    ASSERT_EQ(agent->start_saga("order", "7", ""), SagaStartCode::started);
    ASSERT_TRUE(agent->wait_idle(kWait));
    agent->stop();
    std::vector<std::string> want;
    for (uint32_t i = 0; i <= failing; ++i) want.push_back("do" + std::to_string(i));
    for (int i = static_cast<int>(failing) - 1; i >= 0; --i) want.push_back("undo" + std::to_string(i));
    EXPECT_EQ(svc.calls("7"), want);
    const SagaState s = log.saga("order", "7");
    EXPECT_EQ(s.status, SagaStatus::compensated);
    EXPECT_NE(s.reason.find("scripted failure"), std::string::npos) << s.reason;
  }
}

TEST(Saga, TransientFailuresAreRetriedWithFreshKeysThenSucceed) {
  SagaLog log;
  log.open(dir_for("retry"));
  FakeServices svc;
  svc.script(1, false, {Mode::retry_then_ok, 2});
  auto agent = log.agent({svc.type("order", 3, testing::fast_steps(3))});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_EQ(agent->start_saga("order", "r", ""), SagaStartCode::started);
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.calls("r"), (std::vector<std::string>{"do0", "do1", "do1", "do1", "do2"}));
  auto keys = svc.keys();
  std::set<std::pair<uint64_t, uint64_t>> distinct;
  for (const Id128& k : keys) distinct.insert({k.hi, k.lo});
  EXPECT_EQ(distinct.size(), keys.size()) << "one key per attempt";
  EXPECT_EQ(log.saga("order", "r").status, SagaStatus::completed);
  EXPECT_EQ(agent->stats().attempts_failed, 2u);
  EXPECT_EQ(agent->stats().timers_fired, 2u);
}

// inline_actions: the actions run on the agent thread; the flows are the same (success,
// a failure that compensates in reverse order, retries on the backoff timer).
TEST(Saga, InlineActionsRunTheSameFlows) {
  SagaLog log;
  log.open(dir_for("inline"));
  FakeServices svc;
  svc.script(1, false, {Mode::retry_then_ok, 1});
  svc.script(2, false, {Mode::fail});
  SagaAgentOptions o;
  o.inline_actions = true;
  auto agent = log.agent({svc.type("order", 3, testing::fast_steps(3))}, o);
  ASSERT_TRUE(agent->start().ok());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(agent->start_saga("order", "i" + std::to_string(i), ""), SagaStartCode::started);
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  for (int i = 0; i < 10; ++i) {
    const std::string id = "i" + std::to_string(i);
    SCOPED_TRACE(id);
    EXPECT_EQ(svc.calls(id), (std::vector<std::string>{"do0", "do1", "do1", "do2", "undo1", "undo0"}));
    const SagaState s = log.saga("order", id);
    EXPECT_EQ(s.status, SagaStatus::compensated);
    EXPECT_NE(s.reason.find("scripted failure"), std::string::npos) << s.reason;
  }
  EXPECT_EQ(agent->stats().compensated, 10u);
  EXPECT_EQ(agent->stats().timers_fired, 10u);
}

TEST(Saga, RetriesExhaustedCompensate) {
  SagaLog log;
  log.open(dir_for("exhausted"));
  FakeServices svc;
  svc.script(2, false, {Mode::always_retry});
  auto agent = log.agent({svc.type("order", 3, testing::fast_steps(3))});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_EQ(agent->start_saga("order", "x", ""), SagaStartCode::started);
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.calls("x"), (std::vector<std::string>{"do0", "do1", "do2", "do2", "do2", "undo1", "undo0"}));
  EXPECT_EQ(log.saga("order", "x").status, SagaStatus::compensated);
}

TEST(Saga, ATimeoutCompensatesTheCompletedStepsAndTheOneThatTimedOut) {
  SagaLog log;
  log.open(dir_for("timeout"));
  FakeServices svc;
  svc.script(1, false, {Mode::hang});
  SagaStepOptions timed = testing::fast_steps(1);
  timed.timeout = std::chrono::milliseconds(500);  // long enough for a loaded machine's undo
  SagaType t("order");
  t.step("s0", svc.action(0, false), svc.action(0, true), testing::fast_steps(1))
      .step("s1", svc.action(1, false), svc.action(1, true), timed)
      .step("s2", svc.action(2, false), svc.action(2, true), testing::fast_steps(1));
  auto agent = log.agent({t});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_EQ(agent->start_saga("order", "t", ""), SagaStartCode::started);
  ASSERT_TRUE(agent->wait_idle(kWait));
  svc.release();  // the hung call returns now: its late result is ignored
  agent->stop();
  EXPECT_EQ(svc.calls("t"), (std::vector<std::string>{"do0", "do1", "undo1", "undo0"}));
  const SagaState s = log.saga("order", "t");
  EXPECT_EQ(s.status, SagaStatus::compensated);
  EXPECT_NE(s.reason.find("timed out"), std::string::npos) << s.reason;
}

TEST(Saga, AFailingCompensationEndsInCompensationFailedWithTheReason) {
  SagaLog log;
  log.open(dir_for("compfail"));
  FakeServices svc;
  svc.script(2, false, {Mode::fail});
  svc.script(0, true, {Mode::always_retry});
  auto agent = log.agent({svc.type("order", 3, testing::fast_steps(3))});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_EQ(agent->start_saga("order", "c", ""), SagaStartCode::started);
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.calls("c"), (std::vector<std::string>{"do0", "do1", "do2", "undo1", "undo0", "undo0", "undo0"}));
  const SagaState s = log.saga("order", "c");
  EXPECT_EQ(s.status, SagaStatus::compensation_failed);
  EXPECT_NE(s.reason.find("compensation of step s0 failed after 3 attempt(s)"), std::string::npos) << s.reason;
  EXPECT_EQ(agent->stats().compensation_failed, 1u);
}

TEST(Saga, StepsWithoutCompensationAreSkippedWhenTurningBack) {
  SagaLog log;
  log.open(dir_for("nocomp"));
  FakeServices svc;
  svc.script(2, false, {Mode::fail});
  SagaType t("order");
  t.step("a", svc.action(0, false), svc.action(0, true), testing::fast_steps())
      .step("b", svc.action(1, false), {}, testing::fast_steps())
      .step("c", svc.action(2, false), svc.action(2, true), testing::fast_steps());
  auto agent = log.agent({t});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_EQ(agent->start_saga("order", "n", ""), SagaStartCode::started);
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.calls("n"), (std::vector<std::string>{"do0", "do1", "do2", "undo0"}));
  EXPECT_EQ(log.saga("order", "n").status, SagaStatus::compensated);
}

// A backoff timer pending at shutdown, due during the downtime: after the restart it fires
// at once and the saga finishes. (The downtime is simulated with the agent's clock: the
// second agent's clock is two hours ahead, past the one-hour backoff.)
int64_t two_hours_later_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec + 7200) * 1'000'000'000 + ts.tv_nsec;
}

TEST(Saga, ARestartResumesAndATimerDueDuringTheDowntimeFires) {
  SagaLog log;
  log.open(dir_for("restart"));
  {
    FakeServices svc;
    svc.script(1, false, {Mode::always_retry});
    SagaStepOptions o = testing::fast_steps(5);
    o.retry.initial_backoff = std::chrono::hours(1);
    o.retry.max_backoff = std::chrono::hours(1);
    o.retry.jitter = 0;
    auto agent = log.agent({svc.type("order", 3, o)});
    ASSERT_TRUE(agent->start().ok());
    ASSERT_EQ(agent->start_saga("order", "z", ""), SagaStartCode::started);
    // Wait for the first failure's timer to be in the log, then stop.
    for (int i = 0; i < 30000 && !log.saga("order", "z").timer_pending; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    agent->stop();
    const SagaState s = log.saga("order", "z");
    ASSERT_EQ(s.status, SagaStatus::running);
    ASSERT_TRUE(s.timer_pending);
    EXPECT_EQ(s.step, 1u);
    EXPECT_EQ(svc.calls("z"), (std::vector<std::string>{"do0", "do1"}));
  }
  log.close();
  log.open(log.dir);
  FakeServices svc;
  SagaAgentOptions later;
  later.clock_ns = two_hours_later_ns;
  auto agent = log.agent({svc.type("order", 3, testing::fast_steps(5))}, later);
  ASSERT_TRUE(agent->start().ok());
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.calls("z"), (std::vector<std::string>{"do1", "do2"})) << "resumes at step 1, not from scratch";
  EXPECT_EQ(log.saga("order", "z").status, SagaStatus::completed);
  EXPECT_EQ(agent->stats().timers_fired, 1u);
}

TEST(Saga, KeysAreDeterministicPerSagaStepAttemptAndDirection) {
  // The same saga run twice in two logs with the same start time would give the same keys;
  // here: the keys of a rerun attempt after a restart equal the first run's.
  SagaLog log;
  log.open(dir_for("keys"));
  std::vector<Id128> first;
  {
    FakeServices svc;
    svc.script(1, false, {Mode::hang});
    auto agent = log.agent({svc.type("order", 2, testing::fast_steps())});
    ASSERT_TRUE(agent->start().ok());
    ASSERT_EQ(agent->start_saga("order", "k", ""), SagaStartCode::started);
    for (int i = 0; i < 30000 && svc.calls("k").size() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // Stop the agent thread first; the hung call is released only once the agent cannot
    // record its result, as after a crash.
    std::thread releaser([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      svc.release();
    });
    agent->stop();
    releaser.join();
    first = svc.keys();
  }
  const SagaState mid = log.saga("order", "k");
  if (mid.status != SagaStatus::running) GTEST_SKIP() << "the released call was recorded before the stop";
  ASSERT_TRUE(mid.in_flight);
  log.close();
  log.open(log.dir);
  FakeServices svc;
  auto agent = log.agent({svc.type("order", 2, testing::fast_steps())});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  ASSERT_EQ(svc.calls("k"), (std::vector<std::string>{"do1"}));
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(svc.keys()[0], first[1]) << "the rerun attempt carries the same key";
  EXPECT_EQ(log.saga("order", "k").status, SagaStatus::completed);
}

TEST(Saga, ReplayingTheLogPerformsNoAction) {
  SagaLog log;
  log.open(dir_for("replay"));
  auto placed = log.registry->bind<OrderPlaced>(serialization::CodecId::raw, log.writer.get());
  ASSERT_TRUE(placed.ok());
  auto make_type = [](FakeServices& svc) {
    SagaType t = svc.type("order", 2, testing::fast_steps());
    t.start_on<OrderPlaced>([](const OrderPlaced& e) -> std::optional<std::pair<std::string, std::string>> {
      return std::make_pair(std::to_string(e.order), std::to_string(e.amount));
    });
    return t;
  };
  {
    FakeServices svc;
    svc.script(1, false, {Mode::fail});
    auto agent = log.agent({make_type(svc)});
    ASSERT_TRUE(agent->start().ok());
    auto stream = log.port->stream("orders");
    ASSERT_TRUE(stream.ok());
    for (uint64_t order = 1; order <= 3; ++order) {
      serialization::EncodeBuffer buf;
      auto d = placed.value().encode(OrderPlaced{order, 100}, buf);
      ASSERT_TRUE(d.ok());
      ASSERT_TRUE(log.port->append(stream.value(), ExpectedVersion::any(), std::span<const EventData>(&d.value(), 1)).ok());
    }
    for (int i = 0; i < 30000 && agent->stats().compensated < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_TRUE(agent->wait_idle(kWait));
    agent->stop();
    EXPECT_EQ(agent->stats().compensated, 3u);
    EXPECT_EQ(svc.calls("2"), (std::vector<std::string>{"do0", "do1", "undo0"}));
    EXPECT_EQ(log.saga("order", "2").data, "100");
  }
  // Restart: the agent folds every saga stream and reads the trigger events again; every
  // saga is finished and every trigger already has its saga, so nothing runs.
  log.close();
  log.open(log.dir);
  ASSERT_TRUE(log.registry->bind<OrderPlaced>(serialization::CodecId::raw, log.writer.get()).ok());
  FakeServices svc;
  auto agent = log.agent({make_type(svc)});
  ASSERT_TRUE(agent->start().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a few trigger polls (not asserted on)
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.total_calls(), 0u);
  EXPECT_EQ(agent->stats().compensated, 3u);
  EXPECT_EQ(agent->stats().running, 0u);
  EXPECT_EQ(log.sagas().size(), 3u);
}

TEST(Saga, ASagaThatDoesNotFoldIsParkedAndTheOthersGoOn) {
  SagaLog log;
  log.open(dir_for("park"));
  // A saga stream whose second event is out of order (a success without its attempt).
  auto binding = log.registry->binding<SagaEvent>();
  auto stream = log.port->stream(saga_stream_name("order", "bad"));
  ASSERT_TRUE(stream.ok());
  for (auto kind : {SagaEventKind::started, SagaEventKind::step_succeeded}) {
    SagaEvent e;
    e.kind = static_cast<uint8_t>(kind);
    e.saga_type = "order";
    e.saga_id = "bad";
    serialization::EncodeBuffer buf;
    auto d = binding.encode(e, buf);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(log.port->append(stream.value(), ExpectedVersion::any(), std::span<const EventData>(&d.value(), 1)).ok());
  }
  // And one of a type this agent does not know.
  {
    FakeServices svc;
    auto other = log.agent({svc.type("other", 1)});
    ASSERT_TRUE(other->start().ok());
    ASSERT_EQ(other->start_saga("other", "o", ""), SagaStartCode::started);
    other->stop();  // may or may not have run: it is parked below either way or completed
  }
  FakeServices svc;
  auto agent = log.agent({svc.type("order", 2, testing::fast_steps())});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_EQ(agent->start_saga("order", "good", ""), SagaStartCode::started);
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(log.saga("order", "good").status, SagaStatus::completed);
  const SagaState bad = log.saga("order", "bad");
  EXPECT_EQ(bad.status, SagaStatus::parked);
  EXPECT_NE(bad.reason.find("step_succeeded without its attempt"), std::string::npos) << bad.reason;
  EXPECT_GE(agent->stats().parked, 1u);
  EXPECT_TRUE(svc.calls("bad").empty());
  const SagaState o = log.saga("other", "o");
  EXPECT_TRUE(o.status == SagaStatus::parked || o.status == SagaStatus::completed) << to_string(o.status);
}

// Many sagas started from several threads at once, with transient failures, failures and
// failing compensations mixed: every saga ends, and the counters add up (TSan: the agent
// thread, the action threads and the starting threads).
TEST(Saga, ManySagasFromManyThreadsAllEnd) {
  SagaLog log;
  log.open(dir_for("many"));
  std::atomic<uint64_t> calls{0};
  auto outcome = [&calls](const SagaContext& c) {
    calls.fetch_add(1, std::memory_order_relaxed);
    const uint64_t n = std::stoull(std::string(c.saga_id));
    if (!c.compensation && n % 5 == 1 && c.step == 2) return StepResult::fail("declined");
    if (c.compensation && n % 10 == 1 && c.step == 0) return StepResult::retry("down");
    if (c.attempt <= 2 && (c.key.lo >> 7) % 4 == 0) return StepResult::retry("transient");
    return StepResult::ok();
  };
  SagaType t("many");
  for (int i = 0; i < 3; ++i) t.step("s" + std::to_string(i), outcome, outcome, testing::fast_steps(6));
  auto agent = log.agent({t});
  ASSERT_TRUE(agent->start().ok());
  constexpr int kThreads = 4, kPerThread = 40;
  std::vector<std::thread> starters;
  for (int th = 0; th < kThreads; ++th)
    starters.emplace_back([&, th] {
      for (int i = 0; i < kPerThread; ++i)
        EXPECT_EQ(agent->start_saga("many", std::to_string(th * kPerThread + i), ""), SagaStartCode::started);
    });
  for (auto& th : starters) th.join();
  ASSERT_TRUE(agent->wait_idle(kWait));
  const SagaStats st = agent->stats();
  agent->stop();
  EXPECT_EQ(st.running, 0u);
  EXPECT_EQ(st.completed + st.compensated + st.compensation_failed, uint64_t{kThreads * kPerThread});
  EXPECT_EQ(st.parked, 0u);
  EXPECT_GT(calls.load(), 0u);
  const auto sagas = log.sagas();
  ASSERT_EQ(sagas.size(), size_t{kThreads * kPerThread});
  for (const SagaState& s : sagas) {
    const uint64_t n = std::stoull(s.id);
    if (n % 5 == 1) {
      EXPECT_NE(s.status, SagaStatus::completed) << s.id;
    }
    if (s.status == SagaStatus::compensation_failed) {
      EXPECT_EQ(n % 10, 1u) << s.id << " " << s.reason;
    }
  }
}

TEST(Saga, RefusesBadDefinitions) {
  SagaLog log;
  log.open(dir_for("bad"));
  auto a = SagaAgent::open(*log.port, *log.registry, {SagaType("with-dash").step("a", {})});
  EXPECT_FALSE(a.ok());
  auto b = SagaAgent::open(*log.port, *log.registry, {SagaType("nosteps")});
  EXPECT_FALSE(b.ok());
  serialization::SchemaRegistry empty;
  auto c = SagaAgent::open(*log.port, empty, {SagaType("x").step("a", {})});
  EXPECT_FALSE(c.ok());
}

}  // namespace
}  // namespace sluice
