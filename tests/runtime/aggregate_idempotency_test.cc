// Idempotency keys: a repeated key returns the first result without running the handler —
// also after kill -9 and a restart (the index is rebuilt from the log); the window; key
// collisions; the IdempotencyIndex table itself.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "runtime/aggregate_test_util.h"
#include "sluice/bus/log_reader.h"

namespace sluice {
namespace {

using bank::BankAccount;
using bank::Deposit;
using bank::Withdraw;
using testing::BankEngine;
using testing::fresh_engine_dir;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TEST(Idempotency, RepeatedKeyReturnsTheFirstResultAndWritesNothing) {
  BankEngine b;
  b.open(fresh_engine_dir("idem", "repeat"));
  auto repo = b.repo();
  const StreamId id = repo->stream("account-1").value();
  ASSERT_TRUE(repo->execute(id, Deposit{1, 1000, 1}).ok());
  const Id128 key = IdempotencyKey::make(now_ms(), 42);
  auto first = repo->execute(id, Withdraw{1, 300, 1}, CommandOptions::keyed(key));
  ASSERT_EQ(first.code, CommandCode::ok) << first.message;
  const uint64_t end = b.engine->committed_position();
  auto again = repo->execute(id, Withdraw{1, 300, 1}, CommandOptions::keyed(key));
  EXPECT_EQ(again.code, CommandCode::duplicate);
  EXPECT_TRUE(again.ok());
  EXPECT_EQ(again.position, first.position);
  EXPECT_EQ(again.version, first.version);
  EXPECT_EQ(again.events, 1u);
  EXPECT_EQ(again.attempts, 0u);  // the handler did not run
  EXPECT_EQ(b.engine->committed_position(), end);
  EXPECT_EQ(repo->load(id).value().state.balance, 700);
  // The key is in the record's header, with the command's fingerprint as causation id.
  auto reader = LogReader::open(b.dir).value();
  RecordView v;
  ASSERT_TRUE(reader->read(first.position, &v));
  EXPECT_EQ(v.idempotency_key(), key);
  EXPECT_FALSE(v.causation_id().empty());
}

TEST(Idempotency, RetryThroughAnotherRepositoryOfTheLogIsADuplicate) {
  BankEngine b;
  b.open(fresh_engine_dir("idem", "two-repos"));
  auto a = b.repo();
  auto c = b.repo();  // another front end on the same log: shares the log's index
  const StreamId id = a->stream("account-1").value();
  const Id128 key = IdempotencyKey::make(now_ms(), 1);
  auto first = a->execute(id, Deposit{1, 10, 1}, CommandOptions::keyed(key));
  ASSERT_EQ(first.code, CommandCode::ok);
  auto again = c->execute(id, Deposit{1, 10, 1}, CommandOptions::keyed(key));
  EXPECT_EQ(again.code, CommandCode::duplicate);
  EXPECT_EQ(again.position, first.position);
  EXPECT_EQ(c->load(id).value().state.balance, 10);
}

TEST(Idempotency, SameKeyWithOtherContentOrAggregateIsACollision) {
  BankEngine b;
  b.open(fresh_engine_dir("idem", "collision"));
  auto repo = b.repo();
  const StreamId a = repo->stream("account-1").value();
  const StreamId c = repo->stream("account-2").value();
  const Id128 key = IdempotencyKey::make(now_ms(), 7);
  ASSERT_EQ(repo->execute(a, Deposit{1, 100, 1}, CommandOptions::keyed(key)).code, CommandCode::ok);
  const uint64_t end = b.engine->committed_position();
  auto other_amount = repo->execute(a, Deposit{1, 101, 1}, CommandOptions::keyed(key));
  EXPECT_EQ(other_amount.code, CommandCode::key_collision) << other_amount.message;
  auto other_type = repo->execute(a, Withdraw{1, 100, 1}, CommandOptions::keyed(key));
  EXPECT_EQ(other_type.code, CommandCode::key_collision);
  auto other_stream = repo->execute(c, Deposit{1, 100, 1}, CommandOptions::keyed(key));
  EXPECT_EQ(other_stream.code, CommandCode::key_collision);
  EXPECT_NE(other_stream.message.find("another aggregate"), std::string::npos) << other_stream.message;
  EXPECT_EQ(b.engine->committed_position(), end);  // nothing merged, nothing written
  EXPECT_EQ(repo->stats().key_collisions, 3u);
}

TEST(Idempotency, RejectedCommandIsNotRememberedAndMayBeRetried) {
  BankEngine b;
  b.open(fresh_engine_dir("idem", "rejected"));
  auto repo = b.repo();
  const StreamId id = repo->stream("account-1").value();
  const Id128 key = IdempotencyKey::make(now_ms(), 9);
  EXPECT_EQ(repo->execute(id, Withdraw{1, 50, 1}, CommandOptions::keyed(key)).code, CommandCode::rejected);
  ASSERT_TRUE(repo->execute(id, Deposit{1, 100, 1}).ok());
  EXPECT_EQ(repo->execute(id, Withdraw{1, 50, 1}, CommandOptions::keyed(key)).code, CommandCode::ok);
  EXPECT_EQ(repo->execute(id, Withdraw{1, 50, 1}, CommandOptions::keyed(key)).code, CommandCode::duplicate);
  EXPECT_EQ(repo->load(id).value().state.balance, 50);
}

TEST(Idempotency, KeyOlderThanTheWindowIsReportedNotExecuted) {
  BankEngine b;
  b.open(fresh_engine_dir("idem", "window"));
  RepositoryOptions o;
  o.idempotency.window = std::chrono::minutes(10);
  auto repo = b.repo({}, o);
  const StreamId id = repo->stream("account-1").value();
  const uint64_t end = b.engine->committed_position();
  auto r = repo->execute(id, Deposit{1, 100, 1}, CommandOptions::keyed(IdempotencyKey::make(now_ms() - 11 * 60'000, 1)));
  EXPECT_EQ(r.code, CommandCode::key_out_of_window);
  EXPECT_EQ(b.engine->committed_position(), end);
  EXPECT_EQ(repo->stats().keys_out_of_window, 1u);
}

TEST(Idempotency, KeyEvictedByTheCountBoundIsOutOfWindow) {
  BankEngine b;
  b.open(fresh_engine_dir("idem", "count"));
  RepositoryOptions o;
  o.idempotency.max_keys = 4;
  auto repo = b.repo({}, o);
  const StreamId id = repo->stream("account-1").value();
  const int64_t t0 = now_ms() - 1000;
  for (uint64_t i = 0; i < 6; ++i)
    ASSERT_EQ(repo->execute(id, Deposit{1, 10, 1}, CommandOptions::keyed(IdempotencyKey::make(t0 + static_cast<int64_t>(i), i))).code,
              CommandCode::ok);
  // Keys 0 and 1 were evicted by newer ones: reported, not run again; 2..5 are duplicates.
  EXPECT_EQ(repo->execute(id, Deposit{1, 10, 1}, CommandOptions::keyed(IdempotencyKey::make(t0, 0))).code,
            CommandCode::key_out_of_window);
  EXPECT_EQ(repo->execute(id, Deposit{1, 10, 1}, CommandOptions::keyed(IdempotencyKey::make(t0 + 5, 5))).code,
            CommandCode::duplicate);
  EXPECT_EQ(repo->load(id).value().state.balance, 60);
}

// The child runs keyed commands and is killed with SIGKILL right after the last returned;
// the parent restarts: the same keys are duplicates with the first results, nothing written.
TEST(IdempotencyCrash, RepeatedKeyAfterKill9ReturnsTheFirstResult) {
  const std::string dir = fresh_engine_dir("idem", "kill9");
  const int64_t t0 = now_ms();
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    BankEngine b;
    b.open(dir);
    auto repo = b.repo();
    const StreamId id = repo->stream("account-1").value();
    uint64_t results[2 * 5];
    for (uint64_t i = 0; i < 5; ++i) {
      auto r = repo->execute(id, Deposit{1, static_cast<int64_t>(100 + i), 1},
                             CommandOptions::keyed(IdempotencyKey::make(t0, i)));
      if (r.code != CommandCode::ok) ::_exit(20);
      results[2 * i] = r.position;
      results[2 * i + 1] = r.version;
    }
    if (::write(pipefd[1], results, sizeof results) != static_cast<ssize_t>(sizeof results)) ::_exit(21);
    ::raise(SIGKILL);  // no stop(), no flush: the engine dies with the process
    ::_exit(22);
  }
  ::close(pipefd[1]);
  uint64_t results[2 * 5];
  ASSERT_EQ(::read(pipefd[0], results, sizeof results), static_cast<ssize_t>(sizeof results));
  ::close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

  BankEngine b;
  b.open(dir);
  auto repo = b.repo();
  const StreamId id = repo->stream("account-1").value();
  const uint64_t end = b.engine->committed_position();
  for (uint64_t i = 0; i < 5; ++i) {
    auto r = repo->execute(id, Deposit{1, static_cast<int64_t>(100 + i), 1}, CommandOptions::keyed(IdempotencyKey::make(t0, i)));
    EXPECT_EQ(r.code, CommandCode::duplicate) << i << ": " << r.message;
    EXPECT_EQ(r.position, results[2 * i]);
    EXPECT_EQ(r.version, results[2 * i + 1]);
  }
  EXPECT_EQ(b.engine->committed_position(), end);
  EXPECT_EQ(repo->load(id).value().state.balance, 100 + 101 + 102 + 103 + 104);
  // A new key still runs.
  EXPECT_EQ(repo->execute(id, Deposit{1, 1, 1}, CommandOptions::keyed(IdempotencyKey::make(t0, 99))).code, CommandCode::ok);
}

// A command that writes several events is deduplicated as a whole, also after a restart.
TEST(Idempotency, MultiEventCommandIsOneEntryAfterRebuild) {
  const std::string dir = fresh_engine_dir("idem", "multi");
  struct Split {
    int64_t a = 0, b = 0;
  };
  auto type_with_split = [] {
    auto t = bank::account_type();
    t.handle<Split>([](const BankAccount&, const Split& c, Emitter& out) -> Decision {
      out.emit(bank::Deposited{1, c.a, 1});
      out.emit(bank::Deposited{1, c.b, 1});
      return Decision::accept();
    });
    return t;
  };
  const Id128 key = IdempotencyKey::make(now_ms(), 5);
  CommandResult first;
  {
    BankEngine b;
    b.open(dir);
    auto repo = Repository<BankAccount>::open(*b.engine, type_with_split()).value();
    const StreamId id = repo->stream("account-1").value();
    first = repo->execute(id, Split{10, 20}, CommandOptions::keyed(key));
    ASSERT_EQ(first.code, CommandCode::ok) << first.message;
    EXPECT_EQ(first.events, 2u);
  }
  BankEngine b;
  b.open(dir);
  auto repo = Repository<BankAccount>::open(*b.engine, type_with_split()).value();
  const StreamId id = repo->stream("account-1").value();
  auto again = repo->execute(id, Split{10, 20}, CommandOptions::keyed(key));
  EXPECT_EQ(again.code, CommandCode::duplicate);
  EXPECT_EQ(again.events, 2u);
  EXPECT_EQ(again.position, first.position);
  EXPECT_EQ(again.version, first.version);
  EXPECT_EQ(repo->load(id).value().state.balance, 30);
}

TEST(IdempotencyConcurrency, SameKeyFromManyThreadsRunsOnce) {
  BankEngine b;
  b.open(fresh_engine_dir("idem", "threads"));
  auto repo = b.repo();
  const StreamId id = repo->stream("account-1").value();
  const Id128 key = IdempotencyKey::make(now_ms(), 77);
  std::atomic<int> ok{0}, dup{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto r = repo->execute(id, Deposit{1, 5, 1}, CommandOptions::keyed(key));
        if (r.code == CommandCode::ok) ok.fetch_add(1);
        else if (r.code == CommandCode::duplicate) dup.fetch_add(1);
        else ADD_FAILURE() << r.message;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(dup.load(), 79);
  EXPECT_EQ(repo->load(id).value().state.balance, 5);
}

// The table against a reference map: random begin/commit/abandon with deletions by
// backward shift, every committed key findable until evicted.
TEST(IdempotencyIndexTable, AgreesWithAReferenceMap) {
  constexpr uint32_t kMax = 64;
  IdempotencyIndex index(kMax, std::chrono::hours(1));
  std::mt19937_64 rng(3);
  const int64_t now = 1'000'000'000;
  std::unordered_map<uint64_t, uint64_t> committed;  // lo -> position, in insertion order below
  std::vector<uint64_t> order;
  for (uint64_t i = 1; i <= 2000; ++i) {
    const Id128 k = IdempotencyKey::make(now - 1000 + static_cast<int64_t>(i / 4), i);
    IdempotencyIndex::Entry found;
    IdempotencyIndex::Ticket t = 0;
    ASSERT_EQ(index.begin(k, Id128{1, 1}, 1, now, &found, &t), IdempotencyIndex::Check::fresh);
    if (rng() % 4 == 0) {
      index.abandon(t);
      continue;
    }
    index.commit(t, i, i, 1);
    committed[i] = i;
    order.push_back(i);
  }
  ASSERT_LE(index.size(), kMax);
  size_t found_count = 0;
  for (uint64_t i : order) {
    IdempotencyIndex::Entry f;
    IdempotencyIndex::Ticket t = 0;
    const auto c =
        index.begin(IdempotencyKey::make(now - 1000 + static_cast<int64_t>(i / 4), i), Id128{1, 1}, 1, now, &f, &t);
    if (c == IdempotencyIndex::Check::duplicate) {
      EXPECT_EQ(f.position, committed[i]);
      ++found_count;
    } else {
      EXPECT_EQ(c, IdempotencyIndex::Check::out_of_window) << i;
    }
  }
  EXPECT_GT(found_count, kMax / 2);
}

// begin() hands out a ticket that commit()/abandon() use without a second lookup. A ticket
// whose entry was evicted meanwhile (here: the count bound forces the in-flight oldest out)
// is stale: committing or abandoning it changes nothing, also once its ring position holds
// another key, and the evicted key is then out of the window, not executed again.
TEST(IdempotencyIndexTable, StaleTicketAfterAnEvictionChangesNothing) {
  IdempotencyIndex index(2, std::chrono::hours(1));
  const int64_t now = 1'000'000'000;
  const Id128 c{7, 7};
  IdempotencyIndex::Entry f;
  IdempotencyIndex::Ticket ta = 0, tb = 0, tc = 0, td = 0;
  const Id128 a = IdempotencyKey::make(now - 40, 1), b = IdempotencyKey::make(now - 30, 2),
              k3 = IdempotencyKey::make(now - 20, 3), k4 = IdempotencyKey::make(now - 10, 4);
  ASSERT_EQ(index.begin(a, c, 1, now, &f, &ta), IdempotencyIndex::Check::fresh);  // stays in flight
  ASSERT_EQ(index.begin(b, c, 1, now, &f, &tb), IdempotencyIndex::Check::fresh);
  index.commit(tb, 20, 2, 1);
  // Full, and the oldest is in flight: it is dropped anyway, its time becomes the horizon;
  // k3 takes a's ring position (a ring of 2).
  ASSERT_EQ(index.begin(k3, c, 1, now, &f, &tc), IdempotencyIndex::Check::fresh);
  EXPECT_EQ(index.horizon_ms(), now - 40);
  index.commit(ta, 10, 1, 1);  // stale: nothing
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.begin(a, c, 1, now, &f, &ta), IdempotencyIndex::Check::out_of_window);
  index.commit(tc, 30, 3, 1);
  // k4 evicts b (the count bound).
  ASSERT_EQ(index.begin(k4, c, 1, now, &f, &td), IdempotencyIndex::Check::fresh);
  index.commit(ta, 99, 99, 9);  // stale ticket of k3's ring position: still nothing
  index.abandon(ta);
  index.commit(td, 40, 4, 2);
  EXPECT_EQ(index.size(), 2u);
  ASSERT_EQ(index.begin(k4, c, 1, now, &f, &td), IdempotencyIndex::Check::duplicate);
  EXPECT_EQ(f.position, 40u);
  EXPECT_EQ(f.version, 4u);
  EXPECT_EQ(f.events, 2u);
  ASSERT_EQ(index.begin(k3, c, 1, now, &f, &tc), IdempotencyIndex::Check::duplicate);
  EXPECT_EQ(f.position, 30u);
  EXPECT_EQ(index.begin(b, c, 1, now, &f, &tb), IdempotencyIndex::Check::out_of_window);
}

// An in-flight key older than the window is evicted by the next begin(); its ticket is stale.
TEST(IdempotencyIndexTable, InFlightKeyPastTheWindowIsEvictedAndItsTicketIsStale) {
  IdempotencyIndex index(16, std::chrono::milliseconds(100));
  const int64_t now = 1'000'000'000;
  const Id128 c{7, 7};
  IdempotencyIndex::Entry f;
  IdempotencyIndex::Ticket ta = 0, tb = 0;
  const Id128 a = IdempotencyKey::make(now, 1), b = IdempotencyKey::make(now + 150, 2);
  ASSERT_EQ(index.begin(a, c, 1, now, &f, &ta), IdempotencyIndex::Check::fresh);
  ASSERT_EQ(index.begin(b, c, 1, now + 150, &f, &tb), IdempotencyIndex::Check::fresh);
  EXPECT_EQ(index.horizon_ms(), now);
  index.commit(ta, 10, 1, 1);
  index.commit(tb, 11, 2, 1);
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.begin(a, c, 1, now + 150, &f, &ta), IdempotencyIndex::Check::out_of_window);
  ASSERT_EQ(index.begin(b, c, 1, now + 150, &f, &tb), IdempotencyIndex::Check::duplicate);
  EXPECT_EQ(f.position, 11u);
}

// A key abandoned (nothing written) and begun again: when the abandoned entry leaves the
// ring, the key's new entry stays.
TEST(IdempotencyIndexTable, AbandonedThenRetriedKeyKeepsItsNewEntry) {
  IdempotencyIndex index(4, std::chrono::hours(1));
  const int64_t now = 1'000'000'000;
  const Id128 c{7, 7};
  IdempotencyIndex::Entry f;
  IdempotencyIndex::Ticket t = 0;
  const Id128 a = IdempotencyKey::make(now - 100, 1);
  ASSERT_EQ(index.begin(a, c, 1, now, &f, &t), IdempotencyIndex::Check::fresh);
  index.abandon(t);
  index.abandon(t);  // twice: the second is stale
  EXPECT_EQ(index.size(), 0u);
  ASSERT_EQ(index.begin(a, c, 1, now, &f, &t), IdempotencyIndex::Check::fresh);
  index.commit(t, 5, 1, 1);
  for (uint64_t i = 2; i <= 4; ++i) {  // the abandoned entry leaves the ring at the 4th
    ASSERT_EQ(index.begin(IdempotencyKey::make(now - 100 + static_cast<int64_t>(i), i), c, 1, now, &f, &t),
              IdempotencyIndex::Check::fresh);
    index.commit(t, 5 + i, i, 1);
  }
  EXPECT_EQ(index.size(), 4u);
  ASSERT_EQ(index.begin(a, c, 1, now, &f, &t), IdempotencyIndex::Check::duplicate);
  EXPECT_EQ(f.position, 5u);
  EXPECT_EQ(index.horizon_ms(), INT64_MIN);  // nothing evicted
}

// Many threads, many keys, one small index (evictions all the time): every duplicate answer
// is the first result of that key (TSan: the index's state is shared).
TEST(IdempotencyConcurrency, IndexSharedByThreadsUnderEviction) {
  IdempotencyIndex index(64, std::chrono::hours(1));
  const int64_t now = 1'000'000'000;
  constexpr int kThreads = 4;
  std::atomic<int> bad{0};  // relaxed: read after join()
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th)
    threads.emplace_back([&, th] {
      std::mt19937_64 rng(static_cast<uint64_t>(th) + 1);
      for (uint64_t i = 1; i <= 3000; ++i) {
        // Half the time a recent key of this thread's (maybe evicted, maybe a duplicate).
        const uint64_t n = (rng() % 2 == 0 && i > 8) ? i - 1 - rng() % 8 : i;
        const uint64_t lo = static_cast<uint64_t>(th) << 32 | n;
        const Id128 k = IdempotencyKey::make(now - 100000 + static_cast<int64_t>(n), lo);
        IdempotencyIndex::Entry f;
        IdempotencyIndex::Ticket t = 0;
        switch (index.begin(k, Id128{1, lo}, 1, now, &f, &t)) {
          case IdempotencyIndex::Check::fresh:
            if (rng() % 5 == 0) index.abandon(t);
            else index.commit(t, lo, n, 1);
            break;
          case IdempotencyIndex::Check::duplicate:
            if (f.position != lo || f.version != n || !(f.key == k)) bad.fetch_add(1, std::memory_order_relaxed);
            break;
          case IdempotencyIndex::Check::out_of_window:
          case IdempotencyIndex::Check::in_flight:
            break;
          case IdempotencyIndex::Check::collision:
            bad.fetch_add(1, std::memory_order_relaxed);
            break;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(index.size(), 64u);
}

}  // namespace
}  // namespace sluice
