// The command hot path allocates nothing once warm: a cached aggregate, a handler that
// accepts, one append, the decode and apply of the committed events — with and without an
// idempotency key; through a LogWriter port (the repository's own path) and through the
// engine's ingress (the deployed path). Counted on the commanding thread only.
#include <gtest/gtest.h>

#include <chrono>

#include "bank_account.h"
#include "common/alloc_counter.h"
#include "runtime/aggregate_test_util.h"
#include "sluice/runtime/repository.h"

namespace sluice {
namespace {

// 100 warm-up rounds, then 1000 counted rounds of a plain and a keyed command.
void expect_no_allocation(Repository<bank::BankAccount>& repo, StreamId id) {
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (uint64_t i = 0; i < 100; ++i) {
    ASSERT_EQ(repo.execute(id, bank::Deposit{1, 10, 1}).code, CommandCode::ok);
    ASSERT_EQ(repo.execute(id, bank::Withdraw{1, 5, 1}, CommandOptions::keyed(IdempotencyKey::make(ms, i))).code,
              CommandCode::ok);
  }
  uint64_t failures = 0;
  g_allocations = 0;
  t_counting = true;  // this thread only: the writer and workers are not counted
  for (uint64_t i = 0; i < 1000; ++i) {
    const CommandResult a = repo.execute(id, bank::Deposit{1, 10, 1});
    const CommandResult b = repo.execute(id, bank::Withdraw{1, 5, 1}, CommandOptions::keyed(IdempotencyKey::make(ms, 1000 + i)));
    failures += (a.code != CommandCode::ok) + (b.code != CommandCode::ok);
  }
  t_counting = false;
  EXPECT_EQ(failures, 0u);
  EXPECT_EQ(g_allocations.load(), 0u) << "heap allocations on the commanding thread";
  EXPECT_EQ(repo.load(id).value().state.balance, 1100 * 5);
}

TEST(AggregateHotPath, WarmCommandsAllocateNothingOnAWriterPort) {
  const std::string dir = testing::fresh_engine_dir("aggregate-alloc", "writer");
  LogOptions lo;
  lo.segment_size = 16 << 20;
  auto writer = LogWriter::open(dir, lo).value();
  serialization::SchemaRegistry registry;
  ASSERT_TRUE(registry.bind<bank::Deposited>(serialization::CodecId::raw, writer.get()).ok());
  ASSERT_TRUE(registry.bind<bank::Withdrawn>(serialization::CodecId::raw, writer.get()).ok());
  auto port = make_writer_port(*writer);
  auto repo = Repository<bank::BankAccount>::open(*port, registry, bank::account_type()).value();
  expect_no_allocation(*repo, repo->stream("account-1").value());
}

TEST(AggregateHotPath, WarmCommandsAllocateNothingThroughTheEngine) {
  testing::BankEngine b;
  b.open(testing::fresh_engine_dir("aggregate-alloc", "engine"));
  auto repo = b.repo();
  expect_no_allocation(*repo, repo->stream("account-1").value());
}

}  // namespace
}  // namespace sluice
