// SagaAgent: the agent thread that drives sagas, its timer heap and the action threads.
// See saga.h for the design.
#include <time.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <queue>
#include <random>
#include <unordered_map>

#include "sluice/bus/log_reader.h"
#include "sluice/runtime/engine.h"
#include "sluice/runtime/repository.h"
#include "sluice/runtime/saga.h"

namespace sluice {

namespace {

int64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

uint64_t mix64(uint64_t x) noexcept {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t hash_text(std::string_view s, uint64_t h) noexcept {
  for (char c : s) h = mix64(h ^ static_cast<unsigned char>(c));
  return h;
}

}  // namespace

// The idempotency key of one attempt (see SagaContext::key).
Id128 saga_attempt_key(const SagaState& s, uint32_t step, uint32_t attempt, bool compensation) noexcept {
  uint64_t h = hash_text(s.type, 0x5A6A);
  h = hash_text(s.id, mix64(h ^ 0x2D));
  h = mix64(h ^ (static_cast<uint64_t>(step) << 33 | static_cast<uint64_t>(attempt) << 1 | (compensation ? 1 : 0)));
  return Id128{static_cast<uint64_t>(s.started_ns / 1'000'000), h | 1};
}

class SagaAgent::Impl {
 public:
  Impl(AppendPort& port, std::unique_ptr<AppendPort> owned, const serialization::SchemaRegistry& registry,
       std::vector<SagaType> types, SagaAgentOptions o)
      : port_(port), owned_(std::move(owned)), registry_(registry), types_(std::move(types)), o_(std::move(o)) {
    if (o_.clock_ns == nullptr) o_.clock_ns = realtime_ns;
    if (o_.action_threads == 0) o_.action_threads = 1;
  }
  ~Impl() { stop(); }

  Status init() {
    binding_ = registry_.binding<SagaEvent>();
    if (!binding_.valid())
      return Status(StatusCode::invalid_argument, "saga agent on " + port_.dir() +
                                                      ": SagaEvent is not bound (bind_saga_events before start)");
    for (auto& t : types_) {
      if (t.name().empty() || t.name().find('-') != std::string::npos)
        return Status(StatusCode::invalid_argument, "saga type '" + t.name() + "': a name without '-' is needed");
      if (t.steps().empty()) return Status(StatusCode::invalid_argument, "saga type " + t.name() + " has no step");
      if (!t.error().empty()) return Status(StatusCode::invalid_argument, "saga type " + t.name() + ": " + t.error());
      for (auto& tr : t.triggers()) {
        if (Status st = tr.resolve(registry_, tr.type_id, tr.match); !st.ok()) return st;
        scans_ = true;
      }
      for (auto& step : t.steps())
        for (auto& a : step.awaits) {
          if (Status st = a.resolve(registry_, a.type_id, a.match); !st.ok()) return st;
          scans_ = true;
        }
    }
    return Status();
  }

  Status start() {
    auto reader = LogReader::open(port_.dir());
    if (!reader.ok()) return reader.status();
    reader_ = std::move(reader.value());
    auto loaded = load_sagas(*reader_, registry_);
    if (!loaded.ok()) return loaded.status();
    {
      std::lock_guard lock(state_mu_);
      for (SagaState& s : loaded.value()) {
        count_finished(s.status, +1);
        if (s.finished()) continue;
        const SagaType* type = find_type(s.type);
        auto saga = std::make_unique<Saga>();
        saga->serial = next_serial_++;
        saga->type = type;
        saga->st = std::move(s);
        Saga& g = *saga;
        by_name_[g.st.type + '\n' + g.st.id] = g.serial;
        sagas_[g.serial] = std::move(saga);
        running_.fetch_add(1, std::memory_order_relaxed);
        recovering_.push_back(g.serial);
        if (type == nullptr) park(g, "saga type " + g.st.type + " is not registered with this agent");
      }
    }
    stop_ = false;
    if (!o_.inline_actions)
      for (uint32_t i = 0; i < o_.action_threads; ++i) pool_.emplace_back([this] { action_loop(); });
    agent_ = std::thread([this] { agent_loop(); });
    return Status();
  }

  void stop() {
    {
      std::lock_guard lock(inbox_mu_);
      if (stop_) return;
      stop_ = true;
    }
    inbox_cv_.notify_all();
    if (agent_.joinable()) agent_.join();
    {
      std::lock_guard lock(jobs_mu_);
      jobs_stop_ = true;
    }
    jobs_cv_.notify_all();
    for (auto& t : pool_) t.join();
    pool_.clear();
  }

  SagaStartCode start_saga(std::string_view type, std::string_view id, std::string_view data, std::string* error) {
    if (find_type(type) == nullptr) return SagaStartCode::unknown_type;
    if (id.empty()) return SagaStartCode::invalid_id;
    Start s;
    s.type = std::string(type);
    s.id = std::string(id);
    s.data = std::string(data);
    const SagaStartCode c = append_started(s, error);
    if (c == SagaStartCode::started) {
      {
        std::lock_guard lock(inbox_mu_);
        starts_.push_back(std::move(s));
      }
      inbox_cv_.notify_one();
    }
    return c;
  }

  SagaStats stats() const noexcept {
    SagaStats s;
    // Relaxed: each counter is exact on its own; the set is not a consistent snapshot.
    s.running = running_.load(std::memory_order_relaxed);
    s.completed = completed_.load(std::memory_order_relaxed);
    s.compensated = compensated_.load(std::memory_order_relaxed);
    s.compensation_failed = compensation_failed_.load(std::memory_order_relaxed);
    s.parked = parked_.load(std::memory_order_relaxed);
    s.steps_succeeded = steps_succeeded_.load(std::memory_order_relaxed);
    s.attempts_failed = attempts_failed_.load(std::memory_order_relaxed);
    s.timers_fired = timers_fired_.load(std::memory_order_relaxed);
    s.conflicts = conflicts_.load(std::memory_order_relaxed);
    s.oldest_running_started_ns = oldest_.load(std::memory_order_relaxed);
    return s;
  }

  bool wait_idle(std::chrono::milliseconds timeout) const {
    const auto end = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(inbox_mu_);
    return idle_cv_.wait_until(lock, end, [&] { return idle_ && starts_.empty(); });
  }

  std::vector<SagaState> sagas() const {
    std::lock_guard lock(state_mu_);
    std::vector<SagaState> out;
    for (auto& [serial, g] : sagas_)
      if (!g->gone) out.push_back(g->st);
    return out;
  }

 private:
  struct Saga {
    uint64_t serial = 0;
    const SagaType* type = nullptr;
    SagaState st;
    uint64_t timer_gen = 0;  // a heap entry with another generation is stale
    bool gone = false;       // finished or let go: erased by reap()
  };
  struct Start {
    std::string type, id, data;
    StreamId stream = 0;
    int64_t started_ns = 0;
  };
  struct Completion {
    uint64_t serial;
    uint32_t step, attempt;
    bool compensation;
    StepResult result;
    bool request = false;  // the result of an await step's request (not its outcome)
  };
  struct Job {
    uint64_t serial;
    const SagaType* type;
    std::string saga_id, data;
    uint32_t step, attempt;
    bool compensation;
    Id128 key;
    int64_t deadline_ns;
  };
  enum class TimerKind : uint8_t { attempt_timeout, backoff };
  struct Timer {
    int64_t due;
    uint64_t serial, gen;
    TimerKind kind;
    bool operator>(const Timer& o) const noexcept { return due > o.due; }
  };

  const SagaType* find_type(std::string_view name) const noexcept {
    for (auto& t : types_)
      if (t.name() == name) return &t;
    return nullptr;
  }

  // Appends `started` with no_stream (any thread).
  SagaStartCode append_started(Start& s, std::string* error) {
    auto stream = port_.stream(saga_stream_name(s.type, s.id));
    if (!stream.ok()) {
      if (error) *error = stream.status().to_string();
      return SagaStartCode::failed;
    }
    s.stream = stream.value();
    s.started_ns = o_.clock_ns();
    SagaEvent e;
    e.kind = static_cast<uint8_t>(SagaEventKind::started);
    e.due_ns = s.started_ns;
    e.saga_type = s.type;
    e.saga_id = s.id;
    e.data = s.data;
    serialization::EncodeBuffer buf;
    auto d = binding_.encode(e, buf);
    if (!d.ok()) {
      if (error) *error = d.status().to_string();
      return SagaStartCode::failed;
    }
    const AppendResult a = port_.append(s.stream, ExpectedVersion::no_stream(), std::span<const EventData>(&d.value(), 1));
    if (a.code == AppendCode::conflict) return SagaStartCode::duplicate;
    if (!a.ok()) {
      if (error) *error = "append to " + saga_stream_name(s.type, s.id) + ": " + std::string(to_string(a.code)) + " " + port_.last_error();
      return SagaStartCode::failed;
    }
    if (Status st = port_.wait_acknowledged(a.position); !st.ok()) {
      if (error) *error = st.to_string();
      return SagaStartCode::failed;
    }
    return SagaStartCode::started;
  }

  // ---- the agent thread ----

  void agent_loop() {
    {
      std::lock_guard lock(state_mu_);
      for (uint64_t serial : recovering_) recover(serial);
      recovering_.clear();
      drain_inline();
      reap();
    }
    int64_t next_poll = 0, next_publish = 0;
    for (;;) {
      std::vector<Start> starts;
      std::vector<Completion> done;
      {
        std::lock_guard lock(inbox_mu_);
        if (stop_) break;
        starts.swap(starts_);
        done.swap(done_);
      }
      {
        std::lock_guard lock(state_mu_);
        for (Start& s : starts) adopt(s);
        for (Completion& c : done) complete(c);
        drain_inline();
        const int64_t now = o_.clock_ns();
        // The log is read up to its end before a timer fires, so an event that completes an
        // await step in time is seen first (after a restart too: the first scan reads it all).
        const bool timer_due = !timers_.empty() && timers_.top().due <= now;
        if (scans_ && (now >= next_poll || timer_due)) {
          poll_log();
          next_poll = now + std::chrono::duration_cast<std::chrono::nanoseconds>(o_.trigger_poll).count();
        }
        fire_timers();
        drain_inline();
        reap();
        if (now >= next_publish || running_.load(std::memory_order_relaxed) == 0) {
          publish();
          next_publish = now + 10'000'000;
        }
      }
      std::unique_lock lock(inbox_mu_);
      if (stop_) break;
      if (!starts_.empty() || !done_.empty()) continue;
      idle_ = running_.load(std::memory_order_relaxed) == 0;
      if (idle_) idle_cv_.notify_all();
      int64_t wake = INT64_MAX;
      if (!timers_.empty()) wake = timers_.top().due;
      if (scans_) wake = std::min(wake, next_poll);
      if (wake == INT64_MAX) {
        inbox_cv_.wait(lock, [&] { return stop_ || !starts_.empty() || !done_.empty(); });
      } else {
        const int64_t d = wake - o_.clock_ns();
        if (d > 0)
          inbox_cv_.wait_for(lock, std::chrono::nanoseconds(d),
                             [&] { return stop_ || !starts_.empty() || !done_.empty(); });
      }
      idle_ = false;
    }
    std::lock_guard lock(inbox_mu_);
    idle_ = running_.load(std::memory_order_relaxed) == 0;
    idle_cv_.notify_all();
  }

  void adopt(const Start& s) {
    const std::string name = s.type + '\n' + s.id;
    if (by_name_.count(name) != 0) return;
    auto saga = std::make_unique<Saga>();
    saga->serial = next_serial_++;
    saga->type = find_type(s.type);
    SagaEvent e;
    e.kind = static_cast<uint8_t>(SagaEventKind::started);
    e.due_ns = s.started_ns;
    e.saga_type = s.type;
    e.saga_id = s.id;
    e.data = s.data;
    (void)saga->st.apply(e, s.started_ns);
    saga->st.stream = s.stream;
    Saga& g = *saga;
    by_name_[name] = g.serial;
    sagas_[g.serial] = std::move(saga);
    running_.fetch_add(1, std::memory_order_relaxed);
    advance(g);
  }

  // After the fold of a saga found unfinished at start.
  void recover(uint64_t serial) {
    Saga* g = find(serial);
    if (g == nullptr || g->st.finished()) return;
    SagaState& s = g->st;
    if (s.timer_pending) {
      arm(*g, s.timer_due_ns, TimerKind::backoff);
    } else if (s.in_flight) {
      // The attempt was recorded; its result was not. Run it again with the same key
      // (a service honouring keys answers with its first result), unless it is overdue.
      if (s.attempt_due_ns != 0) arm(*g, s.attempt_due_ns, TimerKind::attempt_timeout);
      if (s.attempt_due_ns == 0 || s.attempt_due_ns > o_.clock_ns()) dispatch(*g);
    } else {
      advance(*g);
    }
  }

  // nullptr when unknown or already finished / let go (reaped at the end of the round).
  Saga* find(uint64_t serial) noexcept {
    auto it = sagas_.find(serial);
    return it == sagas_.end() || it->second->gone ? nullptr : it->second.get();
  }
  void reap() {
    for (uint64_t serial : dead_) sagas_.erase(serial);
    dead_.clear();
  }

  static SagaEvent event(SagaEventKind k, uint32_t step = 0, uint32_t attempt = 0) {
    SagaEvent e;
    e.kind = static_cast<uint8_t>(k);
    e.step = step;
    e.attempt = attempt;
    return e;
  }

  // Appends events to the saga's stream at its version and applies them. false: the saga
  // was let go (conflict: another agent advanced it) or parked (the append failed).
  bool emit(Saga& g, std::initializer_list<SagaEvent> events) {
    return emit(g, std::span<const SagaEvent>(events.begin(), events.size()));
  }
  bool emit(Saga& g, std::span<const SagaEvent> events) {
    if (bufs_.size() < events.size())
      while (bufs_.size() < events.size()) bufs_.push_back(std::make_unique<serialization::EncodeBuffer>());
    datas_.clear();
    size_t i = 0;
    for (const SagaEvent& e : events) {
      auto d = binding_.encode(e, *bufs_[i++]);
      if (!d.ok()) {
        park_in_memory(g, "encode: " + d.status().to_string());
        return false;
      }
      datas_.push_back(d.value());
    }
    const AppendResult a = port_.append(g.st.stream, ExpectedVersion::exact(g.st.version), datas_);
    if (a.code == AppendCode::conflict) {
      conflicts_.fetch_add(1, std::memory_order_relaxed);
      let_go(g);
      return false;
    }
    if (!a.ok()) {
      park_in_memory(g, "append to " + saga_stream_name(g.st.type, g.st.id) + ": " + std::string(to_string(a.code)) +
                            " " + port_.last_error());
      return false;
    }
    if (Status st = port_.wait_acknowledged(a.position + events.size() - 1); !st.ok()) {
      park_in_memory(g, "not acknowledged: " + st.to_string());
      return false;
    }
    const int64_t now = o_.clock_ns();
    const SagaStatus before = g.st.status;
    uint64_t position = a.position;
    for (const SagaEvent& e : events) {
      if (Status st = g.st.apply(e, now); !st.ok()) {
        park_in_memory(g, st.to_string());
        return false;
      }
      if (e.kind == static_cast<uint8_t>(SagaEventKind::step_attempted)) g.st.attempt_position = position;
      ++position;
    }
    if (before == SagaStatus::running && g.st.finished()) finish(g);
    return true;
  }

  void count_finished(SagaStatus s, int d) {
    auto add = [d](std::atomic<uint64_t>& c) { c.fetch_add(static_cast<uint64_t>(d), std::memory_order_relaxed); };
    switch (s) {
      case SagaStatus::completed: add(completed_); break;
      case SagaStatus::compensated: add(compensated_); break;
      case SagaStatus::compensation_failed: add(compensation_failed_); break;
      case SagaStatus::parked: add(parked_); break;
      case SagaStatus::running: break;
    }
  }

  void finish(Saga& g) {
    count_finished(g.st.status, +1);
    running_.fetch_sub(1, std::memory_order_relaxed);
    if (o_.on_finished) o_.on_finished(g.st);
    by_name_.erase(g.st.type + '\n' + g.st.id);
    g.gone = true;
    dead_.push_back(g.serial);
  }

  void let_go(Saga& g) {
    running_.fetch_sub(1, std::memory_order_relaxed);
    by_name_.erase(g.st.type + '\n' + g.st.id);
    g.gone = true;
    dead_.push_back(g.serial);
  }

  // Recovery failed for this saga: record it (best effort) and go on with the others.
  void park(Saga& g, std::string why) {
    SagaEvent e = event(SagaEventKind::parked);
    e.reason = why;
    if (!emit(g, {e})) return;  // parked in memory, or let go
  }
  void park_in_memory(Saga& g, std::string why) {
    g.st.status = SagaStatus::parked;
    g.st.reason = std::move(why);
    g.st.in_flight = false;
    g.st.timer_pending = false;
    finish(g);
  }

  // Moves a saga with nothing in flight and no timer pending to its next attempt, or ends it.
  // `carry`, when given, is the event that ended the previous attempt (a step or
  // compensation that succeeded): it is appended in one batch with the next attempt, or
  // with the saga's end, so that a step costs one append rather than two (a crash between
  // them left the same state to resume before, and cannot split them now). If that batch is
  // not written (an append or encode failure parks the saga), the success is not in the log
  // either: after a restart the step runs again with the same key, which the service's
  // idempotency absorbs, where before the saga resumed at the next step.
  void advance(Saga& g, const SagaEvent* carry = nullptr) {
    if (g.gone) return;
    SagaState after;
    const SagaState* v = &g.st;
    if (carry != nullptr) {
      after = g.st;
      v = &after;
      if (!after.apply(*carry, o_.clock_ns()).ok()) {  // emit() parks it with the reason
        emit(g, {*carry});
        return;
      }
    }
    auto emit_with_carry = [&](const SagaEvent& e) {
      if (carry == nullptr) return emit(g, {e});
      return emit(g, {*carry, e});
    };
    if (v->finished() || v->in_flight || v->timer_pending) {
      if (carry != nullptr) emit(g, {*carry});
      return;
    }
    const auto& steps = g.type->steps();
    if (!v->compensating) {
      if (v->completed_steps >= steps.size()) {
        emit_with_carry(event(SagaEventKind::completed));
        return;
      }
      if (!emit_with_carry(attempt_event(g, SagaEventKind::step_attempted, v->completed_steps, v->attempt + 1))) return;
    } else {
      if (v->to_compensate.empty()) {
        emit_with_carry(event(SagaEventKind::compensated));
        return;
      }
      if (!emit_with_carry(attempt_event(g, SagaEventKind::compensation_attempted, v->to_compensate.front(), v->attempt + 1)))
        return;
    }
    if (g.st.attempt_due_ns != 0) arm(g, g.st.attempt_due_ns, TimerKind::attempt_timeout);
    dispatch(g);
  }

  // The event that begins an attempt of `step`, with its timeout's due time when it has one.
  SagaEvent attempt_event(const Saga& g, SagaEventKind kind, uint32_t step, uint32_t attempt) {
    SagaEvent e = event(kind, step, attempt);
    const auto timeout = g.type->steps()[step].options.timeout;
    e.due_ns = timeout.count() > 0
                   ? o_.clock_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count()
                   : 0;
    return e;
  }

  void dispatch(Saga& g) {
    const SagaState& s = g.st;
    const auto& step = g.type->steps()[s.step];
    if (!s.compensating && step.awaits_event() && !step.action) return;  // poll_log() completes it
    Job j{g.serial, g.type, s.id, s.data, s.step, s.attempt, s.compensating,
          saga_attempt_key(s, s.step, s.attempt, s.compensating), s.attempt_due_ns};
    if (o_.inline_actions) {  // completed by drain_inline(), on this thread, after this pass
      inline_done_.push_back(run_job(j));
      return;
    }
    {
      std::lock_guard lock(jobs_mu_);
      jobs_.push_back(std::move(j));
    }
    jobs_cv_.notify_one();
  }

  void arm(Saga& g, int64_t due, TimerKind kind) { timers_.push(Timer{due, g.serial, ++g.timer_gen, kind}); }

  void fire_timers() {
    while (!timers_.empty()) {
      const int64_t now = o_.clock_ns();
      const Timer t = timers_.top();
      if (t.due > now) return;
      timers_.pop();
      Saga* g = find(t.serial);
      if (g == nullptr || g->timer_gen != t.gen) continue;
      SagaState& s = g->st;
      if (t.kind == TimerKind::attempt_timeout) {
        if (!s.in_flight) continue;
        timers_fired_.fetch_add(1, std::memory_order_relaxed);
        if (o_.on_timer) o_.on_timer(now - t.due);
        const auto& step = g->type->steps()[s.step];
        failed_attempt(*g, "attempt " + std::to_string(s.attempt) + " of step " + step.name + " timed out after " +
                               std::to_string(step.options.timeout.count()) + " ms",
                       /*retryable=*/true, /*timed_out=*/true);
      } else {
        if (!s.timer_pending) continue;
        timers_fired_.fetch_add(1, std::memory_order_relaxed);
        if (o_.on_timer) o_.on_timer(now - t.due);
        SagaEvent e = event(SagaEventKind::timer_fired, s.step, s.attempt);
        e.due_ns = now;
        if (emit(*g, {e})) advance(*g);
      }
    }
  }

  void complete(const Completion& c) {
    Saga* g = find(c.serial);
    if (g == nullptr) return;
    SagaState& s = g->st;
    if (!s.in_flight || s.compensating != c.compensation || s.step != c.step || s.attempt != c.attempt) return;
    if (c.request && c.result.code == StepResult::Code::ok) return;  // sent: the step waits for its event
    ++g->timer_gen;  // the attempt's timeout is void
    if (c.result.code == StepResult::Code::ok) {
      if (!c.compensation) steps_succeeded_.fetch_add(1, std::memory_order_relaxed);
      const SagaEvent done =
          event(c.compensation ? SagaEventKind::compensation_succeeded : SagaEventKind::step_succeeded, c.step, c.attempt);
      advance(*g, &done);
      return;
    }
    failed_attempt(*g, c.result.reason.empty() ? "failed" : c.result.reason, c.result.code == StepResult::Code::retry,
                   false);
  }

  int64_t backoff_ns(const SagaRetry& r, uint32_t attempt) {
    double b = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(r.initial_backoff).count());
    for (uint32_t i = 1; i < attempt; ++i) b *= r.multiplier;
    b = std::min(b, static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(r.max_backoff).count()));
    std::uniform_real_distribution<double> u(0.0, 1.0);
    b *= 1.0 - std::clamp(r.jitter, 0.0, 1.0) * u(rng_);
    return static_cast<int64_t>(b);
  }

  SagaEvent failure_event(SagaEventKind kind, const SagaState& s, const std::string& reason, bool timed_out) {
    SagaEvent failed = event(kind, s.step, s.attempt);
    failed.reason = reason;
    failed.timed_out = timed_out;
    return failed;
  }

  // A failed attempt (forward or compensation) with attempts left under `retry`: records it
  // with the timer of the next attempt (backoff with jitter) and arms that timer. False when
  // the attempts are used up and the caller goes on to its terminal step.
  bool retry_later(Saga& g, const SagaEvent& failed, const SagaRetry& retry) {
    SagaState& s = g.st;
    if (s.attempt >= retry.max_attempts) return false;
    SagaEvent timer = event(SagaEventKind::timer_set, s.step, s.attempt + 1);
    timer.due_ns = o_.clock_ns() + backoff_ns(retry, s.attempt);
    if (emit(g, {failed, timer})) arm(g, s.timer_due_ns, TimerKind::backoff);
    return true;
  }

  void failed_attempt(Saga& g, std::string reason, bool retryable, bool timed_out) {
    SagaState& s = g.st;
    ++g.timer_gen;
    const auto& step = g.type->steps()[s.step];
    if (!s.compensating) {
      attempts_failed_.fetch_add(1, std::memory_order_relaxed);
      SagaEvent failed = failure_event(SagaEventKind::step_failed, s, reason, timed_out);
      if (retryable && retry_later(g, failed, step.options.retry)) return;
      // Turn back: the completed steps, newest first, and this one when an attempt of it
      // timed out (its effect is unknown); steps without a compensation are skipped.
      std::string list;
      const bool current = timed_out || s.current_timed_out;
      const auto& steps = g.type->steps();
      for (int64_t i = current ? s.step : static_cast<int64_t>(s.step) - 1; i >= 0; --i) {
        if (!steps[static_cast<size_t>(i)].compensation) continue;
        if (!list.empty()) list += ',';
        list += std::to_string(i);
      }
      SagaEvent turn = event(SagaEventKind::compensating);
      turn.reason = "step " + step.name + ": " + reason;
      turn.data = list;
      if (emit(g, {failed, turn})) advance(g);
      return;
    }
    SagaEvent failed = failure_event(SagaEventKind::compensation_attempt_failed, s, reason, timed_out);
    if (retryable && retry_later(g, failed, step.options.compensation_retry)) return;
    SagaEvent end = event(SagaEventKind::compensation_failed, s.step, s.attempt);
    end.reason = "compensation of step " + step.name + " failed after " + std::to_string(s.attempt) +
                 " attempt(s): " + reason;
    emit(g, {failed, end});
  }

  // One pass over the records appended since the last: start_on triggers start sagas, and
  // events correlated to a saga waiting in an await step complete that step.
  void poll_log() {
    if (!reader_->refresh().ok()) return;
    RecordView v;
    for (auto c = reader_->cursor(trigger_position_);;) {
      const uint64_t position = c.position();
      if (!c.next(&v)) break;
      trigger_position_ = c.position();
      if (!v.is_event()) continue;
      for (auto& t : types_) {
        const auto& steps = t.steps();
        for (uint32_t i = 0; i < steps.size(); ++i)
          for (auto& a : steps[i].awaits)
            if (a.type_id == v.event_type()) await_event(t, i, a, v, position);
        for (auto& tr : t.triggers()) {
          if (tr.type_id != v.event_type()) continue;
          auto m = tr.match(v);
          if (!m) continue;
          Start s;
          s.type = t.name();
          s.id = std::move(m->first);
          s.data = std::move(m->second);
          if (by_name_.count(s.type + '\n' + s.id) != 0) continue;
          if (append_started(s, nullptr) == SagaStartCode::started) adopt(s);
        }
      }
    }
  }

  // An event of an await step's type at `position`: completes the step of the saga it
  // correlates to when that saga waits in this step since before `position` and the event's
  // log time is not past the attempt's timeout. Depends only on the log.
  void await_event(const SagaType& t, uint32_t step, const SagaType::Await& a, const RecordView& v, uint64_t position) {
    auto m = a.match(v);
    if (!m) return;
    auto it = by_name_.find(t.name() + '\n' + m->first);
    if (it == by_name_.end()) return;
    Saga* g = find(it->second);
    if (g == nullptr) return;
    const SagaState& s = g->st;
    if (!s.in_flight || s.compensating || s.step != step || position <= s.attempt_position) return;
    if (s.attempt_due_ns != 0 && v.timestamp_ns() > s.attempt_due_ns) return;  // the timeout decides
    complete(Completion{g->serial, step, s.attempt, false, std::move(m->second), false});
  }

  void publish() {
    int64_t oldest = 0;
    for (auto& [serial, g] : sagas_)
      if (g->gone) continue;
      else if (oldest == 0 || g->st.started_ns < oldest) oldest = g->st.started_ns;
    // Relaxed: a gauge read on its own by stats().
    oldest_.store(oldest, std::memory_order_relaxed);
  }

  // ---- the action threads ----

  void action_loop() {
    for (;;) {
      Job j;
      {
        std::unique_lock lock(jobs_mu_);
        jobs_cv_.wait(lock, [&] { return jobs_stop_ || !jobs_.empty(); });
        if (jobs_stop_) return;
        j = std::move(jobs_.front());
        jobs_.pop_front();
      }
      Completion c = run_job(j);
      {
        std::lock_guard lock(inbox_mu_);
        done_.push_back(std::move(c));
      }
      inbox_cv_.notify_one();
    }
  }

  // Runs one attempt's action (or compensation); an exception is a failed attempt.
  Completion run_job(const Job& j) {
    const auto& step = j.type->steps()[j.step];
    SagaContext ctx;
    ctx.saga_type = j.type->name();
    ctx.saga_id = j.saga_id;
    ctx.data = j.data;
    ctx.step = j.step;
    ctx.step_name = step.name;
    ctx.attempt = j.attempt;
    ctx.compensation = j.compensation;
    ctx.key = j.key;
    ctx.deadline_ns = j.deadline_ns;
    StepResult r;
    try {
      const SagaAction& a = j.compensation ? step.compensation : step.action;
      r = a ? a(ctx) : StepResult::ok();
    } catch (const std::exception& e) {
      r = StepResult::fail(std::string("threw: ") + e.what());
    } catch (...) {
      r = StepResult::fail("threw");
    }
    return Completion{j.serial, j.step, j.attempt, j.compensation, std::move(r),
                      !j.compensation && step.awaits_event()};
  }

  // inline_actions: completes the attempts dispatch() ran on this thread; completing one
  // may run the next step's action, which lands here again.
  void drain_inline() {
    while (!inline_done_.empty()) {
      Completion c = std::move(inline_done_.front());
      inline_done_.pop_front();
      complete(c);
    }
  }

  AppendPort& port_;
  std::unique_ptr<AppendPort> owned_;
  const serialization::SchemaRegistry& registry_;
  std::vector<SagaType> types_;
  SagaAgentOptions o_;
  serialization::EventBinding<SagaEvent> binding_;
  std::unique_ptr<LogReader> reader_;  // start(); then the agent thread's (triggers)
  uint64_t trigger_position_ = 0;      // agent thread: the next record poll_log() reads
  bool scans_ = false;                 // init(): start_on triggers or await steps read the log

  // State of every running saga: the agent thread's; sagas() reads it under state_mu_.
  mutable std::mutex state_mu_;
  std::unordered_map<uint64_t, std::unique_ptr<Saga>> sagas_;
  std::unordered_map<std::string, uint64_t> by_name_;
  std::vector<uint64_t> recovering_;
  std::vector<uint64_t> dead_;  // finished or let go this round
  uint64_t next_serial_ = 1;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;  // agent thread
  std::mt19937_64 rng_{std::random_device{}()};                                 // agent thread
  std::vector<std::unique_ptr<serialization::EncodeBuffer>> bufs_;              // agent thread
  std::vector<EventData> datas_;                                                // agent thread

  // Inbox: starts and results for the agent thread.
  mutable std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  mutable std::condition_variable idle_cv_;
  std::vector<Start> starts_;     // under inbox_mu_
  std::vector<Completion> done_;  // under inbox_mu_
  bool stop_ = true;              // under inbox_mu_
  bool idle_ = false;             // under inbox_mu_

  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<Job> jobs_;    // under jobs_mu_
  std::deque<Completion> inline_done_;  // inline_actions: the agent thread's only
  bool jobs_stop_ = false;  // under jobs_mu_

  std::thread agent_;
  std::vector<std::thread> pool_;

  // Counters: written by the agent thread (running_ also by start()), read by stats()
  // (relaxed: each is exact on its own).
  std::atomic<uint64_t> running_{0}, completed_{0}, compensated_{0}, compensation_failed_{0}, parked_{0},
      steps_succeeded_{0}, attempts_failed_{0}, timers_fired_{0}, conflicts_{0};
  std::atomic<int64_t> oldest_{0};

 public:
  std::shared_ptr<StatsPublishers> publishers;  // open(Engine&): the engine's
  uint64_t publisher = 0;
};

SagaAgent::SagaAgent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SagaAgent::~SagaAgent() {
  if (impl_ && impl_->publishers) impl_->publishers->remove(impl_->publisher);  // before the agent goes
}

Result<std::unique_ptr<SagaAgent>> SagaAgent::open(AppendPort& port, const serialization::SchemaRegistry& registry,
                                                   std::vector<SagaType> types, SagaAgentOptions options) {
  auto impl = std::make_unique<Impl>(port, nullptr, registry, std::move(types), std::move(options));
  if (Status st = impl->init(); !st.ok()) return st;
  return std::unique_ptr<SagaAgent>(new SagaAgent(std::move(impl)));
}

Result<std::unique_ptr<SagaAgent>> SagaAgent::open(Engine& engine, std::vector<SagaType> types,
                                                   SagaAgentOptions options) {
  auto port = make_engine_port(engine);
  AppendPort& p = *port;
  std::string name;
  for (const SagaType& t : types) name += (name.empty() ? "" : ",") + t.name();
  auto impl = std::make_unique<Impl>(p, std::move(port), engine.registry(), std::move(types), std::move(options));
  if (Status st = impl->init(); !st.ok()) return st;
  auto slot = engine.stats_slot(counters::SlotKind::saga, name.substr(0, 63));
  if (!slot.ok()) return slot.status();
  if (counters::Slot* s = slot.value()) {
    Impl* i = impl.get();
    impl->publishers = engine.stats_publishers();
    impl->publisher = impl->publishers->add([i, s] {
      const SagaStats st = i->stats();
      counters::SagaCounters& c = s->saga;
      counters::put(c.running, st.running);
      counters::put(c.completed, st.completed);
      counters::put(c.compensated, st.compensated);
      counters::put(c.compensation_failed, st.compensation_failed);
      counters::put(c.parked, st.parked);
      counters::put(c.oldest_running_started_ns, st.oldest_running_started_ns);
      counters::put(c.steps_succeeded, st.steps_succeeded);
      counters::put(c.attempts_failed, st.attempts_failed);
      counters::put(c.timers_fired, st.timers_fired);
    });
  }
  return std::unique_ptr<SagaAgent>(new SagaAgent(std::move(impl)));
}

Status SagaAgent::start() { return impl_->start(); }
void SagaAgent::stop() { impl_->stop(); }
SagaStartCode SagaAgent::start_saga(std::string_view type, std::string_view id, std::string_view data,
                                    std::string* error) {
  return impl_->start_saga(type, id, data, error);
}
SagaStats SagaAgent::stats() const noexcept { return impl_->stats(); }
bool SagaAgent::wait_idle(std::chrono::milliseconds timeout) const { return impl_->wait_idle(timeout); }
std::vector<SagaState> SagaAgent::sagas() const { return impl_->sagas(); }

}  // namespace sluice
