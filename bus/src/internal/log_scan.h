// scan_log: validates a whole log directory, segment by segment, and reports every visible
// record to a callback. The one place that decides "consistent", "torn tail" or "corrupt";
// writer recovery, LogReader::open and `sluice verify` all call it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "internal/segment.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_types.h"
#include "sluice/status.h"

namespace sluice::log_internal {

struct SegmentSummary {
  uint64_t index = 0;
  std::string path;
  uint64_t base_position = 0;
  uint64_t end_position = 0;  // one past its last event
  uint32_t end_offset = 0;    // after its last visible record (the seal excluded)
  uint64_t file_size = 0;
  uint64_t segment_size = 0;
  int64_t created_ns = 0;
  int64_t last_timestamp_ns = 0;
  bool sealed = false;
};

// The durable watermark recorded in sluice.meta (docs/write-log.md, "Power loss"):
// everything before (segment, offset) was flushed before the file was written.
struct Watermark {
  bool known = false;
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint64_t position = 0;
};
// Reads it; `known` false when sluice.meta is missing or has no watermark (a log written by
// an older version, or never opened by a writer of this one).
Watermark read_watermark(const std::string& dir);

struct LogScan {
  std::vector<SegmentSummary> segments;   // activated segments, ascending
  std::vector<MappedSegment> maps;        // parallel to segments when keep_maps
  std::vector<uint64_t> unactivated;      // trailing prepared segments (header never written,
                                          // every byte zero, or torn_headers)
  std::vector<uint64_t> torn_headers;     // of those: a header torn by a power cut while it
                                          // was being activated (bad, nothing after it)
  std::vector<uint64_t> beyond;           // segments after a torn non-last segment of a
                                          // `none` log: outside the recovered prefix
  Watermark watermark;
  std::string cut_reason;                 // point_in_time: the corruption the log was cut at
  uint64_t next_position = 0;             // one past the last visible event
  // A damaged tail that recovery truncates: torn or zero-filled record, incomplete batch,
  // garbage, all after the durable watermark. Damage before it is corruption.
  bool tail_damaged = false;
  uint64_t tail_segment = 0;
  uint64_t tail_offset = 0;     // truncation point
  uint64_t tail_dirty_end = 0;  // bytes [tail_offset, tail_dirty_end) are to be zeroed
  std::string tail_reason;
};

using RecordCallback = std::function<void(const RecordView&)>;

// Every damaged region of every segment in dir, told to `reporter`: after each damage the
// scan resynchronises at the next record that decodes. A diagnostic for tools: decides
// nothing (scan_log does).
void report_every_region(const std::string& dir, Reporter& reporter);

// Errors: not_found (no directory), corruption (naming segment and offset), io_error.
// cut_at_corruption (RecoveryMode::point_in_time): corruption ends the log where it starts
// instead of failing the scan; what follows is reported as the tail and `beyond`.
Result<LogScan> scan_log(FileOps& ops, const std::string& dir, const RecordCallback& on_record,
                         bool keep_maps, bool cut_at_corruption = false);

}  // namespace sluice::log_internal
