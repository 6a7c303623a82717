// The Engine end to end: three bank projections on workers, read-your-writes, clean
// shutdown drains everything, restart resumes from checkpoints (no event applied twice),
// blue/green rebuild while running, producers through the ingress, lag alerts.
#include "sluice/runtime/engine.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <thread>

#include "bank_model.h"
#include "runtime/engine_test_util.h"

namespace sluice {
namespace {

std::string fresh_dir(const std::string& name) { return testing::fresh_engine_dir("engine", name); }
EngineOptions small_options() { return testing::small_engine_options(); }

struct Bank {
  ProjectionHandle<bank::Balances> balances;
  ProjectionHandle<bank::RichAccounts> rich;
  ProjectionHandle<bank::DailyTotals> daily;
};

Bank add_bank(Engine& e, ProjectionOptions po = {}) {
  Bank b;
  b.balances = e.add_projection<bank::Balances>("balances", po).value();
  b.rich = e.add_projection<bank::RichAccounts>("rich_accounts", po).value();
  b.daily = e.add_projection<bank::DailyTotals>("daily_totals", po).value();
  return b;
}

// Deposits only: every balance is known without a model.
uint64_t deposit(Engine& e, std::vector<StreamId>& ids, uint64_t n, std::vector<int64_t>& expected, uint32_t seed) {
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

TEST(EngineConcurrency, ReadYourWritesAndCleanShutdownDrains) {
  const std::string dir = fresh_dir("ryw");
  auto e = Engine::open(dir, small_options()).value();
  Bank b = add_bank(*e);
  ASSERT_TRUE(e->start().ok());
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 20; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
  std::vector<int64_t> expected(20, 0);
  const uint64_t last = deposit(*e, ids, 5000, expected, 7);
  ASSERT_TRUE(b.balances.wait_for(last, std::chrono::seconds(30)).ok());
  auto model = b.balances.get();
  for (uint64_t a = 0; a < 20; ++a) EXPECT_EQ(model->balance(a).value_or(0), expected[a]) << a;
  // More events, then stop at once: the drain must apply all of them.
  deposit(*e, ids, 3000, expected, 8);
  const uint64_t committed = e->committed_position();
  ASSERT_TRUE(e->stop().ok());
  for (ProjectionRunner* r : e->runners()) EXPECT_EQ(r->applied_position(), committed) << r->name();
  model = b.balances.get();
  for (uint64_t a = 0; a < 20; ++a) EXPECT_EQ(model->balance(a).value_or(0), expected[a]);
  auto days = b.daily.get()->days();
  int64_t events = 0;
  for (auto& [day, t] : days) events += t.events;
  EXPECT_EQ(events, 8000);
}

TEST(EngineConcurrency, RestartResumesFromCheckpointsWithoutApplyingTwice) {
  const std::string dir = fresh_dir("restart");
  std::vector<int64_t> expected(10, 0);
  uint64_t digest_before = 0;
  {
    auto e = Engine::open(dir, small_options()).value();
    Bank b = add_bank(*e);
    ASSERT_TRUE(e->start().ok());
    std::vector<StreamId> ids;
    for (uint64_t a = 0; a < 10; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
    deposit(*e, ids, 2000, expected, 1);
    ASSERT_TRUE(e->stop().ok());
    digest_before = b.balances.get()->digest();
  }
  auto e = Engine::open(dir, small_options()).value();
  Bank b = add_bank(*e);
  ASSERT_TRUE(e->start().ok());
  EXPECT_EQ(b.balances.applied_position(), 2000u);  // restored, not replayed
  EXPECT_EQ(b.balances.get()->digest(), digest_before);
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 10; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
  deposit(*e, ids, 1000, expected, 2);
  ASSERT_TRUE(e->stop().ok());
  auto m = b.balances.get();
  for (uint64_t a = 0; a < 10; ++a) EXPECT_EQ(m->balance(a).value_or(0), expected[a]);
  auto rebuilt = rebuild_projection(dir, "balances", bank::factory_for("balances"), {});
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(rebuilt->digest, m->digest());
}

// One worker feeds all its projections from one ring consumer, starting at the lowest of
// their positions: a projection added later replays the log from 0 while one restored from
// its checkpoint on the same worker skips what it already holds (applies nothing twice).
TEST(EngineConcurrency, ProjectionsAtDifferentPositionsShareOneWorker) {
  const std::string dir = fresh_dir("mixed");
  std::vector<int64_t> expected(10, 0);
  EngineOptions o = small_options();
  o.worker_cpus = {-1};
  {
    auto e = Engine::open(dir, o).value();
    ASSERT_TRUE(e->add_projection<bank::Balances>("balances").ok());
    ASSERT_TRUE(e->start().ok());
    std::vector<StreamId> ids;
    for (uint64_t a = 0; a < 10; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
    deposit(*e, ids, 1500, expected, 3);
    ASSERT_TRUE(e->stop().ok());
  }
  auto e = Engine::open(dir, o).value();
  auto daily = e->add_projection<bank::DailyTotals>("daily_totals").value();  // new: from 0
  auto balances = e->add_projection<bank::Balances>("balances").value();     // restored at 1500
  ASSERT_TRUE(e->start().ok());
  EXPECT_EQ(balances.applied_position(), 1500u);  // restored (daily catches up from 0 meanwhile)
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 10; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
  const uint64_t last = deposit(*e, ids, 500, expected, 4);
  ASSERT_TRUE(daily.wait_for(last, std::chrono::seconds(30)).ok());
  ASSERT_TRUE(balances.wait_for(last, std::chrono::seconds(30)).ok());
  auto m = balances.get();
  for (uint64_t a = 0; a < 10; ++a) EXPECT_EQ(m->balance(a).value_or(0), expected[a]) << a;
  int64_t events = 0;
  for (auto& [day, t] : daily.get()->days()) events += t.events;
  EXPECT_EQ(events, 2000);
  ASSERT_TRUE(e->stop().ok());
  for (ProjectionRunner* r : e->runners()) EXPECT_EQ(r->applied_position(), 2000u) << r->name();
}

TEST(EngineConcurrency, BlueGreenRebuildSwapsInAnEqualModelWhileRunning) {
  const std::string dir = fresh_dir("bluegreen");
  auto e = Engine::open(dir, small_options()).value();
  Bank b = add_bank(*e);
  ASSERT_TRUE(e->start().ok());
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 30; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
  std::vector<int64_t> expected(30, 0);
  const uint64_t first = deposit(*e, ids, 20000, expected, 3);
  ASSERT_TRUE(b.balances.wait_for(first, std::chrono::seconds(30)).ok());
  auto old_model = b.balances.get();
  std::vector<RebuildProgress> progress;
  auto res = e->rebuild("balances", [&](const RebuildProgress& p) { progress.push_back(p); });
  ASSERT_TRUE(res.ok()) << res.status().to_string();
  EXPECT_GE(res->events, 20000u - 4096);
  const uint64_t last = deposit(*e, ids, 100, expected, 4);
  ASSERT_TRUE(b.balances.wait_for(last, std::chrono::seconds(30)).ok());
  auto new_model = b.balances.get();
  EXPECT_NE(new_model.get(), old_model.get());
  for (uint64_t a = 0; a < 30; ++a) EXPECT_EQ(new_model->balance(a).value_or(0), expected[a]);
  ASSERT_TRUE(e->stop().ok());
  EXPECT_EQ(e->rebuild("nope").status().code(), StatusCode::not_found);
}

TEST(EngineConcurrency, ProducersThroughTheIngressFromManyThreads) {
  const std::string dir = fresh_dir("ingress");
  EngineOptions o = small_options();
  o.writer = WriterMode::ingress;
  auto e = Engine::open(dir, o).value();
  Bank b = add_bank(*e);
  ASSERT_TRUE(e->start().ok());
  constexpr int kThreads = 3, kEach = 2000;
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t)
    producers.emplace_back([&, t] {
      const StreamId s = e->submit_stream(bank::stream_name(static_cast<uint64_t>(t))).value();
      for (int i = 0; i < kEach; ++i) {
        bank::Deposited d{static_cast<uint64_t>(t), 1, 0};
        ASSERT_TRUE(e->submit(s, ExpectedVersion::any(), encode_raw(d)).ok());
      }
    });
  for (auto& p : producers) p.join();
  ASSERT_TRUE(e->stop().ok());
  auto m = b.balances.get();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(m->balance(static_cast<uint64_t>(t)).value_or(0), kEach);
  EXPECT_EQ(b.rich.applied_position(), uint64_t{kThreads * kEach});
}

// A projection whose handler waits while the test holds `gate` closed: lag builds up.
std::atomic<bool> g_gate_open{true};
class Gated final : public Projection {
 public:
  ApplyResult apply(const Event&) override {
    while (!g_gate_open.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return ApplyResult::ok;
  }
  void save(SnapshotWriter&) const override {}
  Status load(SnapshotReader&) override { return Status::OK(); }
  uint64_t digest() const noexcept override { return 0; }
};

TEST(EngineConcurrency, LagAlertIsRaisedAndClearedAndVisibleInTheStatsFile) {
  const std::string dir = fresh_dir("alert");
  EngineOptions o = small_options();
  o.monitor_interval = std::chrono::milliseconds(5);
  std::mutex mu;
  std::vector<LagAlert> alerts;
  o.on_alert = [&](const LagAlert& a) {
    std::lock_guard lock(mu);
    alerts.push_back(a);
  };
  auto e = Engine::open(dir, o).value();
  ProjectionOptions po;
  po.alert.max_events_behind = 10;
  auto h = e->add_projection<Gated>("gated", po).value();
  ASSERT_TRUE(e->start().ok());
  g_gate_open.store(false, std::memory_order_release);
  const StreamId s = e->stream("s").value();
  std::byte p[4]{};
  EventData d;
  d.type = 9;
  d.payload = p;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(e->append(s, ExpectedVersion::any(), d).ok());
  auto wait_alerts = [&](size_t n) {
    for (int i = 0; i < 10000; ++i) {
      {
        std::lock_guard lock(mu);
        if (alerts.size() >= n) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  };
  ASSERT_TRUE(wait_alerts(1));
  auto st = counters::read_stats(*counters::CountersFile::open_read(dir + "/sluice.stats").value());
  ASSERT_EQ(st.projections.size(), 1u);
  EXPECT_TRUE(st.projections[0].alert_active);
  g_gate_open.store(true, std::memory_order_release);
  ASSERT_TRUE(wait_alerts(2));
  ASSERT_TRUE(e->stop().ok());
  std::lock_guard lock(mu);
  EXPECT_EQ(alerts[0].projection, "gated");
  EXPECT_TRUE(alerts[0].active);
  EXPECT_GT(alerts[0].events_behind, 10u);
  EXPECT_FALSE(alerts[1].active);
  EXPECT_EQ(h.applied_position(), 100u);
}

TEST(Engine, ConfigurationErrorsNameTheProjection) {
  const std::string dir = fresh_dir("config");
  auto e = Engine::open(dir, small_options()).value();
  ASSERT_TRUE(e->add_projection<bank::Balances>("balances").ok());
  auto dup = e->add_projection<bank::Balances>("balances");
  EXPECT_NE(dup.status().message().find("'balances' is already registered"), std::string::npos);
  auto bad = e->add_projection<bank::Balances>("bad name!");
  EXPECT_EQ(bad.status().code(), StatusCode::invalid_argument);
  ProjectionOptions po;
  po.worker = 5;
  EXPECT_NE(e->add_projection<bank::Balances>("w", po).status().message().find("worker 5"), std::string::npos);
  ASSERT_TRUE(e->start().ok());
  EXPECT_FALSE(e->add_projection<bank::Balances>("late").ok());
  ASSERT_TRUE(e->stop().ok());
}

}  // namespace
}  // namespace sluice
