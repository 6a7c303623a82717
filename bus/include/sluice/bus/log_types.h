// Value types shared by LogWriter and LogReader.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>

#include "sluice/bus/codec_id.h"
#include "sluice/bus/log_format.h"

namespace sluice {

class FileOps;

using StreamId = uint64_t;  // 1-based; 0 = no stream

// A 128-bit id (idempotency key, correlation id, causation id); {0,0} means absent.
struct Id128 {
  uint64_t hi = 0;
  uint64_t lo = 0;
  constexpr bool empty() const noexcept { return (hi | lo) == 0; }
  friend constexpr bool operator==(const Id128&, const Id128&) = default;
};

// One event to append. The payload is copied into the log; the caller keeps ownership.
struct EventData {
  uint32_t type = 0;            // application event type id
  uint16_t schema_version = 1;
  uint8_t codec = 0;            // a CodecId (codec_id.h); 0 = raw
  std::span<const std::byte> payload;
  Id128 idempotency_key;        // optional
  Id128 correlation_id;         // optional
  Id128 causation_id;           // optional
};

// Optimistic concurrency on append.
class ExpectedVersion {
 public:
  static constexpr ExpectedVersion any() noexcept { return ExpectedVersion(kAny); }
  static constexpr ExpectedVersion no_stream() noexcept { return ExpectedVersion(0); }
  // The stream holds exactly n events (its last event has version n).
  static constexpr ExpectedVersion exact(uint64_t n) noexcept { return ExpectedVersion(n); }
  constexpr bool is_any() const noexcept { return v_ == kAny; }
  constexpr uint64_t value() const noexcept { return v_; }

 private:
  static constexpr uint64_t kAny = ~uint64_t{0};
  constexpr explicit ExpectedVersion(uint64_t v) : v_(v) {}
  uint64_t v_;
};

enum class Durability : uint8_t {
  none,   // acknowledged when in the page cache: survives a process crash
  group,  // acknowledged when a group flush (interval or size) has covered it
  sync,   // acknowledged after the flush of that append
};
std::string_view to_string(Durability d) noexcept;
bool parse_durability(std::string_view s, Durability* out) noexcept;

enum class AppendCode : uint8_t {
  ok = 0,
  conflict,          // expected version did not match
  too_large,         // the batch cannot fit in one segment
  closed,            // writer closed, or failed earlier (see LogWriter::failure())
  io_error,          // a flush or segment roll failed; the writer is now failed
  invalid_argument,  // unknown stream id, empty batch
  back_pressured,    // not taken: the ingress is full (a submitter's value; retry later)
};
std::string_view to_string(AppendCode c) noexcept;

// Result of an append: a code and, when ok, the position of the first event of the batch
// and the stream version of its last event. Details of a failure: LogWriter::last_error().
struct [[nodiscard]] AppendResult {
  AppendCode code = AppendCode::ok;
  uint64_t position = 0;        // first event's global position
  uint64_t stream_version = 0;  // last event's stream version
  bool ok() const noexcept { return code == AppendCode::ok; }
};

struct RecordView;

// Told about every event the moment it is committed (visible to readers), on the writer's
// thread, before append() returns: how the bus learns of new records without reading the
// files. Must not block, allocate or throw; it runs on the hot path.
class CommitListener {
 public:
  virtual ~CommitListener() = default;
  // `v` points into the mapped segment; end_of_batch is true for the last event of an append.
  virtual void on_commit(const RecordView& v, bool end_of_batch) noexcept = 0;
};

// What LogWriter::open does with corruption (docs/write-log.md, "Recovery modes").
enum class RecoveryMode : uint8_t {
  // Refuse to open, naming segment and offset; change nothing. Torn tails (after the durable
  // watermark) are cut, their bytes kept in quarantine/.
  strict,
  // Keep the valid prefix: cut the log at the first damage, wherever it is, moving the cut
  // bytes and every later segment into quarantine/ (never deleting them). recovery_note()
  // says what was moved and why. For an operator who chose to lose what follows the damage.
  point_in_time,
};

struct LogOptions {
  uint64_t segment_size = 64ull << 20;          // bytes per segment file, header included
  Durability durability = Durability::none;
  std::chrono::microseconds group_interval{1000};  // group: longest wait before a flush
  uint32_t group_max_events = 4096;             // group: flush early once this many wait
  bool create_if_missing = true;
  bool prefault = true;                          // pre-fault the next segments' pages
  // Segments the maintenance thread keeps made ahead of the active one (1..8): preallocated
  // and, with prefault, in memory (under none, segment_size bytes of page cache each). Two
  // let a burst of appends outrun segment preparation for a whole segment without waiting.
  uint32_t prepared_segments = 2;
  FileOps* file_ops = nullptr;                   // nullptr: the real system calls
  int64_t (*clock_ns)() = nullptr;               // nullptr: CLOCK_REALTIME
  std::chrono::milliseconds health_check_interval{100};  // segment-file removal check
  CommitListener* commit_listener = nullptr;     // nullptr: none; several: CommitListeners
  // CPU for the writer's maintenance thread (segment preparation, group commit). -1: when
  // the thread that opens the log is pinned to one CPU, or maintenance_avoid_cpus is set,
  // the CPUs the process could use when the library loaded, less the avoided ones and, where
  // any remain, less the opener's (a thread inherits its creator's pin, and preparing a
  // segment would then preempt the appender); otherwise the opener's CPUs.
  int maintenance_cpu = -1;
  // Bit c: keep the maintenance thread off CPU c (c < 64), e.g. CPUs of busy-spinning
  // consumers. The engine sets its pinned workers' CPUs here.
  uint64_t maintenance_avoid_cpus = 0;
  // Permissions of the files the writer creates (segments, sluice.meta, LOCK, quarantined
  // bytes; the umask applies too) and of a log directory it creates. Default: owner read and
  // write, group read.
  mode_t file_mode = 0640;
  RecoveryMode recovery = RecoveryMode::strict;
  mode_t dir_mode = 0750;
};

// A zero-copy view of one committed record, pointing into the mapped segment. Valid while the
// LogReader that produced it is open.
struct RecordView {
  const log_format::RecordHeader* header = nullptr;
  uint64_t segment_index = 0;
  uint32_t offset = 0;  // byte offset of the record in its segment

  uint8_t type() const noexcept { return header->type; }
  bool is_event() const noexcept { return header->type == log_format::kTypeEvent; }
  uint64_t position() const noexcept { return header->position; }
  StreamId stream_id() const noexcept { return header->stream_id; }
  uint64_t stream_version() const noexcept { return header->stream_version; }
  uint32_t event_type() const noexcept { return header->event_type; }
  uint16_t schema_version() const noexcept { return header->schema_version; }
  uint8_t codec() const noexcept { return header->codec; }  // the byte as stored
  // The codec the byte names (the old raw byte 1 reads as raw; see codec_id.h).
  CodecId codec_id() const noexcept { return decode_codec(header->codec); }
  int64_t timestamp_ns() const noexcept { return header->timestamp_ns; }
  uint32_t length() const noexcept { return header->length; }
  Id128 idempotency_key() const noexcept { return id_at(log_format::kFlagIdempotencyKey); }
  Id128 correlation_id() const noexcept { return id_at(log_format::kFlagCorrelationId); }
  Id128 causation_id() const noexcept { return id_at(log_format::kFlagCausationId); }
  std::span<const std::byte> payload() const noexcept {
    auto base = reinterpret_cast<const std::byte*>(header);
    return {base + header->header_length, header->length - header->header_length};
  }

 private:
  Id128 id_at(uint8_t flag) const noexcept;
};

}  // namespace sluice
