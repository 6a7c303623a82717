#include "sluice/bus/agent.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace sluice {

Status pin_current_thread(int cpu) {
  if (cpu < 0) return Status::OK();
  if (cpu >= CPU_SETSIZE)
    return Status(StatusCode::invalid_argument, "cannot pin to CPU " + std::to_string(cpu) + ": out of range");
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  const int rc = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
  if (rc != 0)
    return Status(StatusCode::invalid_argument,
                  "cannot pin thread to CPU " + std::to_string(cpu) + ": " + std::strerror(rc));
  return Status::OK();
}

AgentRunner::~AgentRunner() {
  if (thread_.joinable()) {
    request_stop();
    join().ignore();
  }
}

Status AgentRunner::start() {
  if (thread_.joinable())
    return Status(StatusCode::invalid_argument, std::string("agent ") + agent_.role_name() + " already started");
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    return Status(StatusCode::io_error, std::string("cannot start thread for agent ") + agent_.role_name() + ": " + e.what());
  }
  std::unique_lock lock(start_mu_);
  start_cv_.wait(lock, [this] { return started_; });
  return Status::OK();
}

void AgentRunner::request_drain(std::chrono::steady_clock::time_point deadline) noexcept {
  // Relaxed: published by the release store of state_ below.
  drain_deadline_ns_.store(deadline.time_since_epoch().count(), std::memory_order_relaxed);
  int expected = kRunning;
  // Release: the deadline above is visible to the runner that acquires kDraining.
  state_.compare_exchange_strong(expected, kDraining, std::memory_order_release, std::memory_order_relaxed);
  if (WakeSignal* s = agent_.wake_signal()) s->notify();
}

void AgentRunner::request_stop() noexcept {
  // Release: nothing to publish but the state; kept symmetric with request_drain().
  state_.store(kStopping, std::memory_order_release);
  if (WakeSignal* s = agent_.wake_signal()) s->notify();
}

Status AgentRunner::join() {
  if (thread_.joinable()) thread_.join();
  if (drain_missed_.load(std::memory_order_relaxed))
    return Status(StatusCode::timeout,
                  std::string("agent ") + agent_.role_name() + " did not drain before the deadline");
  return Status::OK();
}

void name_current_thread(std::string_view name) noexcept {
  char buf[16] = "sl:";  // the kernel keeps 15 characters and the terminating NUL
  const size_t n = std::min(name.size(), sizeof buf - 4);
  std::memcpy(buf + 3, name.data(), n);
  buf[3 + n] = '\0';
  (void)::pthread_setname_np(::pthread_self(), buf);
}

void AgentRunner::run() noexcept {
  name_current_thread(agent_.role_name());
  Status pin = pin_current_thread(o_.cpu);
  {
    std::lock_guard lock(start_mu_);
    pin_status_ = std::move(pin);
    started_ = true;
  }
  start_cv_.notify_all();

  auto has_work = [](const void* a) { return static_cast<const Agent*>(a)->has_work(); };
  IdleStrategy idle(o_.idle, agent_.wake_signal(), has_work, &agent_);
  agent_.on_start();
  for (;;) {
    // Acquire: pairs with the release in request_drain() (the deadline) / request_stop().
    const int st = state_.load(std::memory_order_acquire);
    if (st == kStopping) break;
    if (st == kDraining) {
      if (agent_.drained()) break;
      const auto deadline = std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(
          drain_deadline_ns_.load(std::memory_order_relaxed)));
      if (std::chrono::steady_clock::now() >= deadline) {
        drain_missed_.store(true, std::memory_order_relaxed);
        break;
      }
    }
    idle.idle(agent_.do_work());
  }
  agent_.on_close();
}

Status drain_and_stop(std::span<AgentRunner* const> runners, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (AgentRunner* r : runners) r->request_drain(deadline);
  Status first;
  for (AgentRunner* r : runners) {
    Status st = r->join();
    if (first.ok() && !st.ok()) first = std::move(st);
  }
  return first;
}

}  // namespace sluice
