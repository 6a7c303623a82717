// Snapshots (load == full replay, stale fingerprint, corruption, only at acknowledged
// versions), temporal queries against brute-force replay, and the invariant finder.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "runtime/aggregate_test_util.h"
#include "sluice/bus/log_reader.h"
#include "sluice/runtime/aggregate_projection.h"

namespace sluice {
namespace {

using bank::BankAccount;
using bank::Deposit;
using bank::Withdraw;
using testing::BankEngine;
using testing::fresh_engine_dir;

bool same(const BankAccount& a, const BankAccount& b) {
  return a.balance == b.balance && a.deposits == b.deposits && a.withdrawals == b.withdrawals;
}

// Random commands on a few accounts; returns their stream ids.
std::vector<StreamId> run_random_commands(Repository<BankAccount>& repo, std::mt19937_64& rng, int accounts,
                                          int commands) {
  std::vector<StreamId> ids;
  for (int a = 0; a < accounts; ++a) ids.push_back(repo.stream("account-" + std::to_string(a)).value());
  for (int i = 0; i < commands; ++i) {
    const size_t a = rng() % ids.size();
    const int64_t amount = static_cast<int64_t>(rng() % 1000) + 1;
    CommandResult r = rng() % 3 == 0 ? repo.execute(ids[a], Withdraw{a, amount, 1}) : repo.execute(ids[a], Deposit{a, amount, 1});
    EXPECT_TRUE(r.code == CommandCode::ok || r.code == CommandCode::rejected) << r.message;
  }
  return ids;
}

// Property: for random command sequences and snapshot intervals, a load from a snapshot
// (a fresh repository: empty cache) equals the full replay of the stream.
TEST(AggregateSnapshot, SnapshotLoadEqualsFullReplay) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    std::mt19937_64 rng(seed);
    BankEngine b;
    b.open(fresh_engine_dir("snapshot", "property-" + std::to_string(seed)));
    SnapshotPolicy p;
    p.every_events = 1 + rng() % 20;
    auto repo = b.repo(p);
    auto ids = run_random_commands(*repo, rng, 3, 150);
    EXPECT_GT(repo->stats().snapshots_written, 0u);
    auto fresh = b.repo(p);
    auto reader = LogReader::open(b.dir).value();
    for (StreamId id : ids) {
      auto snap = fresh->load(id).value();
      auto full = load_by_replay(fresh->type(), *reader, id).value();
      EXPECT_TRUE(same(snap.state, full.state)) << "seed " << seed << " stream " << id;
      EXPECT_EQ(snap.version, full.version);
      EXPECT_EQ(snap.position, full.position);
      if (full.version >= p.every_events) {
        EXPECT_TRUE(snap.from_snapshot);
        EXPECT_LT(snap.replayed, full.replayed);
      }
    }
    EXPECT_EQ(fresh->stats().snapshots_ignored, 0u);
  }
}

TEST(AggregateSnapshot, ReplayThresholdSnapshotsAfterALongLoad) {
  BankEngine b;
  b.open(fresh_engine_dir("snapshot", "threshold"));
  SnapshotPolicy p;
  p.replay_threshold = 50;
  auto writer = b.repo();  // no snapshots
  const StreamId id = writer->stream("account-1").value();
  for (int i = 0; i < 80; ++i) ASSERT_TRUE(writer->execute(id, Deposit{1, 1, 1}).ok());
  auto repo = b.repo(p);
  ASSERT_TRUE(repo->execute(id, Deposit{1, 1, 1}).ok());  // loads 80 by replay: snapshot due
  EXPECT_EQ(repo->stats().snapshots_written, 1u);
  auto again = b.repo(p);
  auto l = again->load(id).value();
  EXPECT_TRUE(l.from_snapshot);
  EXPECT_EQ(l.version, 81u);
  EXPECT_EQ(l.replayed, 0u);
  EXPECT_EQ(l.state.balance, 81);
}

TEST(AggregateSnapshot, StaleFingerprintIsIgnoredCountedAndRewritten) {
  BankEngine b;
  b.open(fresh_engine_dir("snapshot", "fingerprint"));
  SnapshotPolicy p;
  p.every_events = 5;
  auto repo = b.repo(p);
  const StreamId id = repo->stream("account-1").value();
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(repo->execute(id, Deposit{1, 10, 1}).ok());
  ASSERT_EQ(repo->stats().snapshots_written, 2u);  // at versions 5 and 10

  // The same state type under a new fingerprint (its apply logic changed, say).
  auto type = bank::account_type(p);
  sluice::AggregateType<BankAccount> changed("bank.Account", bank::kBankAccountFingerprint + 1);
  changed.apply<bank::Deposited>().apply<bank::Withdrawn>().handle<Deposit>().handle<Withdraw>().snapshots(p);
  auto next = Repository<BankAccount>::open(*b.engine, std::move(changed)).value();
  auto l = next->load(id).value();
  EXPECT_FALSE(l.from_snapshot);
  EXPECT_EQ(l.replayed, 12u);
  EXPECT_EQ(l.state.balance, 120);
  EXPECT_EQ(next->stats().snapshots_ignored, 1u);
  EXPECT_NE(next->stats().last_warning.find("fingerprint"), std::string::npos) << next->stats().last_warning;
  // The next command loads by full replay and re-snapshots under the new fingerprint.
  ASSERT_TRUE(next->execute(id, Deposit{1, 10, 1}).ok());
  EXPECT_EQ(next->stats().snapshots_written, 1u);
  auto l2 = next->load(id).value();
  EXPECT_TRUE(l2.from_snapshot);
  EXPECT_EQ(l2.state.balance, 130);
}

TEST(AggregateSnapshot, IgnoredSnapshotsAreCountedInTheStatsFile) {
  // As above, on an engine with its stats file: the warning reaches `sluice stat` and the
  // Prometheus endpoint (the monitor copies the repository's counters; stop() once more).
  const std::string dir = fresh_engine_dir("snapshot", "stats");
  EngineOptions o = testing::small_engine_options();
  o.worker_cpus = {-1};
  o.writer = WriterMode::ingress;
  auto e = Engine::open(dir, o).value();
  ASSERT_TRUE(e->bind<bank::Deposited>(serialization::CodecId::raw).ok());
  ASSERT_TRUE(e->bind<bank::Withdrawn>(serialization::CodecId::raw).ok());
  ASSERT_TRUE(e->start().ok());
  SnapshotPolicy p;
  p.every_events = 5;
  {
    auto repo = Repository<BankAccount>::open(*e, bank::account_type(p)).value();
    const StreamId id = repo->stream("account-1").value();
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(repo->execute(id, Deposit{1, 10, 1}).ok());
    sluice::AggregateType<BankAccount> changed("bank.Account", bank::kBankAccountFingerprint + 1);
    changed.apply<bank::Deposited>().apply<bank::Withdrawn>().handle<Deposit>().handle<Withdraw>().snapshots(p);
    auto next = Repository<BankAccount>::open(*e, std::move(changed)).value();
    ASSERT_TRUE(next->execute(id, Deposit{1, 10, 1}).ok());  // loads: the snapshot is ignored
    ASSERT_EQ(next->stats().snapshots_ignored, 1u);
    ASSERT_TRUE(e->stop().ok());  // publishes the final figures while both repositories live
  }
  const counters::EngineStat st = counters::read_stats(*e->stats());
  ASSERT_EQ(st.repositories.size(), 2u);
  uint64_t ignored = 0, commands = 0;
  for (const counters::RepositoryStat& r : st.repositories) {
    EXPECT_EQ(r.name, "bank.Account");
    ignored += r.snapshots_ignored;
    commands += r.commands;
  }
  EXPECT_EQ(ignored, 1u);
  EXPECT_EQ(commands, 7u);
}

TEST(AggregateSnapshot, CorruptSnapshotIsIgnoredAndTheStateIsReplayed) {
  BankEngine b;
  b.open(fresh_engine_dir("snapshot", "corrupt"));
  SnapshotPolicy p;
  p.every_events = 4;
  auto repo = b.repo(p);
  const StreamId id = repo->stream("account-1").value();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(repo->execute(id, Deposit{1, 25, 1}).ok());
  const std::string path = repo->core().snapshot_path(id);
  ASSERT_TRUE(std::filesystem::exists(path));
  for (const char* damage : {"flip", "truncate", "format"}) {
    {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      if (std::string(damage) == "flip") {
        f.seekp(50);
        f.put('\x7f');
      } else if (std::string(damage) == "format") {
        f.seekp(4);
        f.put('\x09');
      }
    }
    if (std::string(damage) == "truncate") std::filesystem::resize_file(path, 20);
    auto fresh = b.repo(p);
    auto l = fresh->load(id).value();
    EXPECT_FALSE(l.from_snapshot) << damage;
    EXPECT_EQ(l.state.balance, 100) << damage;
    EXPECT_EQ(fresh->stats().snapshots_ignored, 1u) << damage;
    // A command re-snapshots (a good file again for the next damage).
    ASSERT_TRUE(fresh->execute(id, Deposit{1, 0 + 1, 1}).ok());
    ASSERT_TRUE(fresh->execute(id, Withdraw{1, 1, 1}).ok());
    EXPECT_GE(fresh->stats().snapshots_written, 1u) << damage;
  }
}

TEST(AggregateSnapshot, SnapshotOfAnotherLogIsIgnored) {
  BankEngine a;
  a.open(fresh_engine_dir("snapshot", "log-a"));
  SnapshotPolicy p;
  p.every_events = 3;
  auto ra = a.repo(p);
  const StreamId ida = ra->stream("account-1").value();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ra->execute(ida, Deposit{1, 1000, 1}).ok());
  const std::string snap = ra->core().snapshot_path(ida);

  BankEngine b;
  b.open(fresh_engine_dir("snapshot", "log-b"));
  auto rb = b.repo(p);
  const StreamId idb = rb->stream("account-1").value();
  ASSERT_EQ(idb, ida);
  ASSERT_TRUE(rb->execute(idb, Deposit{1, 1, 1}).ok());
  ASSERT_TRUE(rb->execute(rb->stream("account-0").value(), Deposit{0, 1, 1}).ok());  // other positions
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(rb->execute(idb, Deposit{1, 1, 1}).ok());
  std::filesystem::copy_file(snap, rb->core().snapshot_path(idb), std::filesystem::copy_options::overwrite_existing);
  auto fresh = b.repo(p);
  auto l = fresh->load(idb).value();
  EXPECT_EQ(l.state.balance, 4);
  EXPECT_FALSE(l.from_snapshot);
  EXPECT_EQ(fresh->stats().snapshots_ignored, 1u);
}

// A state that is not trivially copyable snapshots through its save()/load().
struct History {
  std::vector<int64_t> amounts;
  void save(SnapshotWriter& w) const {
    w.u64(amounts.size());
    for (int64_t a : amounts) w.i64(a);
  }
  bool load(SnapshotReader& r) {
    uint64_t n = 0;
    if (!r.u64(&n) || n > r.remaining() / 8) return false;
    amounts.resize(n);
    for (int64_t& a : amounts)
      if (!r.i64(&a)) return false;
    return true;
  }
};

TEST(AggregateSnapshot, StateWithSaveAndLoadRoundTrips) {
  BankEngine b;
  b.open(fresh_engine_dir("snapshot", "save-load"));
  SnapshotPolicy p;
  p.every_events = 4;
  auto type = [&] {
    AggregateType<History> t("bank.History", 7);
    t.apply<bank::Deposited>([](History& h, const bank::Deposited& e) { h.amounts.push_back(e.amount); });
    t.apply<bank::Withdrawn>([](History& h, const bank::Withdrawn& e) { h.amounts.push_back(-e.amount); });
    t.handle<Deposit>([](const History&, const Deposit& c, Emitter& out) {
      out.emit(bank::Deposited{c.account, c.amount, c.day});
      return Decision::accept();
    });
    t.snapshots(p);
    return t;
  };
  auto repo = Repository<History>::open(*b.engine, type()).value();
  const StreamId id = repo->stream("history-1").value();
  for (int64_t i = 1; i <= 10; ++i) ASSERT_TRUE(repo->execute(id, Deposit{1, i, 1}).ok());
  EXPECT_EQ(repo->stats().snapshots_written, 2u);
  auto fresh = Repository<History>::open(*b.engine, type()).value();
  auto l = fresh->load(id).value();
  EXPECT_TRUE(l.from_snapshot);
  EXPECT_EQ(l.replayed, 2u);
  EXPECT_EQ(l.state.amounts, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

// A port that says nothing is acknowledged until told: no snapshot before that.
class HeldAcknowledgement final : public AppendPort {
 public:
  explicit HeldAcknowledgement(Engine& e) : inner_(make_engine_port(e)) {}
  Result<StreamId> stream(std::string_view name) override { return inner_->stream(name); }
  AppendResult append(StreamId s, ExpectedVersion x, std::span<const EventData> ev) noexcept override {
    return inner_->append(s, x, ev);
  }
  uint64_t acknowledged_position() const noexcept override { return held_ ? 0 : inner_->acknowledged_position(); }
  Status wait_acknowledged(uint64_t position) override { return inner_->wait_acknowledged(position); }  // the answer
  const std::string& dir() const noexcept override { return inner_->dir(); }
  bool held_ = true;

 private:
  std::unique_ptr<AppendPort> inner_;
};

TEST(AggregateSnapshot, TakenOnlyAtAnAcknowledgedVersion) {
  BankEngine b;
  b.open(fresh_engine_dir("snapshot", "ack"));
  HeldAcknowledgement port(*b.engine);
  SnapshotPolicy p;
  p.every_events = 2;
  auto repo = Repository<BankAccount>::open(port, b.engine->registry(), bank::account_type(p)).value();
  const StreamId id = repo->stream("account-1").value();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(repo->execute(id, Deposit{1, 1, 1}).ok());
  EXPECT_EQ(repo->stats().snapshots_written, 0u);
  EXPECT_FALSE(std::filesystem::exists(repo->core().snapshot_path(id)));
  port.held_ = false;
  ASSERT_TRUE(repo->execute(id, Deposit{1, 1, 1}).ok());
  EXPECT_EQ(repo->stats().snapshots_written, 1u);
  EXPECT_EQ(repo->load(id).value().version, 6u);
  EXPECT_TRUE(repo->load(id).value().from_snapshot);
}

// ---- temporal queries ------------------------------------------------------------------------

// Brute force: every record of the log in position order, those of `id` selected by `keep`.
template <class Keep>
BankAccount brute_force(const LogReader& reader, const AggregateType<BankAccount>& type, StreamId id, Keep keep) {
  BankAccount s;
  RecordView v;
  for (auto c = reader.cursor(0); c.next(&v);) {
    if (v.is_event() && v.stream_id() == id && keep(v)) {
      EXPECT_TRUE(type.apply_record(s, v).ok());
    }
  }
  return s;
}

TEST(AggregateTemporal, AsOfVersionPositionAndTimeEqualBruteForceReplay) {
  std::mt19937_64 rng(11);
  BankEngine b;
  b.open(fresh_engine_dir("temporal", "as-of"));
  SnapshotPolicy p;
  p.every_events = 7;  // loads as of a target may start from the snapshot when it is older
  auto repo = b.repo(p);
  auto ids = run_random_commands(*repo, rng, 3, 200);
  auto reader = LogReader::open(b.dir).value();
  const uint64_t end = reader->end_position();
  for (int q = 0; q < 60; ++q) {
    const StreamId id = ids[rng() % ids.size()];
    const uint64_t n = reader->stream_positions(id).size();
    // version
    const uint64_t ver = rng() % (n + 2);
    auto lv = repo->load(id, AsOf::version(ver)).value();
    uint64_t seen = 0;
    EXPECT_TRUE(same(lv.state, brute_force(*reader, repo->type(), id, [&](const RecordView&) { return ++seen <= ver; })));
    EXPECT_EQ(lv.version, std::min(ver, n));
    // position
    const uint64_t pos = rng() % (end + 1);
    auto lp = repo->load(id, AsOf::position(pos)).value();
    EXPECT_TRUE(same(lp.state, brute_force(*reader, repo->type(), id, [&](const RecordView& v) { return v.position() < pos; })))
        << "position " << pos;
    // time: a record's own timestamp, +-1 ns
    RecordView r;
    ASSERT_TRUE(reader->read(rng() % end, &r));
    const int64_t ts = r.timestamp_ns() + static_cast<int64_t>(rng() % 3) - 1;
    auto lt = repo->load(id, AsOf::time(ts)).value();
    EXPECT_TRUE(same(lt.state, brute_force(*reader, repo->type(), id, [&](const RecordView& v) { return v.timestamp_ns() <= ts; })))
        << "time " << ts;
  }
}

TEST(AggregateTemporal, ProjectionReadModelAsOfAPosition) {
  std::mt19937_64 rng(5);
  BankEngine b;
  b.open(fresh_engine_dir("temporal", "projection"));
  auto repo = b.repo();
  auto ids = run_random_commands(*repo, rng, 4, 120);
  auto reader = LogReader::open(b.dir).value();
  for (uint64_t pos : {uint64_t{0}, reader->end_position() / 3, reader->end_position() / 2, reader->end_position()}) {
    auto model = projection_as_of<bank::Balances>(b.dir, b.engine->registry(), pos).value();
    for (size_t a = 0; a < ids.size(); ++a) {
      const auto expect = brute_force(*reader, repo->type(), ids[a], [&](const RecordView& v) { return v.position() < pos; });
      const auto got = model->balance(a);
      if (expect.deposits == 0) {
        EXPECT_FALSE(got.has_value()) << pos;
      } else {
        EXPECT_EQ(got.value_or(-1), expect.balance) << "account " << a << " position " << pos;
      }
    }
  }
}

// ---- replay debugging --------------------------------------------------------------------------

// A seeded bug: a second writer that skips the aggregate (raw appends, no overdraft rule)
// drives the balance negative; the finder names the first event after which it is.
TEST(AggregateDebug, InvariantFinderNamesTheFirstBadEvent) {
  BankEngine b;
  b.open(fresh_engine_dir("debug", "finder"));
  auto repo = b.repo();
  const StreamId id = repo->stream("account-3").value();
  ASSERT_TRUE(repo->execute(id, Deposit{3, 100, 1}).ok());
  ASSERT_TRUE(repo->execute(id, Withdraw{3, 60, 1}).ok());
  serialization::EncodeBuffer buf;
  auto bad = b.engine->registry().binding<bank::Withdrawn>().encode(bank::Withdrawn{3, 70, 2}, buf).value();
  const AppendResult a = b.engine->submit(id, ExpectedVersion::any(), bad);  // bypasses the rule
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(repo->execute(id, Deposit{3, 500, 3}).code == CommandCode::ok);
  const uint64_t end = b.engine->committed_position();

  auto v = repo->find_violation(id, [](const BankAccount& s) {
                 return s.balance < 0 ? "negative balance " + std::to_string(s.balance) : std::string();
               }).value();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->version, 3u);
  EXPECT_EQ(v->position, a.position);
  EXPECT_EQ(v->before.balance, 40);
  EXPECT_EQ(v->after.balance, -30);
  EXPECT_EQ(v->event_type, "bank.Withdrawn");
  EXPECT_NE(v->event_json.find("\"amount\":70"), std::string::npos) << v->event_json;
  EXPECT_NE(v->reason.find("negative"), std::string::npos);
  EXPECT_EQ(b.engine->committed_position(), end);  // replaying wrote nothing

  auto none = repo->find_violation(id, [](const BankAccount&) { return std::string(); }).value();
  EXPECT_FALSE(none.has_value());
}

// The whole log: accounts replayed side by side in log order; the first bad event in the log
// wins, whichever account it is in; streams the filter refuses are not replayed.
TEST(AggregateDebug, InvariantFinderOverTheWholeLogFindsTheFirstInLogOrder) {
  BankEngine b;
  b.open(fresh_engine_dir("debug", "whole-log"));
  auto repo = b.repo();
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 4; ++a) {
    ids.push_back(repo->stream("account-" + std::to_string(a)).value());
    ASSERT_TRUE(repo->execute(ids[a], Deposit{a, 100, 1}).ok());
  }
  const StreamId other = repo->stream("audit-log").value();  // not an account
  serialization::EncodeBuffer buf;
  const auto withdrawn = b.engine->registry().binding<bank::Withdrawn>();
  ASSERT_TRUE(b.engine->submit(other, ExpectedVersion::any(), withdrawn.encode(bank::Withdrawn{9, 999, 1}, buf).value()).ok());
  const AppendResult first_bad =
      b.engine->submit(ids[2], ExpectedVersion::any(), withdrawn.encode(bank::Withdrawn{2, 150, 1}, buf).value());
  ASSERT_TRUE(first_bad.ok());
  ASSERT_TRUE(b.engine->submit(ids[1], ExpectedVersion::any(), withdrawn.encode(bank::Withdrawn{1, 500, 1}, buf).value()).ok());
  auto reader = LogReader::open(b.dir).value();
  auto v = find_violation_in_log(
               repo->type(), *reader, [](std::string_view name) { return name.rfind("account-", 0) == 0; },
               [](const BankAccount& s) { return s.balance < 0 ? std::string("negative") : std::string(); })
               .value();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->first, ids[2]);
  EXPECT_EQ(v->second.position, first_bad.position);
  EXPECT_EQ(v->second.version, 2u);
  EXPECT_EQ(v->second.before.balance, 100);
  EXPECT_EQ(v->second.after.balance, -50);
}

}  // namespace
}  // namespace sluice
