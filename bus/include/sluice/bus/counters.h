// Counters: the mechanism every stats file is built from (Aeron's counters, HdrHistogram's
// bucketing), kept in bus/ so that any layer can count without depending on a layout:
//   - 8-byte words in shared memory, each with ONE writing thread: put() is a relaxed store
//     (a plain `mov` on x86: the hot path pays a store and nothing else), get() a relaxed
//     load from any thread or process, bump() a load and a store (no locked RMW);
//   - a log-linear latency histogram (HistogramWords) recorded the same way, and what a reader
//     derives from it (percentile(), summarize()).
// The stats file's layout (which words exist, where) is stats/'s: sluice/stats/counters_file.h.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace sluice::counters {

// ---- log-linear histogram bucketing ---------------------------------------------------------
// Values 0..127 get a bucket each; above, each power of two [2^e, 2^(e+1)) is split into 128
// equal buckets, so a bucket is at most 1/128 (0.78 %) of its values wide; reporting its
// midpoint is within 0.39 % of any value in it. Exponents up to 45 (2^46 ns ≈ 19.5 hours);
// larger values land in the last bucket (and `max` stays exact).
inline constexpr uint32_t kSubBucketBits = 7;
inline constexpr uint32_t kSubBuckets = 1u << kSubBucketBits;  // 128
inline constexpr uint32_t kMaxExponent = 45;
inline constexpr uint32_t kBuckets = kSubBuckets + (kMaxExponent - kSubBucketBits + 1) * kSubBuckets;

constexpr uint32_t bucket_index(uint64_t v) noexcept {
  if (v < kSubBuckets) return static_cast<uint32_t>(v);
  const uint32_t e = 63u - static_cast<uint32_t>(__builtin_clzll(v));  // >= 7
  if (e > kMaxExponent) return kBuckets - 1;
  const uint32_t m = static_cast<uint32_t>(v >> (e - kSubBucketBits));  // [128, 256)
  return kSubBuckets + (e - kSubBucketBits) * kSubBuckets + (m - kSubBuckets);
}
// Smallest value in bucket i.
constexpr uint64_t bucket_lower(uint32_t i) noexcept {
  if (i < kSubBuckets) return i;
  const uint32_t e = (i - kSubBuckets) / kSubBuckets + kSubBucketBits;
  const uint64_t m = (i - kSubBuckets) % kSubBuckets + kSubBuckets;
  return m << (e - kSubBucketBits);
}
// One past the largest value in bucket i.
constexpr uint64_t bucket_upper(uint32_t i) noexcept {
  if (i < kSubBuckets) return i + 1;
  const uint32_t e = (i - kSubBuckets) / kSubBuckets + kSubBucketBits;
  return bucket_lower(i) + (uint64_t{1} << (e - kSubBucketBits));
}
static_assert(bucket_index(127) == 127 && bucket_index(128) == 128 && bucket_index(255) == 255);
static_assert(bucket_index(256) == 256 && bucket_index(257) == 256 && bucket_index(258) == 257);
static_assert(bucket_lower(bucket_index(1'000'000)) <= 1'000'000 &&
              bucket_upper(bucket_index(1'000'000)) > 1'000'000);

struct HistogramWords {
  uint64_t count;      // 0
  uint64_t sum;        // 8 (ns; wraps after 584 years of latency)
  uint64_t min;        // 16 (UINT64_MAX when empty)
  uint64_t max;        // 24
  uint8_t reserved[32];
  uint64_t buckets[kBuckets];  // 64
};
static_assert(offsetof(HistogramWords, buckets) == 64);

// ---- atomic access to words in the mapping ----------------------------------------------------
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<uint32_t>::is_always_lock_free);

// Single-writer store. Relaxed: each counter is an independent figure for display; nothing
// else is published through it (see the file comment).
template <class T>
inline void put(T& word, T v) noexcept {
  std::atomic_ref<T>(word).store(v, std::memory_order_relaxed);
}
// Reader side. Relaxed: pairs with put(); a torn read is impossible (aligned 8-byte word).
template <class T>
inline T get(const T& word) noexcept {
  return std::atomic_ref<T>(const_cast<T&>(word)).load(std::memory_order_relaxed);
}
// Single-writer increment: a load and a store, no locked RMW (one writer per word).
inline void bump(uint64_t& word, uint64_t by = 1) noexcept { put(word, get(word) + by); }

// Records one latency into a slot's histogram; the slot's worker is the only writer.
inline void record(HistogramWords& h, uint64_t v) noexcept {
  bump(h.buckets[bucket_index(v)]);
  bump(h.count);
  put(h.sum, get(h.sum) + v);
  if (v > get(h.max)) put(h.max, v);
  if (v < get(h.min)) put(h.min, v);
}

struct HistogramSummary {
  uint64_t count = 0;
  uint64_t min = 0, max = 0;
  double mean = 0;
  uint64_t p50 = 0, p90 = 0, p99 = 0, p999 = 0;
};
// Percentile (0..100) of bucket counts: the midpoint of the bucket holding that rank,
// clamped to [min, max].
uint64_t percentile(const uint64_t* buckets, uint64_t count, double pct, uint64_t min, uint64_t max) noexcept;
HistogramSummary summarize(const HistogramWords& h);

uint64_t percentile(const uint64_t* buckets, uint64_t count, double pct, uint64_t min, uint64_t max) noexcept;
HistogramSummary summarize(const HistogramWords& h);

}  // namespace sluice::counters
