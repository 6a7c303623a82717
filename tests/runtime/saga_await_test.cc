// Await steps (choreography): a step completed by a later event of the log correlated to the
// saga by its id: success and failure by event, timeout, events of other sagas or from before
// the step began, an event that arrived while the agent was stopped, and replay safety.
#include <gtest/gtest.h>

#include <time.h>

#include <atomic>
#include <thread>

#include "runtime/saga_test_util.h"

namespace sluice {
namespace {

struct PaymentSucceeded {
  std::string order_id;
};
struct PaymentFailed {
  std::string order_id;
  std::string reason;
};

}  // namespace
}  // namespace sluice

template <>
struct sluice::serialization::EventTraits<sluice::PaymentSucceeded> {
  using T = sluice::PaymentSucceeded;
  static constexpr std::string_view name = "test.PaymentSucceeded";
  static constexpr uint16_t version = 1;
  static constexpr auto fields = std::make_tuple(field("order_id", &T::order_id));
};
template <>
struct sluice::serialization::EventTraits<sluice::PaymentFailed> {
  using T = sluice::PaymentFailed;
  static constexpr std::string_view name = "test.PaymentFailed";
  static constexpr uint16_t version = 1;
  static constexpr auto fields = std::make_tuple(field("order_id", &T::order_id), field("reason", &T::reason));
};

namespace sluice {
namespace {

using testing::FakeServices;
using testing::SagaLog;
constexpr auto kWait = std::chrono::seconds(30);

std::string dir_for(const char* name) { return testing::fresh_engine_dir("saga_await", name); }

void bind_payments(SagaLog& log) {
  ASSERT_TRUE(log.registry->bind<PaymentSucceeded>(serialization::CodecId::json, log.writer.get()).ok());
  ASSERT_TRUE(log.registry->bind<PaymentFailed>(serialization::CodecId::json, log.writer.get()).ok());
}

template <class E>
void publish(SagaLog& log, const E& e) {
  auto b = log.registry->binding<E>();
  ASSERT_TRUE(b.valid());
  auto stream = log.port->stream("payments");
  ASSERT_TRUE(stream.ok());
  serialization::EncodeBuffer buf;
  auto d = b.encode(e, buf);
  ASSERT_TRUE(d.ok());
  const AppendResult a = log.port->append(stream.value(), ExpectedVersion::any(), std::span<const EventData>(&d.value(), 1));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(log.port->wait_acknowledged(a.position).ok());
}

// "order": s0 (action), pay (await PaymentSucceeded / PaymentFailed; compensation undo1),
// s2 (action).
SagaType order_type(FakeServices& svc, SagaStepOptions pay = SagaType::await_options()) {
  SagaType t("order");
  t.step("s0", svc.action(0, false), svc.action(0, true), testing::fast_steps())
      .await_step<PaymentSucceeded>(
          "pay", [](const PaymentSucceeded& e) -> std::optional<std::string> { return e.order_id; },
          [](const PaymentSucceeded&) { return StepResult::ok(); }, svc.action(1, true), pay)
      .also_on<PaymentFailed>([](const PaymentFailed& e) -> std::optional<std::string> { return e.order_id; },
                              [](const PaymentFailed& e) { return StepResult::fail("payment failed: " + e.reason); })
      .step("s2", svc.action(2, false), svc.action(2, true), testing::fast_steps());
  return t;
}

// Waits (not a timing assertion) until the saga's await step has been attempted.
bool awaiting(const SagaLog& log, const std::string& id) {
  for (int i = 0; i < 30000; ++i) {
    const auto sagas = log.sagas();
    for (const SagaState& s : sagas)
      if (s.id == id && s.in_flight && s.step == 1 && !s.compensating) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

bool finished(const SagaLog& log, const std::string& id) {
  for (int i = 0; i < 30000; ++i) {
    for (const SagaState& s : log.sagas())
      if (s.id == id && s.finished()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

TEST(SagaAwait, SucceedsOnItsEventAndIgnoresOthersAndEarlierOnes) {
  SagaLog log;
  log.open(dir_for("ok"));
  bind_payments(log);
  FakeServices svc;
  auto agent = log.agent({order_type(svc)});
  ASSERT_TRUE(agent->start().ok());
  publish(log, PaymentFailed{"a", "before the saga began"});  // earlier than the step: ignored
  ASSERT_EQ(agent->start_saga("order", "a", ""), SagaStartCode::started);
  ASSERT_TRUE(awaiting(log, "a"));
  publish(log, PaymentFailed{"zz", "another order"});  // another saga id: ignored
  publish(log, PaymentSucceeded{"a"});
  publish(log, PaymentFailed{"a", "after the decision"});  // the first matching event decided
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.calls("a"), (std::vector<std::string>{"do0", "do2"}));
  const SagaState s = log.saga("order", "a");
  EXPECT_EQ(s.status, SagaStatus::completed);
  EXPECT_EQ(s.completed_steps, 3u);
  EXPECT_EQ(agent->stats().steps_succeeded, 3u);
}

TEST(SagaAwait, AFailureEventCompensatesTheCompletedStepsInReverseAndLeavesOtherSagasWaiting) {
  SagaLog log;
  log.open(dir_for("fail"));
  bind_payments(log);
  FakeServices svc;
  SagaType t("order");
  t.step("s0", svc.action(0, false), svc.action(0, true), testing::fast_steps())
      .step("s1", svc.action(1, false), svc.action(1, true), testing::fast_steps())
      .await_step<PaymentSucceeded>(
          "pay", [](const PaymentSucceeded& e) -> std::optional<std::string> { return e.order_id; },
          [](const PaymentSucceeded&) { return StepResult::ok(); }, svc.action(2, true))
      .also_on<PaymentFailed>([](const PaymentFailed& e) -> std::optional<std::string> { return e.order_id; },
                              [](const PaymentFailed& e) { return StepResult::fail("payment failed: " + e.reason); })
      .step("s3", svc.action(3, false), svc.action(3, true), testing::fast_steps());
  auto agent = log.agent({t});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_EQ(agent->start_saga("order", "a", ""), SagaStartCode::started);
  ASSERT_EQ(agent->start_saga("order", "b", ""), SagaStartCode::started);
  auto waiting_at_pay = [&](const std::string& id) {
    for (int i = 0; i < 30000; ++i) {
      for (const SagaState& s : log.sagas())
        if (s.id == id && s.in_flight && s.step == 2) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  };
  ASSERT_TRUE(waiting_at_pay("a"));
  ASSERT_TRUE(waiting_at_pay("b"));
  publish(log, PaymentFailed{"a", "card declined"});
  ASSERT_TRUE(finished(log, "a"));
  const SagaState b_mid = log.saga("order", "b");
  EXPECT_EQ(b_mid.status, SagaStatus::running) << "a's event does not complete b";
  EXPECT_TRUE(b_mid.in_flight);
  EXPECT_EQ(b_mid.step, 2u);
  publish(log, PaymentSucceeded{"b"});
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.calls("a"), (std::vector<std::string>{"do0", "do1", "undo1", "undo0"}))
      << "the failed await step itself has nothing to undo";
  const SagaState a = log.saga("order", "a");
  EXPECT_EQ(a.status, SagaStatus::compensated);
  EXPECT_NE(a.reason.find("payment failed: card declined"), std::string::npos) << a.reason;
  EXPECT_EQ(svc.calls("b"), (std::vector<std::string>{"do0", "do1", "do3"}));
  EXPECT_EQ(log.saga("order", "b").status, SagaStatus::completed);
}

TEST(SagaAwait, ATimeoutCompensatesTheCompletedStepsAndTheAwaitStep) {
  SagaLog log;
  log.open(dir_for("timeout"));
  bind_payments(log);
  FakeServices svc;
  SagaStepOptions pay = SagaType::await_options();
  pay.timeout = std::chrono::milliseconds(200);
  auto agent = log.agent({order_type(svc, pay)});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_EQ(agent->start_saga("order", "t", ""), SagaStartCode::started);
  publish(log, PaymentSucceeded{"other"});  // never the saga's own event
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  // The await step timed out: whether the payment happened is unknown, so it is undone too.
  EXPECT_EQ(svc.calls("t"), (std::vector<std::string>{"do0", "undo1", "undo0"}));
  const SagaState s = log.saga("order", "t");
  EXPECT_EQ(s.status, SagaStatus::compensated);
  EXPECT_NE(s.reason.find("timed out"), std::string::npos) << s.reason;
  EXPECT_EQ(agent->stats().timers_fired, 1u);
}

// The downtime is simulated with the agent's clock: the second agent's clock is two hours
// ahead, past the await step's one-hour timeout. The event was appended (log time) before the
// timeout, while no agent ran: the restarted agent reads it before its overdue timer fires.
int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
int64_t two_hours_later_ns() { return now_ns() + int64_t{7200} * 1'000'000'000; }

TEST(SagaAwait, AnEventThatArrivedWhileTheAgentWasStoppedCompletesTheStepAfterRestart) {
  SagaLog log;
  log.open(dir_for("restart"));
  bind_payments(log);
  SagaStepOptions pay = SagaType::await_options();
  pay.timeout = std::chrono::hours(1);
  {
    FakeServices svc;
    auto agent = log.agent({order_type(svc, pay)});
    ASSERT_TRUE(agent->start().ok());
    ASSERT_EQ(agent->start_saga("order", "r", ""), SagaStartCode::started);
    ASSERT_TRUE(awaiting(log, "r"));
    agent->stop();
    EXPECT_EQ(svc.calls("r"), (std::vector<std::string>{"do0"}));
  }
  publish(log, PaymentSucceeded{"r"});  // no agent runs
  log.close();
  log.open(log.dir);
  bind_payments(log);
  FakeServices svc;
  SagaAgentOptions later;
  later.clock_ns = two_hours_later_ns;
  auto agent = log.agent({order_type(svc, pay)}, later);
  ASSERT_TRUE(agent->start().ok());
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.calls("r"), (std::vector<std::string>{"do2"})) << "resumes after the await step";
  EXPECT_EQ(log.saga("order", "r").status, SagaStatus::completed);
  EXPECT_EQ(agent->stats().timers_fired, 0u) << "the event in the log decided, not the overdue timer";
}

// After a restart the agent reads the whole log again: an event of the saga's id from before
// its step began (here: the log of a saga waiting in the await step, written by hand with a
// PaymentFailed before its step_attempted) is not taken for the step's outcome.
TEST(SagaAwait, AfterARestartAnEventFromBeforeTheStepBeganIsIgnored) {
  SagaLog log;
  log.open(dir_for("before"));
  bind_payments(log);
  auto binding = log.registry->binding<SagaEvent>();
  auto stream = log.port->stream(saga_stream_name("order", "e"));
  ASSERT_TRUE(stream.ok());
  auto append = [&](SagaEventKind kind, uint32_t step) {
    SagaEvent e;
    e.kind = static_cast<uint8_t>(kind);
    e.step = step;
    e.attempt = kind == SagaEventKind::started ? 0 : 1;
    e.saga_type = "order";
    e.saga_id = "e";
    if (kind == SagaEventKind::started) e.due_ns = now_ns();
    serialization::EncodeBuffer buf;
    auto d = binding.encode(e, buf);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(log.port->append(stream.value(), ExpectedVersion::any(), std::span<const EventData>(&d.value(), 1)).ok());
  };
  append(SagaEventKind::started, 0);
  append(SagaEventKind::step_attempted, 0);
  append(SagaEventKind::step_succeeded, 0);
  publish(log, PaymentFailed{"e", "from before the step"});
  append(SagaEventKind::step_attempted, 1);
  const SagaState before = log.saga("order", "e");
  ASSERT_TRUE(before.in_flight);
  ASSERT_EQ(before.step, 1u);
  FakeServices svc;
  auto agent = log.agent({order_type(svc)});
  ASSERT_TRUE(agent->start().ok());
  publish(log, PaymentSucceeded{"e"});
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.calls("e"), (std::vector<std::string>{"do2"}));
  EXPECT_EQ(log.saga("order", "e").status, SagaStatus::completed);
}

// The log decides between an event and the timeout: an event whose log time is past the
// attempt's due time does not count, even when read before the timer fires. (The first agent's
// clock runs two hours behind the log's, so its one-hour timeout is due an hour before the
// event's log time; the restarted agent, on the log's clock, reads the event first, ignores
// it, and the overdue timeout fires.)
int64_t two_hours_earlier_ns() { return now_ns() - int64_t{7200} * 1'000'000'000; }

TEST(SagaAwait, AnEventPastTheTimeoutDoesNotCount) {
  SagaLog log;
  log.open(dir_for("late"));
  bind_payments(log);
  SagaStepOptions pay = SagaType::await_options();
  pay.timeout = std::chrono::hours(1);
  {
    FakeServices svc;
    SagaAgentOptions earlier;
    earlier.clock_ns = two_hours_earlier_ns;
    auto agent = log.agent({order_type(svc, pay)}, earlier);
    ASSERT_TRUE(agent->start().ok());
    ASSERT_EQ(agent->start_saga("order", "l", ""), SagaStartCode::started);
    ASSERT_TRUE(awaiting(log, "l"));
    agent->stop();
  }
  publish(log, PaymentSucceeded{"l"});
  log.close();
  log.open(log.dir);
  bind_payments(log);
  FakeServices svc;
  auto agent = log.agent({order_type(svc, pay)});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.calls("l"), (std::vector<std::string>{"undo1", "undo0"}));
  const SagaState s = log.saga("order", "l");
  EXPECT_EQ(s.status, SagaStatus::compensated);
  EXPECT_NE(s.reason.find("timed out"), std::string::npos) << s.reason;
}

// An await step with a request: the request runs once the step began, so even a reply
// published from inside the request (the fastest possible service) counts; a request that
// fails is a failed attempt (the saga compensates the completed steps).
TEST(SagaAwait, ARequestSentByTheStepIsAnsweredOrItsFailureCompensates) {
  SagaLog log;
  log.open(dir_for("request"));
  bind_payments(log);
  FakeServices svc;
  SagaAction ask = svc.action(1, false);
  std::atomic<int> publish_errors{0};
  SagaType t("order");
  t.step("s0", svc.action(0, false), svc.action(0, true), testing::fast_steps())
      .await_step<PaymentSucceeded>(
          "pay", [](const PaymentSucceeded& e) -> std::optional<std::string> { return e.order_id; },
          [](const PaymentSucceeded&) { return StepResult::ok(); }, svc.action(1, true))
      .request([&](const SagaContext& c) {
        (void)ask(c);  // records "do1"
        if (c.saga_id == "no") return StepResult::fail("payment service refused");
        auto b = log.registry->binding<PaymentSucceeded>();
        auto stream = log.port->stream("payments");
        serialization::EncodeBuffer buf;
        auto d = b.encode(PaymentSucceeded{std::string(c.saga_id)}, buf);
        if (!stream.ok() || !d.ok() ||
            !log.port->append(stream.value(), ExpectedVersion::any(), std::span<const EventData>(&d.value(), 1)).ok())
          publish_errors.fetch_add(1);
        return StepResult::ok();
      })
      .step("s2", svc.action(2, false), svc.action(2, true), testing::fast_steps());
  auto agent = log.agent({t});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_EQ(agent->start_saga("order", "yes", ""), SagaStartCode::started);
  ASSERT_EQ(agent->start_saga("order", "no", ""), SagaStartCode::started);
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(publish_errors.load(), 0);
  EXPECT_EQ(svc.calls("yes"), (std::vector<std::string>{"do0", "do1", "do2"}));
  EXPECT_EQ(log.saga("order", "yes").status, SagaStatus::completed);
  EXPECT_EQ(svc.calls("no"), (std::vector<std::string>{"do0", "do1", "undo0"}));
  const SagaState no = log.saga("order", "no");
  EXPECT_EQ(no.status, SagaStatus::compensated);
  EXPECT_NE(no.reason.find("payment service refused"), std::string::npos) << no.reason;
}

TEST(SagaAwait, ReplayingTheLogPerformsNoAction) {
  SagaLog log;
  log.open(dir_for("replay"));
  bind_payments(log);
  {
    FakeServices svc;
    auto agent = log.agent({order_type(svc)});
    ASSERT_TRUE(agent->start().ok());
    for (const char* id : {"p", "q"}) {
      ASSERT_EQ(agent->start_saga("order", id, ""), SagaStartCode::started);
      ASSERT_TRUE(awaiting(log, id));
    }
    publish(log, PaymentSucceeded{"p"});
    publish(log, PaymentFailed{"q", "declined"});
    ASSERT_TRUE(agent->wait_idle(kWait));
    agent->stop();
    EXPECT_EQ(svc.calls("p"), (std::vector<std::string>{"do0", "do2"}));
    EXPECT_EQ(svc.calls("q"), (std::vector<std::string>{"do0", "undo0"}));
  }
  // Restart: every saga is finished; the payment events are read again and complete nothing.
  log.close();
  log.open(log.dir);
  bind_payments(log);
  FakeServices svc;
  auto agent = log.agent({order_type(svc)});
  ASSERT_TRUE(agent->start().ok());
  ASSERT_TRUE(agent->wait_idle(kWait));
  agent->stop();
  EXPECT_EQ(svc.total_calls(), 0u);
  EXPECT_EQ(agent->stats().completed, 1u);
  EXPECT_EQ(agent->stats().compensated, 1u);
  EXPECT_EQ(agent->stats().running, 0u);
  EXPECT_EQ(log.saga("order", "p").status, SagaStatus::completed);
  EXPECT_EQ(log.saga("order", "q").status, SagaStatus::compensated);
}

TEST(SagaAwait, RefusesAnUnboundEventAndAlsoOnWithoutAnAwaitStep) {
  SagaLog log;
  log.open(dir_for("unbound"));
  FakeServices svc;
  auto a = SagaAgent::open(*log.port, *log.registry, {order_type(svc)});
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().to_string().find("test.PaymentSucceeded"), std::string::npos) << a.status().to_string();
  bind_payments(log);
  SagaType misuse("order");
  misuse.step("s0", svc.action(0, false))
      .also_on<PaymentFailed>([](const PaymentFailed& e) -> std::optional<std::string> { return e.order_id; },
                              [](const PaymentFailed&) { return StepResult::fail("no"); });
  auto b = SagaAgent::open(*log.port, *log.registry, {misuse});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().to_string().find("follows no await step"), std::string::npos) << b.status().to_string();
}

}  // namespace
}  // namespace sluice
