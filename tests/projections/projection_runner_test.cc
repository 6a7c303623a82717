// ProjectionRunner on a real log, driven by LogTail: determinism (checkpointed restarts and
// a rebuild from zero give the live digest), dead-letter parking per key, the stop policy,
// retries of a throwing handler, lag figures on a controlled clock, checkpoint refusal.
#include "sluice/projections/projection_runner.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "bank_model.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "sluice/projections/log_tail.h"
#include "sluice/projections/rebuild.h"

namespace sluice {
namespace {

std::string fresh_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("sluice-proj-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

// Appends `n` bank events over `accounts` accounts: deposits, and withdrawals that never
// overdraw (tracked here), plus the extra events a test asks for.
void write_bank_log(LogWriter& w, uint64_t n, uint64_t accounts, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> bal(accounts, 0);
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < accounts; ++a) ids.push_back(w.stream(bank::stream_name(a)).value());
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t a = rng() % accounts;
    const int64_t amount = static_cast<int64_t>(rng() % 1000) + 1;
    const int64_t day = static_cast<int64_t>(i / 1000);
    if (bal[a] >= amount && rng() % 3 == 0) {
      bank::Withdrawn e{a, amount, day};
      bal[a] -= amount;
      ASSERT_TRUE(w.append(ids[a], ExpectedVersion::any(), encode_raw(e)).ok());
    } else {
      bank::Deposited e{a, amount, day};
      bal[a] += amount;
      ASSERT_TRUE(w.append(ids[a], ExpectedVersion::any(), encode_raw(e)).ok());
    }
  }
}

EventData one_byte_event(std::span<const std::byte> p) {
  EventData d;
  d.type = 1;
  d.payload = p;
  return d;
}

ProjectionFactory balances_factory() {
  return [] { return std::make_unique<bank::Balances>(); };
}

// Feeds a runner from the log until it reaches `end`.
void run_to(LogTail& tail, ProjectionRunner& r, uint64_t end, uint32_t batch) {
  ProjectionRunner* rs[] = {&r};
  while (r.next_position() < end && !r.stopped()) ASSERT_GT(tail.poll(rs, batch), 0u);
}

TEST(ProjectionRunner, CheckpointedRestartsAndRebuildGiveTheSameDigest) {
  const std::string dir = fresh_dir("determinism");
  auto w = LogWriter::open(dir).value();
  write_bank_log(*w, 20000, 50, 1);
  const uint64_t end = w->committed_position();

  // Live run, restarted from its checkpoint three times, with odd batch sizes.
  ProjectionOptions o;
  o.checkpoint_every = 0;
  o.checkpoint_interval = std::chrono::milliseconds(0);
  uint64_t live_digest = 0;
  const uint64_t stops[] = {3001, 9999, 15000, end};
  const uint32_t batches[] = {1, 7, 333, 1024};
  uint64_t checkpointed = 0;  // where the previous round's checkpoint is
  for (int i = 0; i < 4; ++i) {
    ProjectionRunner r("balances", balances_factory(), o, {.log_dir = dir});
    ASSERT_TRUE(r.open(end).ok());
    // Restored from the previous round's checkpoint (were it ignored, the runner would
    // replay from 0 and the digests below would still agree).
    ASSERT_EQ(r.next_position(), checkpointed) << "round " << i;
    auto tail = LogTail::open(dir).value();
    run_to(*tail, r, stops[i], batches[i]);
    // Stop mid-way: the checkpoint is written at whatever position the runner reached.
    ASSERT_TRUE(write_checkpoint(dir, "balances", r.snapshot_now()).ok());
    checkpointed = r.next_position();
    ASSERT_GT(checkpointed, 0u);
    live_digest = r.digest();
  }
  auto rebuilt = rebuild_projection(dir, "balances", balances_factory(), o);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().to_string();
  EXPECT_EQ(rebuilt->events, end);
  EXPECT_EQ(rebuilt->digest, live_digest);
  EXPECT_EQ(rebuilt->dead_letters, 0u);
  ASSERT_TRUE(w->close().ok());
}

TEST(ProjectionRunner, RejectedEventIsParkedPerKeyWhileOtherKeysGoOn) {
  const std::string dir = fresh_dir("deadletter");
  auto w = LogWriter::open(dir).value();
  const StreamId a = w->stream("account-1").value(), b = w->stream("account-2").value();
  auto app = [&](StreamId s, auto e) { ASSERT_TRUE(w->append(s, ExpectedVersion::any(), encode_raw(e)).ok()); };
  app(a, bank::Deposited{1, 100, 0});
  app(a, bank::Withdrawn{1, 500, 0});  // overdraft: rejected, parked
  app(b, bank::Deposited{2, 10, 0});
  app(a, bank::Deposited{1, 1000, 0});  // same key: parked behind it
  app(b, bank::Deposited{2, 5, 0});
  std::vector<counters::Slot> slots(1);
  std::memset(static_cast<void*>(slots.data()), 0, sizeof(counters::Slot));
  ProjectionRunner r("balances", balances_factory(), {}, {.log_dir = dir, .slot = &slots[0]});
  ASSERT_TRUE(r.open(w->committed_position()).ok());
  auto tail = LogTail::open(dir).value();
  run_to(*tail, r, 5, 2);
  auto model = std::static_pointer_cast<const bank::Balances>(r.model());
  EXPECT_EQ(model->balance(1), 100);  // neither the overdraft nor the later deposit applied
  EXPECT_EQ(model->balance(2), 15);   // the other key went on
  auto dls = r.dead_letters();
  ASSERT_EQ(dls.size(), 2u);
  EXPECT_EQ(dls[0].position, 1u);
  EXPECT_EQ(dls[0].key, a);
  EXPECT_EQ(dls[0].attempts, 1u);  // reject: no retries
  EXPECT_EQ(dls[1].position, 3u);
  EXPECT_EQ(counters::get(slots[0].counters.dead_letters), 2u);
  EXPECT_EQ(counters::get(slots[0].counters.parked_keys), 1u);
  EXPECT_EQ(r.applied_position(), 5u);
  // Parked keys and dead letters survive a checkpoint.
  ASSERT_TRUE(write_checkpoint(dir, "balances", r.snapshot_now()).ok());
  ProjectionRunner r2("balances", balances_factory(), {}, {.log_dir = dir});
  ASSERT_TRUE(r2.open(w->committed_position()).ok());
  EXPECT_EQ(r2.dead_letters().size(), 2u);
  app(a, bank::Deposited{1, 1, 0});
  auto tail2 = LogTail::open(dir).value();
  run_to(*tail2, r2, 6, 16);
  EXPECT_EQ(std::static_pointer_cast<const bank::Balances>(r2.model())->balance(1), 100);
  EXPECT_EQ(r2.dead_letters().size(), 3u);
}

// Throws on its first `fail_times` calls for each event of type 1, then applies.
class Flaky final : public Projection {
 public:
  explicit Flaky(int fail_times, ApplyResult fail_with = ApplyResult::retry) : fail_times_(fail_times), fail_with_(fail_with) {}
  ApplyResult apply(const Event& e) override {
    if (e.type() != 1) return ApplyResult::skip;
    if (++calls_ <= fail_times_) {
      if (fail_with_ == ApplyResult::retry) throw std::runtime_error("database is down");
      return fail_with_;
    }
    calls_ = 0;
    store_.update(e.stream_id(), 0, [](int64_t& v) { ++v; });
    return ApplyResult::ok;
  }
  void save(SnapshotWriter& w) const override { store_.save(w); }
  Status load(SnapshotReader& r) override { return store_.load(r, "flaky"); }
  uint64_t digest() const noexcept override { return store_.digest(); }

 private:
  int fail_times_;
  ApplyResult fail_with_;
  int calls_ = 0;
  KeyedStore<int64_t> store_;
};

TEST(ProjectionRunner, ThrowingHandlerIsRetriedThenApplied) {
  const std::string dir = fresh_dir("retry");
  auto w = LogWriter::open(dir).value();
  const StreamId s = w->stream("s").value();
  std::byte p[1]{};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(w->append(s, ExpectedVersion::any(), one_byte_event(p)).ok());
  counters::Slot slot{};
  ProjectionOptions o;
  o.max_attempts = 3;
  ProjectionRunner r("flaky", [] { return std::make_unique<Flaky>(2); }, o, {.log_dir = dir, .slot = &slot});
  ASSERT_TRUE(r.open(3).ok());
  auto tail = LogTail::open(dir).value();
  run_to(*tail, r, 3, 8);
  EXPECT_TRUE(r.dead_letters().empty());
  EXPECT_EQ(counters::get(slot.counters.retries), 6u);
  EXPECT_EQ(counters::get(slot.counters.handler_errors), 6u);
}

TEST(ProjectionRunner, StopPolicyStopsOnlyThatProjectionWithANamedError) {
  const std::string dir = fresh_dir("stop");
  auto w = LogWriter::open(dir).value();
  const StreamId s = w->stream("s").value();
  std::byte p[1]{};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(w->append(s, ExpectedVersion::any(), one_byte_event(p)).ok());
  ProjectionOptions o;
  o.on_failure = FailurePolicy::stop;
  o.max_attempts = 2;
  ProjectionRunner bad("bad", [] { return std::make_unique<Flaky>(5); }, o, {.log_dir = dir});
  ProjectionRunner good("good", [] { return std::make_unique<Flaky>(0); }, o, {.log_dir = dir});
  ASSERT_TRUE(bad.open(3).ok());
  ASSERT_TRUE(good.open(3).ok());
  auto tail = LogTail::open(dir).value();
  ProjectionRunner* rs[] = {&bad, &good};
  while (tail->poll(rs, 1) > 0) {
  }
  EXPECT_TRUE(bad.failed());
  EXPECT_EQ(bad.applied_position(), 0u);
  const std::string msg = bad.failure().message();
  EXPECT_NE(msg.find("projection 'bad'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("database is down"), std::string::npos) << msg;
  EXPECT_EQ(good.applied_position(), 3u);
  EXPECT_EQ(bad.wait_for(0, std::chrono::milliseconds(1)).code(), StatusCode::invalid_argument);
}

// A clock the test moves by hand: the writer stamps events with it, the runner measures
// append->applied latency with it.
std::atomic<int64_t> g_now{1'000'000'000};
int64_t fake_clock() noexcept { return g_now.load(std::memory_order_relaxed); }

TEST(ProjectionRunner, LagFiguresOnAControlledClock) {
  const std::string dir = fresh_dir("lag");
  LogOptions lo;
  lo.clock_ns = fake_clock;
  auto w = LogWriter::open(dir, lo).value();
  const StreamId s = w->stream("account-1").value();
  // 100 events appended at t0; applied 1 µs .. 100 µs later, one per poll.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(w->append(s, ExpectedVersion::any(), encode_raw(bank::Deposited{1, 1, 0})).ok());
  counters::Slot slot{};
  slot.histogram.min = UINT64_MAX;
  ProjectionRunner r("balances", balances_factory(), {}, {.log_dir = dir, .slot = &slot, .clock_ns = fake_clock});
  ASSERT_TRUE(r.open(100).ok());
  auto tail = LogTail::open(dir).value();
  ProjectionRunner* rs[] = {&r};
  const int64_t t0 = g_now.load();
  for (int i = 1; i <= 100; ++i) {
    g_now.store(t0 + i * 1000);
    ASSERT_EQ(tail->poll(rs, 1), 1u);
  }
  const counters::HistogramSummary h = counters::summarize(slot.histogram);
  EXPECT_EQ(h.count, 100u);
  EXPECT_EQ(h.min, 1000u);
  EXPECT_EQ(h.max, 100000u);
  EXPECT_NEAR(static_cast<double>(h.p50), 50000.0, 50000.0 * 0.01);
  EXPECT_NEAR(static_cast<double>(h.p90), 90000.0, 90000.0 * 0.01);
  EXPECT_NEAR(static_cast<double>(h.p99), 99000.0, 99000.0 * 0.01);
  EXPECT_NEAR(h.mean, 50500.0, 1.0);
  EXPECT_EQ(counters::get(slot.counters.applied_position), 100u);
  EXPECT_EQ(counters::get(slot.counters.applied_timestamp_ns), t0);
}

// The histogram is filled at the batch's commit from one clock reading (in runs of equal
// buckets): it must hold exactly what recording each event's latency one by one gives,
// across many bucket edges, for events stamped after `now` (latency 0), and for a batch
// longer than the runner's latency buffer.
TEST(ProjectionRunner, BatchedLatencyHistogramEqualsOneByOneRecording) {
  const std::string dir = fresh_dir("hist");
  LogOptions lo;
  lo.clock_ns = fake_clock;
  auto w = LogWriter::open(dir, lo).value();
  const StreamId s = w->stream("account-1").value();
  const int64_t t0 = 5'000'000'000;
  const int64_t now = t0 + 10'000'000;
  for (int64_t i = 0; i < 1000; ++i) {
    // Gaps from 0 to ~20 µs: latencies from ~10 ms down to 0 cross many buckets; the last
    // events are stamped after `now`.
    g_now.store(i < 990 ? t0 + i * i * 10 + (i % 7) : now + i);
    ASSERT_TRUE(w->append(s, ExpectedVersion::any(), encode_raw(bank::Deposited{1, 1, 0})).ok());
  }
  g_now.store(now);
  counters::Slot slot{};
  slot.histogram.min = UINT64_MAX;
  ProjectionRunner r("balances", balances_factory(), {}, {.log_dir = dir, .slot = &slot, .clock_ns = fake_clock});
  ASSERT_TRUE(r.open(1000).ok());
  auto tail = LogTail::open(dir).value();
  ProjectionRunner* rs[] = {&r};
  ASSERT_EQ(tail->poll(rs, 600), 600u);  // one batch larger than the latency buffer
  ASSERT_EQ(tail->poll(rs, 600), 400u);
  auto ref = std::make_unique<counters::HistogramWords>();
  ref->min = UINT64_MAX;
  RecordView v;
  for (uint64_t p = 0; p < 1000; ++p) {
    ASSERT_TRUE(tail->reader().read(p, &v));
    counters::record(*ref, now > v.timestamp_ns() ? static_cast<uint64_t>(now - v.timestamp_ns()) : 0);
  }
  EXPECT_EQ(slot.histogram.count, 1000u);
  EXPECT_EQ(slot.histogram.sum, ref->sum);
  EXPECT_EQ(slot.histogram.min, 0u);
  EXPECT_EQ(slot.histogram.max, ref->max);
  EXPECT_GT(ref->max, 9'000'000u);
  uint32_t used = 0;
  for (uint32_t i = 0; i < counters::kBuckets; ++i) {
    ASSERT_EQ(slot.histogram.buckets[i], ref->buckets[i]) << "bucket " << i;
    used += ref->buckets[i] != 0;
  }
  EXPECT_GT(used, 100u);  // the test crossed many bucket edges
  EXPECT_EQ(counters::get(slot.counters.applied_position), 1000u);
  EXPECT_EQ(counters::get(slot.counters.batches), 2u);
}

// apply_record() for several runners, then one end_batch() each with one clock reading:
// nothing is visible to wait_for() before the commit, everything after it.
TEST(ProjectionRunner, ApplyThenEndBatchCommitsOnce) {
  const std::string dir = fresh_dir("twohalves");
  auto w = LogWriter::open(dir).value();
  write_bank_log(*w, 50, 5, 3);
  auto rd = LogReader::open(dir).value();
  ProjectionRunner a("balances", balances_factory(), {}, {.log_dir = dir});
  ProjectionRunner b("balances2", balances_factory(), {}, {.log_dir = dir});
  ASSERT_TRUE(a.open(50).ok());
  ASSERT_TRUE(b.open(50).ok());
  RecordView v;
  for (uint64_t p = 0; p < 50; ++p) {
    ASSERT_TRUE(rd->read(p, &v));
    a.apply_record(v);
    b.apply_record(v);
  }
  EXPECT_EQ(a.next_position(), 50u);
  EXPECT_EQ(a.applied_position(), 0u);  // applied, not committed yet
  const int64_t now = a.now_ns();
  a.end_batch(now);
  b.end_batch(now);
  EXPECT_EQ(a.applied_position(), 50u);
  EXPECT_EQ(b.applied_position(), 50u);
  EXPECT_EQ(a.digest(), b.digest());
  a.end_batch(now);  // nothing new: no second commit
  EXPECT_EQ(a.applied_position(), 50u);
}

TEST(ProjectionRunner, CheckpointPastTheLogsEndIsRefused) {
  const std::string dir = fresh_dir("pastend");
  auto w = LogWriter::open(dir).value();
  CheckpointData d;
  d.position = 10;
  bank::Balances empty;
  d.digest = empty.digest();
  SnapshotWriter sw(&d.payload);
  sw.u64(0);
  sw.u64(0);
  sw.i64(0);
  empty.save(sw);
  ASSERT_TRUE(write_checkpoint(dir, "balances", d).ok());
  ProjectionRunner r("balances", balances_factory(), {}, {.log_dir = dir});
  Status st = r.open(w->committed_position());
  EXPECT_EQ(st.code(), StatusCode::corruption);
  EXPECT_NE(st.message().find("past the log's end"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("balances"), std::string::npos);
}

TEST(ProjectionRunner, DamagedCheckpointIsReportedWithItsFile) {
  const std::string dir = fresh_dir("damaged");
  auto w = LogWriter::open(dir).value();
  CheckpointData d;
  d.payload = "0123456789abcdef";
  ASSERT_TRUE(write_checkpoint(dir, "p", d).ok());
  {
    FILE* f = std::fopen(checkpoint_path(dir, "p").c_str(), "r+b");
    std::fseek(f, 80, SEEK_SET);
    std::fputc('X', f);
    std::fclose(f);
  }
  auto r = read_checkpoint(dir, "p");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("p.ckpt"), std::string::npos);
  EXPECT_NE(r.status().message().find("CRC"), std::string::npos);
}

TEST(LatencyHistogram, BucketsAreWithinOnePercentFromNanosecondsToHours) {
  for (uint64_t v = 1; v < (uint64_t{3600} * 1'000'000'000 * 5); v = v * 1.01 + 1) {
    const uint32_t i = counters::bucket_index(v);
    ASSERT_LE(counters::bucket_lower(i), v);
    ASSERT_GT(counters::bucket_upper(i), v);
    const double mid = (counters::bucket_lower(i) + counters::bucket_upper(i) - 1) / 2.0;
    ASSERT_LE(std::abs(mid - static_cast<double>(v)) / static_cast<double>(v), 0.01) << v;
  }
}

}  // namespace
}  // namespace sluice
