// Aggregates and the command bus: decisions against the current state, typed rejections,
// bad input, conflicts and retries under concurrency (TSan: LABELS concurrency).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/aggregate_test_util.h"

namespace sluice {
namespace {

using bank::BankAccount;
using bank::Deposit;
using bank::Withdraw;
using testing::BankEngine;
using testing::fresh_engine_dir;

TEST(Aggregate, DepositThenWithdrawUpdatesStateAndVersion) {
  BankEngine b;
  b.open(fresh_engine_dir("aggregate", "basic"));
  auto repo = b.repo();
  const StreamId id = repo->stream("account-1").value();
  auto r1 = repo->execute(id, Deposit{1, 1000, 1});
  ASSERT_EQ(r1.code, CommandCode::ok) << r1.message;
  EXPECT_EQ(r1.version, 1u);
  EXPECT_EQ(r1.events, 1u);
  auto r2 = repo->execute(id, Withdraw{1, 400, 1});
  ASSERT_EQ(r2.code, CommandCode::ok) << r2.message;
  EXPECT_EQ(r2.version, 2u);
  EXPECT_GT(r2.position, r1.position);
  auto l = repo->load(id).value();
  EXPECT_EQ(l.state.balance, 600);
  EXPECT_EQ(l.version, 2u);
  EXPECT_EQ(l.position, r2.position);
}

TEST(Aggregate, OverdraftIsRejectedWithItsCodeAndWritesNothing) {
  BankEngine b;
  b.open(fresh_engine_dir("aggregate", "overdraft"));
  auto repo = b.repo();
  const StreamId id = repo->stream("account-2").value();
  ASSERT_TRUE(repo->execute(id, Deposit{2, 100, 1}).ok());
  const uint64_t end = b.engine->committed_position();
  auto r = repo->execute(id, Withdraw{2, 101, 1});
  EXPECT_EQ(r.code, CommandCode::rejected);
  EXPECT_EQ(r.reject_code, static_cast<uint32_t>(bank::AccountError::overdraft));
  EXPECT_NE(r.message.find("overdraft"), std::string::npos) << r.message;
  EXPECT_EQ(b.engine->committed_position(), end);
  EXPECT_EQ(repo->load(id).value().state.balance, 100);
  EXPECT_EQ(repo->stats().rejected, 1u);
}

struct Unknown {
  int x = 0;
};
TEST(Aggregate, UnknownCommandTypeIsATypedError) {
  BankEngine b;
  b.open(fresh_engine_dir("aggregate", "unknown"));
  auto repo = b.repo();
  const StreamId id = repo->stream("account-3").value();
  auto r = repo->execute(id, Unknown{1});
  EXPECT_EQ(r.code, CommandCode::unknown_command);
  EXPECT_NE(r.message.find("bank.Account"), std::string::npos) << r.message;
  EXPECT_EQ(r.attempts, 0u);
}

struct Explode {
  int64_t amount = 0;
};
TEST(Aggregate, HandlerThatThrowsFailsTheCommandAndWritesNothing) {
  BankEngine b;
  b.open(fresh_engine_dir("aggregate", "throws"));
  auto type = bank::account_type();
  type.handle<Explode>([](const BankAccount&, const Explode& c, Emitter& out) -> Decision {
    out.emit(bank::Deposited{9, c.amount, 1});  // emitted, then the handler fails
    throw std::runtime_error("boom");
  });
  auto repo = Repository<BankAccount>::open(*b.engine, std::move(type)).value();
  const StreamId id = repo->stream("account-9").value();
  const uint64_t end = b.engine->committed_position();
  auto r = repo->execute(id, Explode{5});
  EXPECT_EQ(r.code, CommandCode::handler_failed);
  EXPECT_NE(r.message.find("boom"), std::string::npos) << r.message;
  EXPECT_EQ(b.engine->committed_position(), end);
  // The aggregate still works afterwards.
  EXPECT_EQ(repo->execute(id, Deposit{9, 7, 1}).code, CommandCode::ok);
  EXPECT_EQ(repo->load(id).value().state.balance, 7);
}

TEST(Aggregate, EventTypeNotBoundInTheRegistryIsRefusedAtOpen) {
  BankEngine b;
  EngineOptions o = testing::small_engine_options();
  o.writer = WriterMode::ingress;
  o.stats_file = false;
  const std::string dir = fresh_engine_dir("aggregate", "unbound");
  auto e = Engine::open(dir, o).value();
  ASSERT_TRUE(e->bind<bank::Deposited>(serialization::CodecId::raw).ok());  // Withdrawn not bound
  ASSERT_TRUE(e->start().ok());
  auto repo = Repository<BankAccount>::open(*e, bank::account_type());
  ASSERT_FALSE(repo.ok());
  EXPECT_NE(repo.status().message().find("bank.Withdrawn"), std::string::npos) << repo.status().to_string();
  EXPECT_TRUE(e->stop().ok());
}

TEST(Aggregate, AnotherWriterMakesAConflictThatIsRetriedAgainstTheNewState) {
  BankEngine b;
  b.open(fresh_engine_dir("aggregate", "conflict"));
  auto a = b.repo();
  auto c = b.repo();  // a second command bus with its own cache (another front end)
  const StreamId id = a->stream("account-4").value();
  ASSERT_TRUE(a->execute(id, Deposit{4, 100, 1}).ok());     // a caches version 1
  ASSERT_TRUE(c->execute(id, Withdraw{4, 60, 1}).ok());     // c moves the stream to version 2
  auto r = a->execute(id, Withdraw{4, 50, 1});              // a's version 1 conflicts; after
  EXPECT_EQ(r.code, CommandCode::rejected) << r.message;   // catching up, 40 < 50: overdraft
  EXPECT_EQ(r.attempts, 2u);                                // on the second run
  EXPECT_EQ(a->stats().conflicts, 1u);
  auto ok = a->execute(id, Withdraw{4, 40, 1});
  EXPECT_EQ(ok.code, CommandCode::ok) << ok.message;
  EXPECT_EQ(ok.version, 3u);
  EXPECT_EQ(a->load(id).value().state.balance, 0);
}

// N threads on one account, through two repositories (so that their appends really
// conflict and are retried): the final balance is the sum of the accepted commands, and
// every accepted command is one event of the stream.
TEST(AggregateConcurrency, NThreadsOnOneAccountLoseNoUpdate) {
  BankEngine b;
  b.open(fresh_engine_dir("aggregate", "no-lost-update"));
  RepositoryOptions o;
  o.retry.max_attempts = 1000;
  std::unique_ptr<Repository<BankAccount>> repos[2] = {b.repo({}, o), b.repo({}, o)};
  const StreamId id = repos[0]->stream("account-5").value();
  ASSERT_TRUE(repos[0]->execute(id, Deposit{5, 10'000, 1}).ok());
  constexpr int kThreads = 4;
  constexpr int kCommands = 300;
  std::atomic<int64_t> accepted_sum{10'000};
  std::atomic<uint64_t> accepted{1};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      auto& repo = *repos[t % 2];
      for (int i = 0; i < kCommands; ++i) {
        const int64_t amount = 1 + (t * 7 + i) % 50;
        const bool withdraw = (i + t) % 3 == 0;
        CommandResult r = withdraw ? repo.execute(id, Withdraw{5, amount * 3, 1}) : repo.execute(id, Deposit{5, amount, 1});
        if (r.code == CommandCode::ok) {
          accepted_sum.fetch_add(withdraw ? -amount * 3 : amount);
          accepted.fetch_add(1);
        } else {
          // The allowed outcomes besides ok: an overdraft, or (very rarely) a command that
          // lost the race more often than the retry policy allows; neither writes anything.
          EXPECT_TRUE(r.code == CommandCode::rejected || r.code == CommandCode::conflict) << r.message;
        }
      }
    });
  for (auto& t : threads) t.join();
  auto l = repos[0]->load(id).value();
  EXPECT_EQ(l.state.balance, accepted_sum.load());
  EXPECT_EQ(l.version, accepted.load());
  EXPECT_GE(l.state.balance, 0);
  std::printf("conflicts retried: %llu + %llu\n", static_cast<unsigned long long>(repos[0]->stats().conflicts),
              static_cast<unsigned long long>(repos[1]->stats().conflicts));
  auto l2 = repos[1]->load(id).value();
  EXPECT_EQ(l2.state.balance, l.state.balance);
}

TEST(AggregateConcurrency, ThreadsOnDisjointAccountsOfOneRepository) {
  BankEngine b;
  b.open(fresh_engine_dir("aggregate", "disjoint"));
  RepositoryOptions o;
  o.cache_slots = 64;
  auto repo = b.repo({}, o);
  constexpr int kThreads = 4;
  std::vector<StreamId> ids;
  for (int t = 0; t < kThreads; ++t) ids.push_back(repo->stream("account-" + std::to_string(100 + t)).value());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) ASSERT_EQ(repo->execute(ids[t], Deposit{100u + t, 1 + i, 1}).code, CommandCode::ok);
    });
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(repo->load(ids[t]).value().state.balance, 200 * 201 / 2);
  EXPECT_EQ(repo->stats().conflicts, 0u);
}

TEST(Aggregate, ConflictAfterRetriesIsReportedWhenTheStreamKeepsMoving) {
  BankEngine b;
  b.open(fresh_engine_dir("aggregate", "retries"));
  RepositoryOptions o;
  o.retry.max_attempts = 2;
  auto a = b.repo({}, o);
  const StreamId id = a->stream("account-6").value();
  ASSERT_TRUE(a->execute(id, Deposit{6, 1, 1}).ok());
  // A handler during which another writer moves the stream each time it runs: every append
  // of the command conflicts.
  auto type = bank::account_type();
  int runs = 0;
  const auto deposited = b.engine->registry().binding<bank::Deposited>();
  type.handle<Explode>([&](const BankAccount&, const Explode& c, Emitter& out) -> Decision {
    ++runs;
    serialization::EncodeBuffer buf;
    EXPECT_TRUE(b.engine->submit(id, ExpectedVersion::any(), deposited.encode(bank::Deposited{6, 1, 1}, buf).value()).ok());
    out.emit(bank::Deposited{6, c.amount, 1});
    return Decision::accept();
  });
  auto moving = Repository<BankAccount>::open(*b.engine, std::move(type), o).value();
  ASSERT_TRUE(moving->execute(id, Deposit{6, 1, 1}).ok());  // load it into moving's cache
  auto r = moving->execute(id, Explode{5});
  EXPECT_EQ(r.code, CommandCode::conflict) << r.message;
  EXPECT_EQ(r.attempts, 2u);
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(moving->stats().conflict_failures, 1u);
}

TEST(Aggregate, BackPressureWhenTooManyCommandsAreInFlight) {
  BankEngine b;
  b.open(fresh_engine_dir("aggregate", "back-pressure"));
  RepositoryOptions o;
  o.max_in_flight = 1;
  auto type = bank::account_type();
  std::atomic<bool> inside{false}, release{false};
  type.handle<Explode>([&](const BankAccount&, const Explode&, Emitter&) -> Decision {
    inside.store(true);
    while (!release.load()) std::this_thread::yield();
    return Decision::accept();
  });
  auto repo = Repository<BankAccount>::open(*b.engine, std::move(type), o).value();
  const StreamId id = repo->stream("account-7").value();
  const StreamId other = repo->stream("account-8").value();
  std::thread t([&] { EXPECT_EQ(repo->execute(id, Explode{}).code, CommandCode::ok); });
  while (!inside.load()) std::this_thread::yield();
  EXPECT_EQ(repo->execute(other, Deposit{8, 1, 1}).code, CommandCode::back_pressured);
  release.store(true);
  t.join();
  EXPECT_EQ(repo->execute(other, Deposit{8, 1, 1}).code, CommandCode::ok);
}

TEST(Aggregate, WorksWithEveryCodec) {
  for (auto codec : {serialization::CodecId::raw, serialization::CodecId::flatbuffers, serialization::CodecId::json}) {
    BankEngine b;
    b.open(fresh_engine_dir("aggregate", "codec-" + std::string(serialization::to_string(codec))), codec);
    auto repo = b.repo();
    const StreamId id = repo->stream("account-1").value();
    ASSERT_TRUE(repo->execute(id, Deposit{1, 500, 1}).ok());
    ASSERT_TRUE(repo->execute(id, Withdraw{1, 200, 1}).ok());
    EXPECT_EQ(repo->execute(id, Withdraw{1, 400, 1}).code, CommandCode::rejected);
    auto other = b.repo();  // a fresh cache: loads by replay, decoding the codec's bytes
    EXPECT_EQ(other->load(id).value().state.balance, 300);
  }
}

}  // namespace
}  // namespace sluice
