// The command hot path allocates nothing once warm: a cached aggregate, a handler that
// accepts, one append (a LogWriter port, so only the repository's own path is counted),
// the decode and apply of the committed events — with and without an idempotency key.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <new>

#include "bank_account.h"
#include "runtime/engine_test_util.h"
#include "sluice/runtime/repository.h"

// Counts heap allocations made on the calling thread. Not under the sanitizers: they own
// operator new/delete, so the count is checked in the plain build only.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SLUICE_COUNT_ALLOCATIONS 0
#else
#define SLUICE_COUNT_ALLOCATIONS 1
#endif
namespace {
thread_local uint64_t g_allocations = 0;
}
#if SLUICE_COUNT_ALLOCATIONS
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace sluice {
namespace {

TEST(AggregateHotPath, WarmCommandsAllocateNothing) {
  if (!SLUICE_COUNT_ALLOCATIONS) GTEST_SKIP() << "allocation counting is off under the sanitizers";
  const std::string dir = testing::fresh_engine_dir("aggregate-alloc", "warm");
  LogOptions lo;
  lo.segment_size = 16 << 20;
  auto writer = LogWriter::open(dir, lo).value();
  serialization::SchemaRegistry registry;
  ASSERT_TRUE(registry.bind<bank::Deposited>(serialization::CodecId::raw, writer.get()).ok());
  ASSERT_TRUE(registry.bind<bank::Withdrawn>(serialization::CodecId::raw, writer.get()).ok());
  auto port = make_writer_port(*writer);
  auto repo = Repository<bank::BankAccount>::open(*port, registry, bank::account_type()).value();
  const StreamId id = repo->stream("account-1").value();
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Warm up: the cache slot, the thread's scratch, the writer's stream table.
  for (uint64_t i = 0; i < 100; ++i) {
    ASSERT_EQ(repo->execute(id, bank::Deposit{1, 10, 1}).code, CommandCode::ok);
    ASSERT_EQ(repo->execute(id, bank::Withdraw{1, 5, 1}, CommandOptions::keyed(IdempotencyKey::make(ms, i))).code,
              CommandCode::ok);
  }
  const uint64_t before = g_allocations;
  for (uint64_t i = 0; i < 1000; ++i) {
    const CommandResult a = repo->execute(id, bank::Deposit{1, 10, 1});
    const CommandResult b = repo->execute(id, bank::Withdraw{1, 5, 1}, CommandOptions::keyed(IdempotencyKey::make(ms, 1000 + i)));
    if (a.code != CommandCode::ok || b.code != CommandCode::ok) FAIL() << a.message << b.message;
  }
  EXPECT_EQ(g_allocations - before, 0u);
  EXPECT_EQ(repo->load(id).value().state.balance, 1100 * 5);
}

}  // namespace
}  // namespace sluice
