// Scanning the records of one mapped segment: the single piece of code that decides which
// bytes are committed records. Used by writer recovery, LogReader (initial open and tailing),
// `sluice verify` and the fuzz target.
//
// Rules (docs/log-format.md, "Reading"):
//  - A record is visible once its length is non-zero, its CRC (seeded with the segment index)
//    matches and its header is consistent.
//  - Records flagged kFlagBatchContinues are visible only together with the rest of their
//    batch, ending with a record without that flag.
//  - An event's position must be the next position, its stream id non-zero. A record that
//    passes its CRC but breaks these is an inconsistency, never a torn write.
//  - The scan stops at the first zero length (end), a segment_end record (sealed) or a bad
//    record (invalid). Whether an invalid record is a torn tail or corruption is decided by
//    the caller, with find_valid_after().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "internal/record_codec.h"
#include "sluice/bus/log_types.h"

namespace sluice::log_internal {

enum class ScanStop : uint8_t {
  end,           // zero length: free space follows (or the writer has not committed yet)
  sealed,        // a segment_end record closes the segment
  invalid,       // a bad record at end_offset
  inconsistent,  // a record with a good CRC but a wrong position / stream / type
  incomplete,    // a batch that has not (yet) been completed; end_offset is its start
};
const char* to_string(ScanStop s) noexcept;

struct SegmentScan {
  ScanStop stop = ScanStop::end;
  uint32_t end_offset = 0;      // offset after the last visible record
  uint64_t stop_offset = 0;     // where the scan stopped (zero word, bad record, seal)
  uint64_t next_position = 0;   // position after the last visible event
  int64_t last_timestamp_ns = 0;
  std::string reason;           // for invalid / inconsistent
};

// Scans from `offset` (the start of a record) with `next_position` the expected position of
// the next event. Calls on_record(const RecordView&) for each visible record, in order, for
// events and system records alike (segment_end excluded).
template <class OnRecord>
SegmentScan scan_segment(const std::byte* base, uint64_t size, uint64_t segment_index,
                         uint32_t offset, uint64_t next_position, OnRecord&& on_record) {
  namespace lf = log_format;
  SegmentScan r;
  r.end_offset = offset;
  r.next_position = next_position;
  uint32_t batch_start = 0;
  bool in_batch = false;
  uint64_t pos = next_position;  // expected position, including a pending batch
  uint64_t off = offset;
  for (;;) {
    r.stop_offset = off;
    if (off + 8 > size) {
      r.stop = in_batch ? ScanStop::incomplete : ScanStop::end;
      return r;
    }
    uint32_t len = 0;
    const Decode d = decode_record(base + off, size - off, segment_index, &len);
    if (d == Decode::zero) {
      r.stop = in_batch ? ScanStop::incomplete : ScanStop::end;
      return r;
    }
    if (d != Decode::ok) {
      r.stop = ScanStop::invalid;
      r.end_offset = in_batch ? batch_start : static_cast<uint32_t>(off);
      r.reason = "record at offset " + std::to_string(off) + ": " +
                 describe_bad_record(base + off, size - off, d);
      return r;
    }
    const auto* h = reinterpret_cast<const lf::RecordHeader*>(base + off);
    std::string why;
    if (h->type == lf::kTypeEvent) {
      if (h->position != pos)
        why = "position " + std::to_string(h->position) + ", expected " + std::to_string(pos);
      else if (h->stream_id == 0 || h->stream_version == 0)
        why = "event without a stream id or version";
    } else if (h->type == lf::kTypeSegmentEnd) {
      if (in_batch) why = "segment_end inside a batch";
      else if (h->position != pos)
        why = "segment_end at position " + std::to_string(h->position) + ", expected " +
              std::to_string(pos);
    } else if (h->type == lf::kTypeStreamDefined) {
      if (h->stream_id == 0) why = "stream record without a stream id";
    } else if ((h->type & lf::kTypeIgnorable) == 0) {
      why = "unknown record type " + std::to_string(h->type) +
            " (written by a newer version of Sluice?)";
    }
    if (!why.empty()) {
      r.stop = ScanStop::inconsistent;
      r.end_offset = in_batch ? batch_start : static_cast<uint32_t>(off);
      r.reason = "record at offset " + std::to_string(off) + ": " + why;
      return r;
    }
    if (h->type == lf::kTypeSegmentEnd) {
      r.stop = ScanStop::sealed;
      r.end_offset = static_cast<uint32_t>(off);
      return r;
    }
    if (h->type == lf::kTypeEvent) ++pos;
    if (h->flags & lf::kFlagBatchContinues) {
      if (!in_batch) {
        in_batch = true;
        batch_start = static_cast<uint32_t>(off);
      }
      off += lf::align_up(len);
      continue;
    }
    // The record (and its batch, if any) is complete: make it visible.
    uint64_t first = in_batch ? batch_start : off;
    const uint64_t after = off + lf::align_up(len);
    for (uint64_t o = first; o < after;) {
      const auto* rh = reinterpret_cast<const lf::RecordHeader*>(base + o);
      RecordView v;
      v.header = rh;
      v.segment_index = segment_index;
      v.offset = static_cast<uint32_t>(o);
      on_record(static_cast<const RecordView&>(v));
      if (rh->timestamp_ns > r.last_timestamp_ns) r.last_timestamp_ns = rh->timestamp_ns;
      o += lf::align_up(rh->length);
    }
    in_batch = false;
    off = after;
    r.end_offset = static_cast<uint32_t>(off);
    r.next_position = pos;
  }
}

struct AfterScan {
  bool found_valid = false;   // a valid record lies after the stop point: corruption
  uint64_t valid_offset = 0;
  uint64_t dirty_end = 0;     // offset after the last non-zero 8-byte word, or `size` when
                              // a partial last word has non-zero bytes (0 if none)
};
// Looks at every 8-byte aligned offset in [from, size) for a record that decodes cleanly,
// and for the extent of non-zero bytes (what a truncation must zero).
AfterScan find_valid_after(const std::byte* base, uint64_t size, uint64_t segment_index,
                           uint64_t from) noexcept;

}  // namespace sluice::log_internal
