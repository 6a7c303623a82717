// sluice bench saga: 3-step sagas through the saga agent with in-process services, against
// one-thread commands through a Repository on the same engine configuration, same run.
//
//   driver thread ──start_saga()──► SagaAgent (agent thread) ──append(exact version)──► engine ingress ──► writer ──► log
//      (keeps `window` sagas           │  step_attempted, then the action on an action thread,
//       in flight)                     │  then step_succeeded (x3), completed
//                                      └──► action threads: in-process service (a keyed set)
//   baseline, same run: Repository<BankAccount>::execute(Deposit) from one thread, hot account
//
//   timers: sagas whose first attempt fails once, so the retry waits on a 5 ms backoff timer
//   (no jitter); lateness = fired - due, as the agent sees it.
//
// Baseline for the machine: a bare std::atomic ping-pong between two CPUs.
// Figures (--json): sagas_per_s, saga_steps_per_s, saga_complete_p50_us / p99_us,
// timer_lateness_p50_us / p99_us, ratio_saga_steps_vs_commands (target >= 0.25),
// ratio_timer_p99_lateness_vs_atomic_rtt. Durability none.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "bank_account.h"
#include "common/figures.h"
#include "common/histogram.h"
#include "sluice/runtime/engine.h"
#include "sluice/runtime/repository.h"
#include "sluice/runtime/saga.h"
#include "suites.h"

namespace sluice::bench {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const char* what, const Status& st) {
  std::fprintf(stderr, "bench saga: %s: %s\n", what, st.to_string().c_str());
  std::exit(1);
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::unique_ptr<Engine> open_engine(const std::string& dir) {
  EngineOptions o;
  o.writer = WriterMode::ingress;
  o.worker_cpus = {-1};
  o.log.durability = Durability::none;
  o.stats_file = false;
  auto e = Engine::open(dir, o);
  if (!e.ok()) die("open", e.status());
  if (auto b = e.value()->bind<bank::Deposited>(serialization::CodecId::raw); !b.ok()) die("bind", b.status());
  if (auto b = e.value()->bind<bank::Withdrawn>(serialization::CodecId::raw); !b.ok()) die("bind", b.status());
  if (Status st = bind_saga_events(*e.value()); !st.ok()) die("bind", st);
  if (Status st = e.value()->start(); !st.ok()) die("start", st);
  return std::move(e.value());
}

// One-thread commands/s on a hot account (the baseline), best of `reps`.
double commands_per_s(Engine& e, uint64_t count, int reps) {
  auto repo = Repository<bank::BankAccount>::open(e, bank::account_type());
  if (!repo.ok()) die("repository", repo.status());
  const StreamId id = repo.value()->stream("account-1").value();
  double best = 0;
  for (int rep = 0; rep < reps; ++rep) {
    const auto t0 = Clock::now();
    for (uint64_t i = 0; i < count; ++i)
      if (!repo.value()->execute(id, bank::Deposit{1, 10, 1}).ok()) die("command", Status(StatusCode::io_error, "failed"));
    best = std::max(best, static_cast<double>(count) / seconds_since(t0));
  }
  return best;
}

// An in-process service honouring keys.
struct Service {
  std::mutex mu;
  std::unordered_set<uint64_t> keys;
  StepResult call(const SagaContext& c) {
    std::lock_guard lock(mu);
    keys.insert(c.key.lo);
    return StepResult::ok();
  }
};

struct SagaRun {
  double sagas_per_s = 0, p50_us = 0, p99_us = 0;
  double timer_p50_us = 0, timer_p99_us = 0;
  uint64_t sagas = 0, timers = 0;
  Histogram complete, lateness;  // ns, for the .hgrm distributions
};

// `count` 3-step sagas, `window` in flight; with `retry_once`, each saga's first step fails
// once and waits for a 5 ms backoff timer.
SagaRun run_sagas(Engine& e, uint64_t count, uint32_t window, bool retry_once, const std::string& tag,
                  bool inline_actions = true) {
  Service svc;
  SagaStepOptions o;
  o.retry = SagaRetry{3, std::chrono::milliseconds(5), std::chrono::milliseconds(5), 2.0, 0.0};
  SagaType t("bench");
  for (int i = 0; i < 3; ++i)
    t.step(
        "s" + std::to_string(i),
        [&svc, retry_once, i](const SagaContext& c) {
          if (retry_once && i == 0 && c.attempt == 1) return StepResult::retry("once");
          return svc.call(c);
        },
        [&svc](const SagaContext& c) { return svc.call(c); }, o);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Clock::time_point> started(count);
  std::vector<double> complete_us;
  std::vector<double> lateness_us;
  complete_us.reserve(count);
  uint64_t finished = 0;
  SagaAgentOptions ao;
  ao.action_threads = 2;
  ao.inline_actions = inline_actions;
  ao.on_finished = [&](const SagaState& s) {
    const auto now = Clock::now();
    std::lock_guard lock(mu);
    complete_us.push_back(
        std::chrono::duration<double, std::micro>(now - started[std::stoull(s.id.substr(tag.size() + 1))]).count());
    ++finished;
    cv.notify_one();
  };
  ao.on_timer = [&](int64_t late_ns) { lateness_us.push_back(static_cast<double>(late_ns) / 1e3); };  // agent thread
  auto agent = SagaAgent::open(e, {t}, ao);
  if (!agent.ok()) die("agent", agent.status());
  if (Status st = agent.value()->start(); !st.ok()) die("agent start", st);
  const uint64_t completed_before = agent.value()->stats().completed;  // earlier runs' sagas, folded
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < count; ++i) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return i - finished < window; });
      started[i] = Clock::now();
    }
    std::string err;
    const SagaStartCode c = agent.value()->start_saga("bench", tag + "-" + std::to_string(i), tag, &err);
    if (c != SagaStartCode::started)
      die("start_saga", Status(StatusCode::io_error, "code " + std::to_string(static_cast<int>(c)) + " " + err));
  }
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return finished == count; });
  }
  const double secs = seconds_since(t0);
  agent.value()->stop();
  const SagaStats st = agent.value()->stats();
  if (st.completed - completed_before != count) die("sagas", Status(StatusCode::io_error, "not all completed"));
  SagaRun r;
  r.sagas = count;
  r.sagas_per_s = static_cast<double>(count) / secs;
  r.p50_us = percentile(complete_us, 50);
  r.p99_us = percentile(complete_us, 99);
  r.timers = lateness_us.size();
  for (double us : complete_us) r.complete.record(std::llround(us * 1e3));
  for (double us : lateness_us) r.lateness.record(std::llround(us * 1e3));
  if (!lateness_us.empty()) {
    r.timer_p50_us = percentile(lateness_us, 50);
    r.timer_p99_us = percentile(lateness_us, 99);
  }
  return r;
}

}  // namespace

int run_saga_suite(const SuiteArgs& args) {
  ScratchDir scratch(args.dir, "saga");
  Figures fig;
  check_workload(args, "saga", kOptEvents);
  const auto n = [&](double base) { return static_cast<uint64_t>(std::max(500.0, base * args.scale)); };
  const int cpu_a = args.cpus.size() > 0 ? args.cpus[0] : 0;
  const int cpu_b = args.cpus.size() > 1 ? args.cpus[1] : 1;
  fig.config("machine", machine_description(scratch.path()));
  fig.config("load_average_at_start", loadavg());
  fig.config("scale", std::to_string(args.scale));
  fig.config("engine", "WriterMode::ingress (writer unpinned, backoff_park), durability none, stats file off, one idle worker");
  fig.config("saga", "3 steps, each an in-process service call (a keyed set under a mutex), run inline on the agent thread (SagaAgentOptions::inline_actions; sagas_per_s_action_threads: on 2 action threads); 8 saga events per saga in 5 appends (started, attempted, then succeeded + next attempted or completed in one batch), each at the exact version and acknowledged before the next decision");
  fig.config("baseline", "Repository<BankAccount>::execute(Deposit), one thread, hot account, same engine configuration, best of 3");
  std::printf("sluice bench saga — %s (load %s)\n", machine_description(scratch.path()).c_str(), loadavg().c_str());

  auto e = open_engine(scratch.path() + "/log");
  progress("saga", "commands baseline");
  const double cmds = commands_per_s(*e, events_or(args, n(100'000)), 3);
  fig.add("commands_per_s_1thread", cmds, "cmd/s", "baseline: one thread, hot account, same engine");

  (void)run_sagas(*e, n(2'000) / 4, 64, false, "warm");
  progress("saga", "sagas");
  const SagaRun s = run_sagas(*e, events_or(args, n(20'000)), 64, false, "run");
  fig.add("sagas_per_s", s.sagas_per_s, "sagas/s", "3-step sagas, 64 in flight");
  fig.add("saga_steps_per_s", 3 * s.sagas_per_s, "steps/s");
  fig.add("saga_complete_p50_us", s.p50_us, "us", "start_saga -> completed (64 in flight: includes queueing)");
  fig.add("saga_complete_p99_us", s.p99_us, "us");
  fig.add("ratio_saga_steps_vs_commands", 3 * s.sagas_per_s / cmds, "ratio", "target >= 0.25");
  write_distribution(args.data_dir, "saga-time_to_complete_64_in_flight", s.complete);
  const SagaRun pooled = run_sagas(*e, n(20'000), 64, false, "pool", false);
  fig.add("sagas_per_s_action_threads", pooled.sagas_per_s, "sagas/s", "the same, actions on 2 action threads");
  fig.add("ratio_saga_steps_vs_commands_action_threads", 3 * pooled.sagas_per_s / cmds, "ratio");
  write_distribution(args.data_dir, "saga-time_to_complete_64_in_flight_action_threads", pooled.complete);

  progress("saga", "timers");
  const SagaRun tm = run_sagas(*e, n(2'000), 16, true, "timers");
  fig.add("timer_lateness_p50_us", tm.timer_p50_us, "us", "backoff timer fired - due (5 ms timers, " + std::to_string(tm.timers) + " fired)");
  fig.add("timer_lateness_p99_us", tm.timer_p99_us, "us");
  write_distribution(args.data_dir, "saga-timer_lateness", tm.lateness);
  if (Status st = e->stop(std::chrono::seconds(60)); !st.ok()) die("stop", st);

  const double rtt = atomic_rtt_p50(cpu_a, cpu_b, n(200'000));
  fig.add("atomic_rtt_p50_ns", rtt, "ns", "bare std::atomic ping-pong");
  fig.add("ratio_timer_p99_lateness_vs_atomic_rtt", tm.timer_p99_us * 1e3 / rtt, "ratio",
          "timer p99 lateness in atomic round trips (a timer wakes a parked thread: a syscall)");
  fig.config("load_average_at_end", loadavg());
  fig.print_table();
  if (!args.json_path.empty() && !fig.write_json(args.json_path, "saga")) return 1;
  return 0;
}

}  // namespace sluice::bench
