// KeyedStore: single-writer semantics, growth, erase, snapshot/digest, and readers running
// concurrently with the writer (under TSan in CI): a reader never sees a torn value.
#include "sluice/projections/keyed_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace sluice {
namespace {

TEST(KeyedStore, PutGetUpdateErase) {
  KeyedStore<int64_t> s(16);
  EXPECT_FALSE(s.get(7).has_value());
  s.put(7, 70);
  s.update(7, 0, [](int64_t& v) { v += 5; });
  s.update(8, 100, [](int64_t& v) { v += 1; });
  EXPECT_EQ(*s.get(7), 75);
  EXPECT_EQ(*s.get(8), 101);
  EXPECT_TRUE(s.erase(7));
  EXPECT_FALSE(s.erase(7));
  EXPECT_FALSE(s.get(7).has_value());
  EXPECT_EQ(s.size_estimate(), 1u);
}

TEST(KeyedStore, GrowsAndKeepsEveryEntry) {
  KeyedStore<int64_t> s(16);
  for (uint64_t k = 0; k < 10000; ++k) s.put(k * 7919, static_cast<int64_t>(k));
  EXPECT_GE(s.capacity(), 10000u * 10 / 7);
  for (uint64_t k = 0; k < 10000; ++k) ASSERT_EQ(*s.get(k * 7919), static_cast<int64_t>(k));
}

TEST(KeyedStore, EraseChurnDoesNotFillTheTable) {
  KeyedStore<int64_t> s(64);
  for (uint64_t k = 0; k < 100000; ++k) {
    s.put(k, 1);
    EXPECT_TRUE(s.erase(k));
  }
  EXPECT_EQ(s.size_estimate(), 0u);
  EXPECT_LE(s.capacity(), 128u);
}

TEST(KeyedStore, DigestIsIndependentOfInsertionOrderAndHistory) {
  KeyedStore<int64_t> a(16), b(1024);
  for (uint64_t k = 0; k < 500; ++k) a.put(k, static_cast<int64_t>(k * 3));
  for (uint64_t k = 1000; k-- > 0;) b.put(k, 1);
  for (uint64_t k = 500; k < 1000; ++k) b.erase(k);
  for (uint64_t k = 0; k < 500; ++k) b.put(k, static_cast<int64_t>(k * 3));
  EXPECT_EQ(a.digest(), b.digest());
  b.put(3, 10);
  EXPECT_NE(a.digest(), b.digest());
}

TEST(KeyedStore, SnapshotRoundTrip) {
  struct V {
    int64_t x, y;
  };
  KeyedStore<V> a;
  for (uint64_t k = 0; k < 300; ++k) a.put(k, V{static_cast<int64_t>(k), -static_cast<int64_t>(k)});
  std::string bytes;
  SnapshotWriter w(&bytes);
  a.save(w);
  KeyedStore<V> b;
  SnapshotReader r(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
  ASSERT_TRUE(b.load(r, "test").ok());
  EXPECT_EQ(a.digest(), b.digest());
  SnapshotReader shortr(std::as_bytes(std::span<const char>(bytes.data(), bytes.size() / 2)));
  KeyedStore<V> c;
  Status st = c.load(shortr, "store 'x'");
  EXPECT_EQ(st.code(), StatusCode::corruption);
  EXPECT_NE(st.message().find("store 'x'"), std::string::npos);
}

TEST(KeyedStore, SelectFiltersAndSortsByKey) {
  KeyedStore<int64_t> s;
  for (uint64_t k = 0; k < 100; ++k) s.put(99 - k, static_cast<int64_t>(k));
  auto big = s.select([](uint64_t, int64_t v) { return v >= 90; });
  ASSERT_EQ(big.size(), 10u);
  EXPECT_EQ(big.front().first, 0u);
  EXPECT_EQ(big.back().first, 9u);
}

// One writer keeps every value's two halves equal (x == -y) while it grows the table and
// rewrites entries; readers must never see a torn pair, and never miss a key once inserted
// before they started.
TEST(KeyedStoreConcurrency, ReadersNeverSeeTornValuesWhileWriterUpdatesAndGrows) {
  struct Pair {
    int64_t x, y;
  };
  KeyedStore<Pair> s(16);
  for (uint64_t k = 0; k < 64; ++k) s.put(k, Pair{0, 0});
  std::atomic<bool> stop{false};  // release by the writer at the end; acquire by readers
  std::atomic<uint64_t> torn{0}, missing{0};
  auto reader = [&] {
    uint64_t i = 0;
    while (!stop.load(std::memory_order_acquire)) {
      const uint64_t k = i++ % 64;
      auto v = s.get(k);
      if (!v) missing.fetch_add(1, std::memory_order_relaxed);
      else if (v->x != -v->y) torn.fetch_add(1, std::memory_order_relaxed);
      if (i % 1024 == 0)
        s.for_each([&](uint64_t, const Pair& p) {
          if (p.x != -p.y) torn.fetch_add(1, std::memory_order_relaxed);
        });
    }
  };
  std::thread r1(reader), r2(reader);
  for (int64_t round = 1; round <= 20000; ++round) {
    const uint64_t k = static_cast<uint64_t>(round) % 64;
    s.put(k, Pair{round, -round});
    if (round % 2000 == 0)
      for (uint64_t extra = 0; extra < 500; ++extra) s.put(1000000 + static_cast<uint64_t>(round) * 1000 + extra, Pair{1, -1});
  }
  stop.store(true, std::memory_order_release);
  r1.join();
  r2.join();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_EQ(missing.load(), 0u);
}

}  // namespace
}  // namespace sluice
