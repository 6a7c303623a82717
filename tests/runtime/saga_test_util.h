// Helpers of the saga tests: a log with SagaEvent bound and a writer port (no engine), and
// fake services that record what they were asked to do.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/engine_test_util.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "sluice/runtime/repository.h"
#include "sluice/runtime/saga.h"

namespace sluice::testing {

// A log opened for sagas: writer, registry (SagaEvent bound), writer port.
struct SagaLog {
  std::string dir;
  std::unique_ptr<LogWriter> writer;
  std::unique_ptr<serialization::SchemaRegistry> registry;
  std::unique_ptr<AppendPort> port;

  void open(const std::string& d) {
    dir = d;
    LogOptions o;
    o.segment_size = 4 << 20;
    o.prefault = false;
    o.prepared_segments = 1;
    auto w = LogWriter::open(dir, o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    writer = std::move(w.value());
    registry = std::make_unique<serialization::SchemaRegistry>();
    ASSERT_TRUE(registry->load(dir).ok());
    ASSERT_TRUE(bind_saga_events(*registry, writer.get()).ok());
    port = make_writer_port(*writer);
  }
  void close() {
    port.reset();
    writer.reset();
    registry.reset();
  }
  std::unique_ptr<SagaAgent> agent(std::vector<SagaType> types, SagaAgentOptions o = {}) {
    auto a = SagaAgent::open(*port, *registry, std::move(types), std::move(o));
    EXPECT_TRUE(a.ok()) << a.status().to_string();
    return a.ok() ? std::move(a.value()) : nullptr;
  }
  // Every saga of the log, folded from a fresh reader.
  std::vector<SagaState> sagas() const {
    auto r = LogReader::open(dir);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    serialization::SchemaRegistry reg;
    EXPECT_TRUE(reg.load(dir).ok());
    EXPECT_TRUE(bind_saga_events(reg, nullptr).ok());
    auto s = load_sagas(*r.value(), reg);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? s.value() : std::vector<SagaState>{};
  }
  SagaState saga(const std::string& type, const std::string& id) const {
    for (auto& s : sagas())
      if (s.type == type && s.id == id) return s;
    ADD_FAILURE() << "no saga " << type << "-" << id;
    return {};
  }
  ~SagaLog() { close(); }
};

// Records calls as "do<step>" / "undo<step>" per saga id, with their keys; scripted outcomes.
class FakeServices {
 public:
  enum class Mode { ok, fail, retry_then_ok, always_retry, hang };
  struct Script {
    Mode mode = Mode::ok;
    uint32_t retries = 0;  // retry_then_ok: attempts that fail first
  };

  void script(uint32_t step, bool compensation, Script s) {
    std::lock_guard lock(mu_);
    scripts_[{step, compensation}] = s;
  }

  SagaAction action(uint32_t step, bool compensation) {
    return [this, step, compensation](const SagaContext& c) { return call(step, compensation, c); };
  }

  // A saga type of n steps, each with a compensation, through these services.
  SagaType type(const std::string& name, uint32_t n, SagaStepOptions o = {}) {
    SagaType t(name);
    for (uint32_t i = 0; i < n; ++i) t.step("s" + std::to_string(i), action(i, false), action(i, true), o);
    return t;
  }

  std::vector<std::string> calls(const std::string& saga) const {
    std::lock_guard lock(mu_);
    auto it = calls_.find(saga);
    return it == calls_.end() ? std::vector<std::string>{} : it->second;
  }
  std::vector<Id128> keys() const {
    std::lock_guard lock(mu_);
    return keys_;
  }
  size_t total_calls() const {
    std::lock_guard lock(mu_);
    return keys_.size();
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  StepResult call(uint32_t step, bool compensation, const SagaContext& c) {
    std::unique_lock lock(mu_);
    calls_[std::string(c.saga_id)].push_back((compensation ? "undo" : "do") + std::to_string(step));
    keys_.push_back(c.key);
    Script s;
    if (auto it = scripts_.find({step, compensation}); it != scripts_.end()) s = it->second;
    switch (s.mode) {
      case Mode::ok: return StepResult::ok();
      case Mode::fail: return StepResult::fail("scripted failure");
      case Mode::retry_then_ok:
        return c.attempt <= s.retries ? StepResult::retry("scripted transient failure") : StepResult::ok();
      case Mode::always_retry: return StepResult::retry("scripted failure, again");
      case Mode::hang:
        cv_.wait(lock, [&] { return released_; });
        return StepResult::ok();
    }
    return StepResult::ok();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::map<std::pair<uint32_t, bool>, Script> scripts_;
  std::map<std::string, std::vector<std::string>> calls_;
  std::vector<Id128> keys_;
};

inline SagaStepOptions fast_steps(uint32_t attempts = 3) {
  SagaStepOptions o;
  o.retry = SagaRetry{attempts, std::chrono::milliseconds(1), std::chrono::milliseconds(5), 2.0, 0.2};
  o.compensation_retry = SagaRetry{attempts, std::chrono::milliseconds(1), std::chrono::milliseconds(5), 2.0, 0.2};
  return o;
}

}  // namespace sluice::testing
