// Agent, CompositeAgent, AgentRunner: worker threads as Aeron-style agents.
//
// Design
//   An Agent is a unit of work a thread polls: on_start(), then do_work() -> number of items
//   of work done, then on_close(). An AgentRunner owns one thread: it pins it to a CPU when
//   asked (a failure is reported through pin_status(), never fatal), polls its agent and,
//   when do_work() returns 0, idles with the agent's IdleStrategy (busy-spin, yield or
//   backoff-then-park; parked threads are woken through the agent's WakeSignal). Several
//   agents (consumers) share one thread through a CompositeAgent: on a 2-core machine that
//   is how three projections run on one pinned worker.
//
//   Clean shutdown: drain_and_stop() first stops the producers' side being the caller's job
//   (stop appending), then asks every runner to drain: each keeps polling until its agent
//   reports drained() (its sequence has reached the head it can see) or the deadline passes,
//   then calls on_close() and exits. Nothing published before the drain began is lost; a
//   runner that misses the deadline is named in the returned Status.
//
// Thread safety
//   start(), request_drain(), request_stop() and join() are called by the thread that owns
//   the runner. The agent is used only by the runner's thread between start() and join().
//
// Invariants
//   - on_start() runs before the first do_work(), on_close() after the last, on the runner's
//     thread.
//   - After join() returned OK for a drain, the agent was drained() at its last poll.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>
#include <string>
#include <thread>
#include <vector>

#include "sluice/bus/idle_strategy.h"
#include "sluice/status.h"

namespace sluice {

class Agent {
 public:
  virtual ~Agent() = default;
  virtual void on_start() noexcept {}
  // Does a bounded amount of work; returns how much (0 = nothing to do, idle).
  virtual int do_work() noexcept = 0;
  virtual void on_close() noexcept {}
  virtual const char* role_name() const noexcept = 0;
  // True when everything published so far has been handled (the runner drains until then).
  virtual bool drained() const noexcept { return true; }
  // Cheap re-check before parking, on the runner's thread. May say true when unsure.
  virtual bool has_work() const noexcept { return false; }
  // Where the runner parks (the ring's signal); nullptr: a timed sleep.
  virtual WakeSignal* wake_signal() noexcept { return nullptr; }
};

// Several agents polled in turn on one thread.
class CompositeAgent final : public Agent {
 public:
  explicit CompositeAgent(std::vector<Agent*> agents, std::string name = "composite")
      : agents_(std::move(agents)), name_(std::move(name)) {}
  void on_start() noexcept override {
    for (Agent* a : agents_) a->on_start();
  }
  int do_work() noexcept override {
    int w = 0;
    for (Agent* a : agents_) w += a->do_work();
    return w;
  }
  void on_close() noexcept override {
    for (Agent* a : agents_) a->on_close();
  }
  const char* role_name() const noexcept override { return name_.c_str(); }
  bool drained() const noexcept override {
    for (const Agent* a : agents_)
      if (!a->drained()) return false;
    return true;
  }
  bool has_work() const noexcept override {
    for (const Agent* a : agents_)
      if (a->has_work()) return true;
    return false;
  }
  // Parks on the common signal when all agents share one ring, else sleeps.
  WakeSignal* wake_signal() noexcept override {
    WakeSignal* s = agents_.empty() ? nullptr : agents_[0]->wake_signal();
    for (Agent* a : agents_)
      if (a->wake_signal() != s) return nullptr;
    return s;
  }

 private:
  std::vector<Agent*> agents_;
  std::string name_;
};

struct RunnerOptions {
  int cpu = -1;          // CPU to pin the thread to; -1 = none (the default)
  IdleOptions idle{};    // default: backoff_park
};

class AgentRunner {
 public:
  AgentRunner(Agent& agent, const RunnerOptions& options = {}) : agent_(agent), o_(options) {}
  ~AgentRunner();  // request_stop() + join() if still running
  AgentRunner(const AgentRunner&) = delete;
  AgentRunner& operator=(const AgentRunner&) = delete;

  // Starts the thread and waits until it has tried to pin itself. Error: the thread could
  // not be created. A pinning failure is not an error here: see pin_status().
  Status start();
  // OK, or why the thread could not be pinned to options.cpu (it then runs unpinned).
  const Status& pin_status() const noexcept { return pin_status_; }
  // Asks the thread to poll until its agent is drained() or `deadline`, then close.
  void request_drain(std::chrono::steady_clock::time_point deadline) noexcept;
  // Asks the thread to stop at once (no drain).
  void request_stop() noexcept;
  // Waits for the thread. Error (timeout) if a drain missed its deadline, naming the agent.
  Status join();
  bool running() const noexcept { return thread_.joinable(); }
  Agent& agent() noexcept { return agent_; }

 private:
  enum State : int { kRunning = 0, kDraining = 1, kStopping = 2 };
  void run() noexcept;

  Agent& agent_;
  const RunnerOptions o_;
  std::thread thread_;
  Status pin_status_;
  // state_: written by the owner (request_*), read by the runner thread every poll.
  // Release in request_drain() publishes drain_deadline_ns_; acquire in run() pairs with it.
  alignas(64) std::atomic<int> state_{kRunning};
  std::atomic<int64_t> drain_deadline_ns_{0};  // relaxed: published by state_
  // Written by the runner thread before it exits; read by join() after thread_.join()
  // (the join synchronises), so relaxed accesses suffice.
  std::atomic<bool> drain_missed_{false};
  std::mutex start_mu_;
  std::condition_variable start_cv_;
  bool started_ = false;
};

// Drains every runner (in parallel) within `timeout` and joins them. Returns the first
// error (a runner that did not drain in time), after joining all of them.
Status drain_and_stop(std::span<AgentRunner* const> runners, std::chrono::milliseconds timeout);

// Pins the calling thread to `cpu`; error names the CPU and the reason.
Status pin_current_thread(int cpu);

// Names the calling thread "sl:<name>" (cut to the kernel's 15 characters), so that top -H,
// perf and /proc/PID/task/*/comm tell Sluice's threads apart. Best effort: never fails.
void name_current_thread(std::string_view name) noexcept;

}  // namespace sluice
