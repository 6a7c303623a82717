// Sagas (process managers): durable orchestration of ordered steps, each an action and a
// compensation, with per-step timeouts, retries (exponential backoff, jitter, cap) and
// compensations in reverse order of the completed steps. A saga's state is the events of its
// own stream, so a restarted process resumes every unfinished saga where it was. See
// docs/sagas.md.
//
//   sluice::SagaType order("order");
//   order.step("charge", charge_card, refund_card, {.timeout = 2s})
//        .step("reserve", reserve_stock, release_stock)
//        .await_step<Paid>("paid", order_of, paid_ok)  // completed by a correlated event
//        .step("ship", ship_order);
//   auto agent = sluice::SagaAgent::open(engine, {order}).value();
//   agent->start();                                   // resumes unfinished sagas, re-arms timers
//   agent->start_saga("order", "o-17", payload);      // or start_on<E>() from an event
//
// Design
//   Stream per saga: "saga-<type>-<id>". Every decision is an event appended with
//   ExpectedVersion::exact(the version the agent holds), so two agents never advance one
//   saga twice (the second meets a conflict and lets the saga go). An attempt is recorded
//   (step_attempted, acknowledged under the log's durability) before its action runs, so a
//   crash after the effect re-runs the same attempt with the same idempotency key
//   (SagaContext::key: from the saga, step, attempt and direction, the same on every run).
//   Threads: one agent thread owns every saga's state, the timer heap and all appends of
//   saga events; `action_threads` threads run actions and compensations and hand their
//   results back through an inbox (mutex + condition variable). A timer is an event (its
//   absolute due time, from the agent's clock when it was set, is in the event): after a
//   restart it is re-armed from the log and fires at once when overdue. A step attempt
//   that outlives its timeout counts as a failed attempt; its late result is ignored.
//   Await steps: the agent thread reads the log (one pass over new records, for start_on
//   triggers too); the first event of the step's types correlated to a saga waiting in it,
//   at a position after its step_attempted and with a log time not past its timeout,
//   decides the step. The log is read to its end before a timer fires, and from the start
//   when the agent starts, so an event that arrived during a downtime counts.
//   Recovery folds each saga stream on its own: a stream that cannot be folded is reported
//   parked with the error (load_sagas, stats, `sluice sagas`); a saga of a type this agent
//   does not know gets a `parked` event; the others go on.
//
// Thread safety: open(), start(), stop(): one controlling thread. start_saga(), stats(),
//   sagas(), wait_idle(): any thread. Actions run on the action threads, concurrently
//   for different sagas (never two at once for one saga).
//
// Invariants
//   - A saga ends `compensated` only after every compensation of its completed steps (and
//     of a step whose attempt timed out: its effect is unknown) returned ok.
//   - A compensation that keeps failing ends the saga in `compensation_failed` with the
//     reason; a saga is never left running silently (`parked` is visible too).
//   - No action runs while the log is read: recovery, `sluice sagas`, projection rebuilds
//     and replays only fold events.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_types.h"
#include "sluice/runtime/command_types.h"
#include "sluice/serialization/event_traits.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/status.h"

namespace sluice {

class AppendPort;
class Engine;
class LogWriter;
class StatsPublishers;

// ---- the saga's events ----------------------------------------------------------------------

enum class SagaEventKind : uint8_t {
  started = 1,              // data: the saga's input; due_ns: when it started (agent clock)
  step_attempted,           // step, attempt; due_ns: its timeout (0: none)
  step_succeeded,           // step, attempt
  step_failed,              // step, attempt, reason; timed_out
  timer_set,                // step, attempt (the next one); due_ns: the backoff's end
  timer_fired,              // step; due_ns: when it fired
  compensating,             // reason: why the saga turned back
  compensation_attempted,   // step, attempt; due_ns: its timeout (0: none)
  compensation_succeeded,   // step, attempt
  compensation_attempt_failed,  // step, attempt, reason
  completed,                // terminal: every step succeeded
  compensated,              // terminal: every needed compensation succeeded
  compensation_failed,      // terminal: a compensation failed past its retries (reason)
  parked,                   // terminal until an operator acts: recovery failed (reason)
};
std::string_view to_string(SagaEventKind k) noexcept;

// One record of a saga stream (codec json: `sluice inspect` shows it as a document).
struct SagaEvent {
  uint8_t kind = 0;        // SagaEventKind
  uint32_t step = 0;
  uint32_t attempt = 0;
  int64_t due_ns = 0;
  bool timed_out = false;  // step_failed: the attempt outlived its timeout
  std::string saga_type;
  std::string saga_id;
  std::string reason;
  std::string data;        // started: the saga's input
};

}  // namespace sluice

template <>
struct sluice::serialization::EventTraits<sluice::SagaEvent> {
  using T = sluice::SagaEvent;
  static constexpr std::string_view name = "sluice.SagaEvent";
  static constexpr uint16_t version = 1;
  static constexpr auto fields =
      std::make_tuple(field("kind", &T::kind), field("step", &T::step), field("attempt", &T::attempt),
                      field("due_ns", &T::due_ns), field("timed_out", &T::timed_out),
                      field("saga_type", &T::saga_type), field("saga_id", &T::saga_id),
                      field("reason", &T::reason), field("data", &T::data));
};

namespace sluice {

// Binds SagaEvent in `engine`'s registry (before Engine::start()), or in a registry of a log
// written by `writer` (nullptr: for reading only). Idempotent.
Status bind_saga_events(Engine& engine);
Status bind_saga_events(serialization::SchemaRegistry& registry, LogWriter* writer);

inline std::string saga_stream_name(std::string_view type, std::string_view id) {
  return "saga-" + std::string(type) + "-" + std::string(id);
}

// ---- the state a saga stream folds to (recovery, `sluice sagas`, tests) -----------------------

enum class SagaStatus : uint8_t { running, completed, compensated, compensation_failed, parked };
std::string_view to_string(SagaStatus s) noexcept;

struct SagaState {
  std::string type;
  std::string id;
  std::string data;
  SagaStatus status = SagaStatus::running;
  bool compensating = false;
  uint32_t step = 0;            // forward: the current step; compensating: the step being undone
  uint32_t attempt = 0;         // of the current step / compensation (0: none yet)
  uint32_t completed_steps = 0; // forward steps that succeeded (steps 0 .. completed_steps-1)
  bool current_timed_out = false;  // an attempt of the current forward step timed out
  bool in_flight = false;       // an attempt was recorded and has no result yet
  int64_t attempt_due_ns = 0;   // its timeout (0: none)
  uint64_t attempt_position = 0;  // the log position of the last step_attempted (set by the
                                  // reader of the stream, not by apply: an await step's event
                                  // counts only after it)
  bool timer_pending = false;   // a backoff timer was set and has not fired
  int64_t timer_due_ns = 0;
  int64_t started_ns = 0;
  int64_t last_event_ns = 0;    // the log's timestamp of the last event
  uint64_t version = 0;         // events of the stream
  StreamId stream = 0;          // load_sagas(): the stream's id in that log
  std::string reason;           // the last failure
  // Compensations still to run, highest step first (set by `compensating`).
  std::vector<uint32_t> to_compensate;

  // Applies the next event of the stream. Error: an event out of order (names the kind).
  Status apply(const SagaEvent& e, int64_t timestamp_ns);
  bool finished() const noexcept { return status != SagaStatus::running; }
  // The next deadline (attempt timeout or backoff timer), 0 when none.
  int64_t next_deadline_ns() const noexcept {
    return timer_pending ? timer_due_ns : (in_flight ? attempt_due_ns : 0);
  }
};

// Every saga stream of `reader`'s log folded ("saga-" streams whose first event is a
// SagaEvent). A stream that does not fold comes back parked, with the error as its reason.
// Reads only: no action runs. `registry` must have SagaEvent bound (bind_saga_events).
Result<std::vector<SagaState>> load_sagas(const LogReader& reader, const serialization::SchemaRegistry& registry);

// ---- defining a saga --------------------------------------------------------------------------

// What an action or compensation is told.
struct SagaContext {
  std::string_view saga_type;
  std::string_view saga_id;
  std::string_view data;        // the saga's input
  uint32_t step = 0;
  std::string_view step_name;
  uint32_t attempt = 1;         // 1-based
  bool compensation = false;
  // Deterministic: the same saga, step, attempt and direction give the same key on every
  // run and after a restart. hi: the saga's start in ms since the epoch (so a Repository's
  // dedupe window accepts it as an IdempotencyKey), lo: a hash of the rest.
  Id128 key;
  int64_t deadline_ns = 0;      // when the attempt times out (0: never); cooperative services stop by then
};

struct [[nodiscard]] StepResult {
  enum class Code : uint8_t {
    ok,     // done (a service answering a key it has seen with its first result counts)
    retry,  // failed, may succeed later: retried per the step's retry policy
    fail,   // failed for good: no retry (forward: the saga compensates)
  };
  Code code = Code::ok;
  std::string reason;
  static StepResult ok() { return {}; }
  static StepResult retry(std::string why) { return {Code::retry, std::move(why)}; }
  static StepResult fail(std::string why) { return {Code::fail, std::move(why)}; }
};

using SagaAction = std::function<StepResult(const SagaContext&)>;

struct SagaRetry {
  uint32_t max_attempts = 3;                        // attempts in all (1: no retry)
  std::chrono::milliseconds initial_backoff{10};    // before the 2nd attempt
  std::chrono::milliseconds max_backoff{1000};      // cap
  double multiplier = 2.0;
  double jitter = 0.2;                              // backoff x (1 - jitter x U[0,1))
};

struct SagaStepOptions {
  std::chrono::milliseconds timeout{0};             // per attempt; 0: none
  SagaRetry retry{};
  SagaRetry compensation_retry{5, std::chrono::milliseconds(10), std::chrono::milliseconds(1000), 2.0, 0.2};
};

// Maps a command's result to a step result: ok/duplicate -> ok; rejected, unknown command,
// handler failure, key collision -> fail; the rest (conflict, back-pressure, ...) -> retry.
StepResult step_result_of(const CommandResult& r);

// A saga type: its name (no '-' so that stream names parse) and ordered steps.
class SagaType {
 public:
  explicit SagaType(std::string name) : name_(std::move(name)) {}
  // compensation: empty when the step has nothing to undo.
  SagaType& step(std::string name, SagaAction action, SagaAction compensation = {}, SagaStepOptions options = {}) {
    steps_.push_back(Step{std::move(name), std::move(action), std::move(compensation), options, {}});
    return *this;
  }
  // Starts a saga from every event E in the log: `start(e)` returns {saga id, input} (the
  // correlation key is the id: one saga per key, however often the event is replayed), or
  // nullopt to ignore the event.
  template <serialization::Event E>
  SagaType& start_on(std::function<std::optional<std::pair<std::string, std::string>>(const E&)> start) {
    Trigger t;
    t.type_name = serialization::EventTraits<E>::name;
    t.resolve = matcher<E>(std::move(start));
    triggers_.push_back(std::move(t));
    return *this;
  }
  // A step completed by an event of the log instead of an action (choreography): the agent
  // records step_attempted, then waits for an event E, appended after that record, whose
  // `correlate(e)` is this saga's id (nullopt: not for any saga); `outcome(e)` decides:
  // ok -> step_succeeded, fail -> step_failed (the saga compensates), retry -> a failed
  // attempt retried per options.retry (a new attempt waits for a newer event). An event counts
  // when its log timestamp is not past the attempt's timeout; a timeout is a failed attempt
  // as for an action (by default an await step has one attempt). `compensation` is an action,
  // run when the saga turns back after this step succeeded or timed out.
  template <serialization::Event E>
  SagaType& await_step(std::string name, std::function<std::optional<std::string>(const E&)> correlate,
                       std::function<StepResult(const E&)> outcome, SagaAction compensation = {},
                       SagaStepOptions options = await_options()) {
    steps_.push_back(Step{std::move(name), {}, std::move(compensation), options, {}});
    return also_on<E>(std::move(correlate), std::move(outcome));
  }
  // The last step (an await step) also completes on events E (e.g. PaymentFailed beside
  // PaymentSucceeded); the first matching event of either type in the log decides.
  template <serialization::Event E>
  SagaType& also_on(std::function<std::optional<std::string>(const E&)> correlate,
                    std::function<StepResult(const E&)> outcome) {
    Await a;
    a.type_name = serialization::EventTraits<E>::name;
    a.resolve = matcher<E>(std::function<std::optional<std::pair<std::string, StepResult>>(const E&)>(
        [correlate = std::move(correlate), outcome = std::move(outcome)](
            const E& e) -> std::optional<std::pair<std::string, StepResult>> {
          auto id = correlate(e);
          if (!id) return std::nullopt;
          return std::make_pair(std::move(*id), outcome(e));
        }));
    if (steps_.empty() || (steps_.back().action && steps_.back().awaits.empty())) {
      error_ = "also_on<" + std::string(a.type_name) + ">() follows no await step";  // SagaAgent::open refuses
      return *this;
    }
    steps_.back().awaits.push_back(std::move(a));
    return *this;
  }
  // The last await step sends a request when it begins: `request` runs (on an action thread,
  // after step_attempted, with the attempt's key) like an action; ok: the step goes on
  // waiting for its event; retry / fail: a failed attempt, as for an action. A reply can
  // then never precede the step (a request sent by the step before could be answered before
  // this step's step_attempted, and the reply would not count).
  SagaType& request(SagaAction request) {
    if (steps_.empty() || steps_.back().awaits.empty()) {
      error_ = "request() follows no await step";
      return *this;
    }
    steps_.back().action = std::move(request);
    return *this;
  }
  // An await step's default options: no timeout, one attempt.
  static SagaStepOptions await_options() {
    SagaStepOptions o;
    o.retry.max_attempts = 1;
    return o;
  }

  // Binds an event type to a decoder and `fn` against the registry (at SagaAgent::open).
  template <class R>
  using Matcher = std::function<R(const RecordView&)>;
  template <class R>
  using Resolver = std::function<Status(const serialization::SchemaRegistry&, uint32_t& type_id, Matcher<R>&)>;
  using TriggerMatch = std::optional<std::pair<std::string, std::string>>;  // {saga id, input}
  using AwaitMatch = std::optional<std::pair<std::string, StepResult>>;     // {saga id, outcome}

  struct Await {
    std::string_view type_name;
    uint32_t type_id = 0;
    Resolver<AwaitMatch> resolve;
    Matcher<AwaitMatch> match;
  };
  struct Step {
    std::string name;
    SagaAction action;
    SagaAction compensation;
    SagaStepOptions options;
    std::vector<Await> awaits;  // an await step: completed by these events (action: its request)
    bool awaits_event() const noexcept { return !awaits.empty(); }
  };
  struct Trigger {
    std::string_view type_name;
    uint32_t type_id = 0;
    Resolver<TriggerMatch> resolve;
    Matcher<TriggerMatch> match;
  };
  const std::string& name() const noexcept { return name_; }
  const std::vector<Step>& steps() const noexcept { return steps_; }
  std::vector<Step>& steps() noexcept { return steps_; }
  std::vector<Trigger>& triggers() noexcept { return triggers_; }
  const std::vector<Trigger>& triggers() const noexcept { return triggers_; }
  // A definition error (empty: none); SagaAgent::open refuses the type.
  const std::string& error() const noexcept { return error_; }

 private:
  template <serialization::Event E, class R>
  static Resolver<R> matcher(std::function<R(const E&)> fn) {
    return [fn = std::move(fn)](const serialization::SchemaRegistry& reg, uint32_t& type_id, Matcher<R>& match) -> Status {
      auto b = reg.binding<E>();
      if (!b.valid())
        return Status(StatusCode::invalid_argument, "saga event " + std::string(serialization::EventTraits<E>::name) +
                                                        " is not bound in the schema registry");
      type_id = b.type_id();
      match = [b, fn](const RecordView& v) -> R {
        E e{};
        if (!b.decode(v.event_type(), v.schema_version(), v.codec_id(), v.payload(), &e)
                 .ok())
          return R{};
        return fn(e);
      };
      return Status();
    };
  }

  std::string name_;
  std::vector<Step> steps_;
  std::vector<Trigger> triggers_;
  std::string error_;
};

// ---- running sagas ----------------------------------------------------------------------------

struct SagaAgentOptions {
  uint32_t action_threads = 4;                      // actions and compensations at once
  // Run every action and compensation on the agent thread itself, without the hand-off to an
  // action thread and back (two thread wake-ups per step): for in-process actions that never
  // block (an aggregate command, a keyed store). An inline action that blocks stalls every
  // saga of this agent and its timers; a step timeout cannot interrupt it, and a result
  // returned after the step's deadline counts as that result (not as a timeout). It runs
  // with the agent's state lock held: it must not call sagas() (deadlock), wait_idle() or
  // stop() of this agent (stats() is fine). action_threads is then ignored.
  bool inline_actions = false;
  int64_t (*clock_ns)() = nullptr;                  // timers; nullptr: CLOCK_REALTIME (the log's clock)
  std::chrono::milliseconds trigger_poll{5};        // how often the log is read for start_on
                                                    // events and await steps' events
  // Called on the agent thread when a timer fires, with fired - due (benchmarks, tests).
  std::function<void(int64_t lateness_ns)> on_timer;
  // Called on the agent thread when a saga finishes.
  std::function<void(const SagaState&)> on_finished;
};

struct SagaStats {
  uint64_t running = 0;
  uint64_t completed = 0;
  uint64_t compensated = 0;
  uint64_t compensation_failed = 0;
  uint64_t parked = 0;
  uint64_t steps_succeeded = 0;     // forward steps, this process
  uint64_t attempts_failed = 0;     // forward attempts failed or timed out, this process
  uint64_t timers_fired = 0;
  uint64_t conflicts = 0;           // sagas let go because another agent advanced them
  int64_t oldest_running_started_ns = 0;  // 0: none running
};

enum class SagaStartCode : uint8_t { started, duplicate, unknown_type, invalid_id, failed };

class SagaAgent {
 public:
  // On a port; `registry` must have SagaEvent (and start_on events) bound and outlive the agent.
  static Result<std::unique_ptr<SagaAgent>> open(AppendPort& port, const serialization::SchemaRegistry& registry,
                                                 std::vector<SagaType> types, SagaAgentOptions options = {});
  // On the engine (WriterMode::ingress, started, SagaEvent bound with bind_saga_events before
  // start): counters go to a `saga` slot of the stats file through the engine's monitor.
  static Result<std::unique_ptr<SagaAgent>> open(Engine& engine, std::vector<SagaType> types,
                                                 SagaAgentOptions options = {});
  ~SagaAgent();
  SagaAgent(const SagaAgent&) = delete;
  SagaAgent& operator=(const SagaAgent&) = delete;

  // Folds every saga stream, re-arms pending timers, re-dispatches attempts that were in
  // flight (same key), then starts the threads. Error: the log cannot be read at all (a
  // single saga that does not fold is parked instead).
  Status start();
  // Stops the agent thread, then waits for running actions to return (a hung action is
  // waited for: services should honour SagaContext::deadline_ns).
  void stop();

  // Appends `started` (ExpectedVersion::no_stream: one saga per id). Any thread.
  SagaStartCode start_saga(std::string_view type, std::string_view id, std::string_view data, std::string* error = nullptr);

  SagaStats stats() const noexcept;
  // Waits until no saga is running (true) or the timeout passes (false).
  bool wait_idle(std::chrono::milliseconds timeout) const;
  // The running sagas the agent holds (a copy, taken under the agent's state mutex).
  std::vector<SagaState> sagas() const;

  class Impl;

 private:
  explicit SagaAgent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
