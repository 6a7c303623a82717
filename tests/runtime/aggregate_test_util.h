// Helpers of the aggregate tests: an engine (ingress mode) with the bank events bound, and
// the bank account's repository on it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "bank_account.h"
#include "runtime/engine_test_util.h"
#include "sluice/runtime/repository.h"

namespace sluice::testing {

struct BankEngine {
  std::string dir;
  std::unique_ptr<Engine> engine;

  // Opens (or reopens) the engine on `dir` and starts it.
  void open(const std::string& d, serialization::CodecId codec = serialization::CodecId::raw,
            Durability durability = Durability::none) {
    dir = d;
    EngineOptions o = small_engine_options();
    o.worker_cpus = {-1};
    o.writer = WriterMode::ingress;
    o.log.durability = durability;
    o.stats_file = false;
    auto e = Engine::open(dir, o);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine = std::move(e.value());
    ASSERT_TRUE(engine->bind<bank::Deposited>(codec).ok());
    ASSERT_TRUE(engine->bind<bank::Withdrawn>(codec).ok());
    ASSERT_TRUE(engine->start().ok());
  }
  void close() {
    if (engine) {
      EXPECT_TRUE(engine->stop().ok());
    }
    engine.reset();
  }
  std::unique_ptr<Repository<bank::BankAccount>> repo(SnapshotPolicy snapshots = {}, RepositoryOptions o = {}) {
    auto r = Repository<bank::BankAccount>::open(*engine, bank::account_type(snapshots), o);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? std::move(r.value()) : nullptr;
  }
  ~BankEngine() { close(); }
};

}  // namespace sluice::testing
