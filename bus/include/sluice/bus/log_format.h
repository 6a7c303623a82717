// The on-disk format of the Sluice write log: constants and layouts only.
// docs/log-format.md gives the grammar, a worked example and the trade-offs.
//
// A log is a directory of segment files named by their 20-digit index
// ("00000000000000000000.seg"), a LOCK file held by the one writer, and sluice.meta (text:
// the last writer's settings). All integers are little-endian.
//
// Segment file (segment_size bytes, preallocated, zero-filled):
//
//   0       8      16      24      32      40      48      56      64
//   +-------+---+---+-------+-------+-------+-------+---+---+---+---+--------- ...
//   | magic |ver|hsz| index | base  | size  |created|flg|res|res|crc| records
//   +-------+---+---+-------+-------+-------+-------+---+---+---+---+--------- ...
//   magic is stored last (release): a segment whose magic is 0 was prepared, never activated.
//
// Record (8-byte aligned; `length` excludes the padding to the next multiple of 8):
//
//   0      4      8    9    10     12      16  18 19 20     24        32        40        48     56
//   +------+------+----+----+------+-------+---+--+--+------+---------+---------+---------+------+
//   |length| crc  |type|flag|hdrlen|evtype |sv |cd|rs| rsv  |position |stream id|stream ver|ts ns |
//   +------+------+----+----+------+-------+---+--+--+------+---------+---------+---------+------+
//   [idempotency key 16][correlation id 16][causation id 16]   (present per flag bits)
//   payload (length - hdrlen bytes)
//
//   crc = mask(crc32c over the 8 little-endian bytes of the segment index, then bytes
//         [8, length) of the record). `length` is stored last, with a release store:
//         a record is committed when its length is non-zero.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace sluice::log_format {

static_assert(std::endian::native == std::endian::little,
              "the log format is little-endian and is accessed in place");

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint64_t kSegmentMagic = 0x4745535f45434c53ull;  // "SLCE_SEG" little-endian
inline constexpr uint32_t kSegmentHeaderSize = 64;
inline constexpr uint32_t kRecordAlignment = 8;
inline constexpr uint32_t kRecordHeaderSize = 56;  // without the optional ids
inline constexpr uint32_t kIdSize = 16;
inline constexpr uint32_t kMaxRecordHeaderSize = kRecordHeaderSize + 3 * kIdSize;
// Every segment keeps room for its closing segment_end record.
inline constexpr uint32_t kSealReserve = kRecordHeaderSize;
inline constexpr uint64_t kMinSegmentSize = 64 * 1024;
inline constexpr uint64_t kMaxSegmentSize = 1ull << 32;  // offsets fit in 32 bits
inline constexpr char kSegmentSuffix[] = ".seg";
inline constexpr char kLockFileName[] = "LOCK";
inline constexpr char kMetaFileName[] = "sluice.meta";

// Record types. 0 is reserved for zero-filled (never written) space. A reader that meets an
// unknown type with the ignorable bit set skips the record; without it, it reports the log as
// written by a newer version.
enum RecordType : uint8_t {
  kTypeZero = 0,
  kTypeEvent = 1,        // an application event; consumes one position
  kTypeSegmentEnd = 2,   // seals a segment; the next record is in segment index+1
  kTypeStreamDefined = 3,  // stream id -> name (payload: UTF-8 name); no position of its own
  kTypeIgnorable = 0x80,
  kTypeSchema = 0x81,    // schema registry entry (serialization layer); no position of its own
};

enum RecordFlags : uint8_t {
  kFlagBatchContinues = 0x01,  // more records of the same atomic batch follow
  kFlagIdempotencyKey = 0x02,
  kFlagCorrelationId = 0x04,
  kFlagCausationId = 0x08,
  kKnownFlags = 0x0f,
};

enum SegmentFlags : uint32_t {
  // The previous segment was flushed whole (seal included) before this header was written:
  // damage in it cannot be a power cut's (group and sync set it; none does not).
  kSegmentPrevDurable = 0x1,
  kKnownSegmentFlags = 0x1,
};

// Keys of the durable watermark in sluice.meta: every segment below durable_segment, and
// the bytes [0, durable_offset) of segment durable_segment, were flushed before the file was
// written; durable_position is the position after the last event in them.
inline constexpr char kMetaDurableSegment[] = "durable_segment";
inline constexpr char kMetaDurableOffset[] = "durable_offset";
inline constexpr char kMetaDurablePosition[] = "durable_position";
inline constexpr char kQuarantineDir[] = "quarantine";

struct SegmentHeader {
  uint64_t magic;          // kSegmentMagic; stored last, with release, to activate
  uint32_t format_version;
  uint32_t header_size;    // kSegmentHeaderSize
  uint64_t segment_index;  // also the CRC seed of every record in the segment (epoch)
  uint64_t base_position;  // position of the first event in this segment
  uint64_t segment_size;   // bytes, header included
  int64_t created_ns;      // CLOCK_REALTIME
  uint32_t flags;          // SegmentFlags; other bits 0
  uint32_t reserved0;      // 0
  uint32_t reserved1;      // 0
  uint32_t header_crc;     // masked crc32c of bytes [8, 60)
};
static_assert(sizeof(SegmentHeader) == kSegmentHeaderSize);
static_assert(offsetof(SegmentHeader, segment_index) == 16);
static_assert(offsetof(SegmentHeader, header_crc) == 60);

struct RecordHeader {
  uint32_t length;          // header + payload bytes; stored last (release) to commit
  uint32_t crc;             // masked crc32c, see above
  uint8_t type;             // RecordType
  uint8_t flags;            // RecordFlags
  uint16_t header_length;   // 56 + 16 per optional id
  uint32_t event_type;      // application event type id
  uint16_t schema_version;  // version of the event type's schema
  uint8_t codec;            // a CodecId (codec_id.h): 0 raw, 2 flatbuffers, 3 json
  uint8_t reserved0;        // 0
  uint32_t reserved1;       // 0
  uint64_t position;        // global, gap-free over events
  uint64_t stream_id;       // 1-based; 0 = none
  uint64_t stream_version;  // 1-based: the stream's event count including this event
  int64_t timestamp_ns;     // CLOCK_REALTIME at append, non-decreasing within a log
};
static_assert(sizeof(RecordHeader) == kRecordHeaderSize);
static_assert(offsetof(RecordHeader, type) == 8);
static_assert(offsetof(RecordHeader, event_type) == 12);
static_assert(offsetof(RecordHeader, position) == 24);
static_assert(offsetof(RecordHeader, timestamp_ns) == 48);

constexpr uint64_t align_up(uint64_t n) noexcept {
  return (n + kRecordAlignment - 1) & ~uint64_t{kRecordAlignment - 1};
}
constexpr uint32_t header_length_for(uint8_t flags) noexcept {
  return kRecordHeaderSize + kIdSize * ((flags & kFlagIdempotencyKey ? 1 : 0) +
                                        (flags & kFlagCorrelationId ? 1 : 0) +
                                        (flags & kFlagCausationId ? 1 : 0));
}

}  // namespace sluice::log_format
