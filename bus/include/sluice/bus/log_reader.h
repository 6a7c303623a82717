// LogReader: zero-copy reading of a Sluice log, from any position, by stream, or from a
// timestamp, including a log that a LogWriter (in this or another process) is appending to.
//
// Design
//   open() validates the whole log (the same scan as writer recovery, read-only: nothing is
//   repaired) and builds in-memory indexes: position -> (segment, offset), stream name -> id
//   -> positions. refresh() extends them with records committed since, following the writer
//   into new segments. Records are read in place from read-only mappings of the segment files.
//
// Thread safety
//   A LogReader is used by one thread. Any number of readers (threads or processes) may read
//   one log while its writer appends; a reader sees a record only once it is committed (its
//   length acquired non-zero), and a batch only once all of it is.
//
// Invariants
//   - Positions [begin_position(), end_position()) are all readable; end only grows.
//   - A RecordView stays valid as long as its reader.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sluice/bus/log_types.h"
#include "sluice/status.h"

namespace sluice {

namespace log_internal {
class MappedSegment;
}

// A damaged region of a log, as recovery or `sluice verify` found it.
struct LogDamage {
  std::string path;         // segment file
  uint64_t segment = 0;
  uint64_t offset = 0;      // where the damage starts
  uint64_t end_offset = 0;  // where the next valid record, or the zero space, starts (0: unknown)
  bool corruption = false;  // true: refused (below the durable watermark, or inconsistent);
                            // false: a torn tail that a writer's open cuts
  std::string reason;
};

// Told about damage, like leveldb's log::Reader::Reporter: tools list what they find.
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void on_damage(const LogDamage& d) = 0;
};

struct ReaderOptions {
  FileOps* file_ops = nullptr;  // nullptr: the real system calls
  // Told about the torn tail or the corruption open() finds (and, with every_region, about
  // every damaged region of every segment, found by resynchronising at the next record that
  // decodes). nullptr: nobody.
  Reporter* reporter = nullptr;
  bool every_region = false;
  // Also check the invariants the scan does not (docs/log-format.md, "Recovery"): timestamps
  // never decrease, a stream record's position is the next event's, stream names are valid
  // UTF-8, padding is zero. `sluice verify` sets it.
  bool check_invariants = false;
};

struct SegmentInfo {
  uint64_t index = 0;
  std::string path;
  uint64_t base_position = 0;
  uint64_t end_position = 0;
  uint64_t used_bytes = 0;     // header and records
  uint64_t segment_size = 0;
  bool sealed = false;
};

struct LogInfo {
  std::vector<SegmentInfo> segments;
  uint64_t begin_position = 0;
  uint64_t end_position = 0;
  size_t streams = 0;
  uint64_t used_bytes = 0;
  int64_t first_timestamp_ns = 0;
  int64_t last_timestamp_ns = 0;
  std::string last_writer_durability;  // from sluice.meta, "" if unknown
  // A damaged tail that the next writer open will truncate (crash-torn: not corruption).
  bool tail_damaged = false;
  uint64_t tail_segment = 0;
  uint64_t tail_offset = 0;
  std::string tail_reason;
  size_t prepared_segments = 0;  // created, never activated
};

class LogReader {
 public:
  // Errors: not_found (no such directory, or no segment in it), corruption (naming segment
  // and offset), io_error.
  static Result<std::unique_ptr<LogReader>> open(const std::string& dir,
                                                 const ReaderOptions& options = {});
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  // Indexes records committed since the last call. Returns the number of new events.
  Result<uint64_t> refresh();

  uint64_t begin_position() const noexcept { return begin_position_; }
  uint64_t end_position() const noexcept { return end_position_; }

  // The event at `position`, zero-copy. False when position is outside [begin, end).
  bool read(uint64_t position, RecordView* out) const noexcept;

  std::optional<StreamId> find_stream(std::string_view name) const;
  std::string_view stream_name(StreamId id) const noexcept;
  size_t stream_count() const noexcept { return streams_.size(); }
  // Positions of the stream's events; element v-1 holds the position of version v.
  std::span<const uint64_t> stream_positions(StreamId id) const noexcept;

  // First position whose event has timestamp >= ts (end_position() if none).
  uint64_t position_at_time(int64_t timestamp_ns) const noexcept;

  // System records (stream definitions excluded), in log order: schema entries and such.
  const std::vector<RecordView>& system_records() const noexcept { return system_records_; }

  LogInfo info() const;
  const std::string& dir() const noexcept { return dir_; }

  // Forward iteration from a position; next() returns false at the current end (call
  // refresh() on the reader to follow a live writer, then next() again).
  class Cursor {
   public:
    Cursor(const LogReader* reader, uint64_t position) : reader_(reader), position_(position) {}
    bool next(RecordView* out) noexcept {
      if (!reader_->read(position_, out)) return false;
      ++position_;
      return true;
    }
    uint64_t position() const noexcept { return position_; }

   private:
    const LogReader* reader_;
    uint64_t position_;
  };
  Cursor cursor(uint64_t from_position) const noexcept {
    return Cursor(this, from_position < begin_position_ ? begin_position_ : from_position);
  }

  // Iteration over one stream from a version (1-based).
  class StreamCursor {
   public:
    StreamCursor(const LogReader* reader, StreamId id, uint64_t from_version)
        : reader_(reader), id_(id), index_(from_version == 0 ? 0 : from_version - 1) {}
    bool next(RecordView* out) noexcept {
      auto positions = reader_->stream_positions(id_);
      if (index_ >= positions.size()) return false;
      reader_->read(positions[index_++], out);
      return true;
    }

   private:
    const LogReader* reader_;
    StreamId id_;
    uint64_t index_;
  };
  StreamCursor stream_cursor(StreamId id, uint64_t from_version = 1) const noexcept {
    return StreamCursor(this, id, from_version);
  }

 private:
  struct Segment;
  struct Stream {
    std::string name;
    std::vector<uint64_t> positions;
  };
  explicit LogReader(std::string dir, const ReaderOptions& options);
  Status open_impl();
  void index_record(Segment& seg, const RecordView& v);
  void check_invariants(const RecordView& v);
  Status index_error(const RecordView& v, const std::string& what) const;
  void report_damage(const Status& st);

  const std::string dir_;
  FileOps* ops_;
  ReaderOptions options_;
  int64_t invariant_ts_ = INT64_MIN;           // check_invariants: last timestamp seen
  std::vector<RecordView> pending_positioned_;  // check_invariants: stream records before the next event
  std::vector<std::unique_ptr<Segment>> segments_;
  std::vector<Stream> streams_;  // index = id - 1
  std::unordered_map<std::string, StreamId> stream_ids_;
  std::vector<RecordView> system_records_;
  uint64_t begin_position_ = 0;
  uint64_t end_position_ = 0;
  int64_t last_timestamp_ns_ = 0;
  Status index_status_;
  LogInfo open_info_;  // tail state found at open
};

}  // namespace sluice
