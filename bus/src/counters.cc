#include "sluice/bus/counters.h"

#include <algorithm>
#include <vector>

namespace sluice::counters {

uint64_t percentile(const uint64_t* buckets, uint64_t count, double pct, uint64_t min, uint64_t max) noexcept {
  if (count == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(pct / 100.0 * static_cast<double>(count) + 0.5);
  rank = std::clamp<uint64_t>(rank, 1, count);
  uint64_t seen = 0;
  for (uint32_t i = 0; i < kBuckets; ++i) {
    seen += buckets[i];
    if (seen >= rank) {
      const uint64_t lo = bucket_lower(i), hi = bucket_upper(i) - 1;
      const uint64_t mid = lo + (hi - lo) / 2;
      return std::clamp(mid, min, std::max(min, max));
    }
  }
  return max;
}

HistogramSummary summarize(const HistogramWords& h) {
  HistogramSummary s;
  std::vector<uint64_t> b(kBuckets);
  uint64_t total = 0;
  for (uint32_t i = 0; i < kBuckets; ++i) {
    b[i] = get(h.buckets[i]);
    total += b[i];
  }
  // The bucket sum is the count consistent with this copy of the buckets.
  s.count = total;
  if (total == 0) return s;
  s.min = get(h.min);
  s.max = get(h.max);
  if (s.min > s.max) s.min = 0;
  const uint64_t c = get(h.count);
  s.mean = c ? static_cast<double>(get(h.sum)) / static_cast<double>(c) : 0.0;
  s.p50 = percentile(b.data(), total, 50, s.min, s.max);
  s.p90 = percentile(b.data(), total, 90, s.min, s.max);
  s.p99 = percentile(b.data(), total, 99, s.min, s.max);
  s.p999 = percentile(b.data(), total, 99.9, s.min, s.max);
  return s;
}

}  // namespace sluice::counters
