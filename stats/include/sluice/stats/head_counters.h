// HeadCounters: the log writer's CommitListener that publishes the log's head (position,
// address, append timestamp) into the stats file header, once per append batch: three
// relaxed stores on the writer's thread (sluice/bus/counters.h), nothing else. Add it to the
// writer's CommitListeners before the bus's publisher, so the head never trails what a
// consumer may already have applied.
#pragma once

#include <cstdint>

#include "sluice/bus/log_types.h"
#include "sluice/stats/counters_file.h"

namespace sluice {

class HeadCounters final : public CommitListener {
 public:
  HeadCounters(counters::FileHeader& header, uint64_t segment_size) noexcept
      : header_(header), segment_size_(segment_size) {}
  void on_commit(const RecordView& v, bool end_of_batch) noexcept override {
    if (!end_of_batch) return;
    counters::put(header_.head_position, v.position() + 1);
    counters::put(header_.head_address, v.segment_index * segment_size_ + v.offset + v.length());
    counters::put(header_.head_timestamp_ns, v.timestamp_ns());
  }

 private:
  counters::FileHeader& header_;  // in the stats file's writable mapping
  const uint64_t segment_size_;
};

}  // namespace sluice
