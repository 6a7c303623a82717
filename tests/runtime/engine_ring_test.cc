// The Engine's live path through the bus ring: a projection lapped by the writer (a ring far
// smaller than the burst) catches up from the log and rejoins the ring, losing nothing and
// applying nothing twice; a restart from an old checkpoint starts behind the ring and
// catches up the same way; the writer never waits for a read model.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "bank_model.h"
#include "runtime/engine_test_util.h"
#include "sluice/runtime/engine.h"

namespace sluice {
namespace {

std::string fresh_dir(const std::string& name) { return testing::fresh_engine_dir("engine-ring", name); }

EngineOptions tiny_ring_options() {
  EngineOptions o = testing::small_engine_options();
  o.ring_capacity = 64;  // a burst of thousands laps it
  o.max_batch = 16;
  return o;
}

// Deposits only: every balance is known without a model.
uint64_t deposit(Engine& e, const std::vector<StreamId>& ids, uint64_t n, std::vector<int64_t>& expected, uint32_t seed) {
  std::mt19937_64 rng(seed);
  uint64_t last = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t a = rng() % ids.size();
    const int64_t amount = static_cast<int64_t>(rng() % 5000) + 1;
    bank::Deposited d{a, amount, static_cast<int64_t>(i % 7)};
    AppendResult r = e.append(ids[a], ExpectedVersion::any(), encode_raw(d));
    EXPECT_TRUE(r.ok());
    expected[a] += amount;
    last = r.position;
  }
  return last;
}

// Holds the worker inside apply() until opened: the writer goes on and laps the ring.
std::atomic<bool> g_open{true};
class HeldBalances final : public Projection {
 public:
  HeldBalances() = default;
  ApplyResult apply(const Event& e) override {
    while (!g_open.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::microseconds(200));
    return inner_.apply(e);
  }
  void save(SnapshotWriter& w) const override { inner_.save(w); }
  Status load(SnapshotReader& r) override { return inner_.load(r); }
  uint64_t digest() const noexcept override { return inner_.digest(); }
  const bank::Balances& model() const noexcept { return inner_; }

 private:
  bank::Balances inner_;
};

TEST(EngineRing, ALappedProjectionCatchesUpFromTheLogAndLosesNothing) {
  const std::string dir = fresh_dir("lapped");
  auto e = Engine::open(dir, tiny_ring_options()).value();
  auto held = e->add_projection<HeldBalances>("held").value();
  auto free_running = e->add_projection<bank::Balances>("balances").value();
  ASSERT_TRUE(e->start().ok());
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 16; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
  std::vector<int64_t> expected(16, 0);
  g_open.store(false, std::memory_order_release);
  // The writer never waits for the held projection: all of these append while it is stuck.
  const uint64_t last = deposit(*e, ids, 5000, expected, 11);
  ASSERT_TRUE(free_running.wait_for(last, std::chrono::seconds(30)).ok());
  g_open.store(true, std::memory_order_release);
  ASSERT_TRUE(held.wait_for(last, std::chrono::seconds(30)).ok());
  // Back on the ring after catching up: more events still arrive.
  const uint64_t last2 = deposit(*e, ids, 500, expected, 12);
  ASSERT_TRUE(held.wait_for(last2, std::chrono::seconds(30)).ok());
  const uint64_t committed = e->committed_position();
  ASSERT_TRUE(e->stop().ok());
  EXPECT_EQ(held.applied_position(), committed);
  EXPECT_EQ(free_running.applied_position(), committed);
  for (uint64_t a = 0; a < 16; ++a) {
    EXPECT_EQ(held.get()->model().balance(a).value_or(0), expected[a]) << a;
    EXPECT_EQ(free_running.get()->balance(a).value_or(0), expected[a]) << a;
  }
  EXPECT_EQ(held.get()->digest(), free_running.get()->digest());
  EXPECT_TRUE(held.runner().dead_letters().empty());
}

TEST(EngineRing, RestartBehindTheRingCatchesUpThenFollowsTheRing) {
  const std::string dir = fresh_dir("restart");
  std::vector<int64_t> expected(8, 0);
  std::vector<StreamId> ids;
  {
    auto e = Engine::open(dir, tiny_ring_options()).value();
    ProjectionOptions po;
    po.checkpoint_every = 0;
    po.checkpoint_interval = std::chrono::milliseconds(0);  // no checkpoint but the final one
    ASSERT_TRUE(e->add_projection<bank::Balances>("balances", po).ok());
    ASSERT_TRUE(e->start().ok());
    for (uint64_t a = 0; a < 8; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
    deposit(*e, ids, 1000, expected, 21);
    ASSERT_TRUE(e->stop().ok());
  }
  {
    // Events appended with no engine running: the projection's checkpoint is now behind.
    auto w = LogWriter::open(dir, [] {
               LogOptions lo;
               lo.segment_size = 4 << 20;
               return lo;
             }()).value();
    std::mt19937_64 rng(22);
    for (uint64_t i = 0; i < 3000; ++i) {
      const uint64_t a = rng() % ids.size();
      const int64_t amount = static_cast<int64_t>(rng() % 5000) + 1;
      bank::Deposited d{a, amount, 0};
      ASSERT_TRUE(w->append(ids[a], ExpectedVersion::any(), encode_raw(d)).ok());
      expected[a] += amount;
    }
    ASSERT_TRUE(w->close().ok());
  }
  auto e = Engine::open(dir, tiny_ring_options()).value();
  auto h = e->add_projection<bank::Balances>("balances").value();
  ASSERT_TRUE(e->start().ok());
  const uint64_t last = deposit(*e, ids, 200, expected, 23);
  ASSERT_TRUE(h.wait_for(last, std::chrono::seconds(30)).ok());
  const uint64_t committed = e->committed_position();
  ASSERT_TRUE(e->stop().ok());
  EXPECT_EQ(h.applied_position(), committed);
  EXPECT_EQ(committed, 4200u);
  for (uint64_t a = 0; a < 8; ++a) EXPECT_EQ(h.get()->balance(a).value_or(0), expected[a]) << a;
}

TEST(EngineRing, RingCapacityMustBeAPowerOfTwo) {
  const std::string dir = fresh_dir("capacity");
  EngineOptions o = tiny_ring_options();
  o.ring_capacity = 100;
  auto e = Engine::open(dir, o);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("ring_capacity 100"), std::string::npos);
}

}  // namespace
}  // namespace sluice
