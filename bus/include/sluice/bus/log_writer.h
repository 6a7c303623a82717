// LogWriter: the single writer of a Sluice log.
//
// Design
//   The writer owns the active segment (a preallocated, memory-mapped file) and appends
//   records into it in place: header and payload first, the CRC, then the length with a
//   release store, which commits the record (docs/log-format.md). A batch of events to one
//   stream is written as consecutive records, all but the last flagged "batch continues", so
//   readers and recovery see all of it or none of it. A maintenance thread prepares the next
//   segments off the hot path (create, preallocate, flush their extents, pre-fault their pages),
//   runs group commits, and checks that the segment file has not been removed.
//
// Thread safety
//   One thread owns the writer: append(), stream(), flush() and close() must not be called
//   concurrently (a debug build asserts it). acknowledged_position(), committed_position(),
//   failed() and wait_acknowledged() may be called from any thread. Readers in other threads
//   or processes use LogReader on the same directory; a LOCK file keeps a second writer out.
//
// Invariants
//   - Positions are gap-free: every event gets next_position() and increments it.
//   - committed_position() <= next_position(); acknowledged_position() <= committed_position().
//   - Nothing at or past acknowledged_position() is acknowledged; once failed() is true no
//     append succeeds again (a failed flush is never retried).
//
// Hot path: append() with durability none does no heap allocation, takes no lock, throws no
// exception and makes no system call, except when it rolls to the next segment (once per
// segment: a mutex hand-over with the maintenance thread). Under sync it makes one msync.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "sluice/bus/log_types.h"
#include "sluice/status.h"

namespace sluice {

namespace log_internal {
class MappedSegment;
class RealtimeClock;
class SlicePacer;
}

struct LogWriterStats {
  uint64_t appends = 0;
  uint64_t events = 0;
  uint64_t segment_rolls = 0;
  uint64_t flushes = 0;
  uint64_t roll_waits = 0;  // rolls that found no prepared segment ready and waited for it
  uint64_t roll_wait_ns = 0;  // the time those rolls waited, in all (steady clock)
};

class LogWriter {
 public:
  // Opens (creating if allowed) the log in `dir`, recovering it: a torn or zero-filled tail
  // after the durable watermark is truncated (its bytes are first copied into the log's
  // quarantine/ directory); damage before the watermark, a missing segment, data in a
  // prepared segment are refused as corruption, with an error naming segment and offset.
  // Then everything recovered is flushed and the watermark moved to its end. Fails with
  // busy if another writer holds the log.
  static Result<std::unique_ptr<LogWriter>> open(const std::string& dir,
                                                 const LogOptions& options = {});
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Finds the stream called `name`, creating it (a stream record in the log) if needed.
  // Cold path: may allocate. Names are 1..1024 bytes of UTF-8 without NUL (else invalid_argument,
  // naming the first bad byte).
  Result<StreamId> stream(std::string_view name);
  std::optional<StreamId> find_stream(std::string_view name) const;
  std::string_view stream_name(StreamId id) const;
  // Events in the stream (its current version); 0 for an unknown id.
  uint64_t stream_version(StreamId id) const noexcept;
  size_t stream_count() const noexcept { return versions_.size(); }

  // Appends events to one stream, atomically: all or none visible, also after a crash.
  AppendResult append(StreamId stream, ExpectedVersion expected,
                      std::span<const EventData> events) noexcept {
    if (events.size() == 1) return append(stream, expected, events[0]);
    return fused_ ? append_fused(stream, expected, events) : append_portable(stream, expected, events);
  }
  AppendResult append(StreamId stream, ExpectedVersion expected, const EventData& e) noexcept {
    return fused_ ? append_one_fused(stream, expected, e) : append_one_portable(stream, expected, e);
  }
  // Appends a system record (e.g. a schema registry entry) that takes no position. `type`
  // must have log_format::kTypeIgnorable set.
  Status append_system(uint8_t type, uint32_t event_type, std::span<const std::byte> payload);

  // Details of the last failed append (message names the stream or file).
  const Status& last_error() const noexcept { return last_error_; }

  // Flushes everything appended so far, whatever the durability, and acknowledges it.
  Status flush();
  // Blocks until `position` is acknowledged (group commit), or the timeout passes.
  Status wait_acknowledged(uint64_t position, std::chrono::milliseconds timeout);

  // Every position below this is acknowledged under the durability policy.
  uint64_t acknowledged_position() const noexcept {
    // Acquire: pairs with the release in publish_acknowledged().
    return acknowledged_.load(std::memory_order_acquire);
  }
  // Every position below this is committed (visible to readers).
  uint64_t committed_position() const noexcept {
    // Acquire: pairs with the release at the end of append().
    return committed_.load(std::memory_order_acquire);
  }
  uint64_t next_position() const noexcept { return next_position_; }

  bool failed() const noexcept {
    // Acquire: pairs with the release in fail(); after true, failure() is readable.
    return failed_.load(std::memory_order_acquire);
  }
  Status failure() const;

  const std::string& dir() const noexcept { return dir_; }
  const LogOptions& options() const noexcept { return options_; }
  uint64_t segment_index() const noexcept;
  // flushes includes the group flushes of the maintenance thread.
  LogWriterStats stats() const noexcept {
    LogWriterStats s = stats_;
    // Relaxed: a statistic; nothing is published through it.
    s.flushes += group_flushes_.load(std::memory_order_relaxed);
    return s;
  }
  // The longest uninterrupted slice of background work (segment preparation, unmapping) the
  // maintenance thread ran between two yields of its CPU, in ns (wall time). Any thread.
  uint64_t longest_background_slice_ns() const noexcept;
  // The same slices' longest CPU time (ns): what one slice took from other threads.
  uint64_t longest_background_slice_cpu_ns() const noexcept;
  // Their CPU time in all (ns): what segment preparation and unmapping have cost so far
  // (group flushes, also on that thread, are not paced and not counted).
  uint64_t background_cpu_ns() const noexcept;
  // The pacer of those slices (longest CPU time per kind of step: fallocate, fsync, zeros,
  // populate, touch, unmap, ...), for benchmarks and diagnostics; null before open completes.
  const log_internal::SlicePacer* background_pacer() const noexcept { return pacer_.get(); }
  // Forgets the longest slices so far: the three figures above then cover only what follows
  // (a benchmark's timed window, after the segments prepared at open). Any thread.
  void reset_background_slices() noexcept;
  // Waits until the maintenance thread has the next segments ready (options().prepared_segments
  // of them; or it could not make one), at most `timeout`; true when they are ready. A latency-sensitive opener (the engine's
  // start()) calls it so that the first preparation — the one that would otherwise fall in
  // the first seconds of traffic, on a CPU the hot threads use — happens before traffic.
  // Any thread; not on the hot path.
  bool wait_prepared(std::chrono::milliseconds timeout);
  // The most segments LogOptions::prepared_segments may ask for.
  static constexpr uint32_t kMaxPreparedSegments = 8;
  // Hands a mapping another component of the writer's thread is done with (LogPublisher's
  // read-only mapping of a passed segment) to the maintenance thread, which unmaps it in
  // paced slices as it does the writer's own retired segments: a 64 MiB munmap of a mapping
  // the consumers have read took 0.2-0.7 ms here, on the thread that appends. Writer thread
  // only; takes mu_ and wakes the maintenance thread (cold: once per segment). False (and
  // `seg` left with the caller) when the log is closed or kMaxRetiredMappings entries already
  // wait to be unmapped.
  [[nodiscard]] bool retire_mapping(std::unique_ptr<log_internal::MappedSegment>& seg) noexcept;
  static constexpr size_t kMaxRetiredMappings = 8;
  // Mappings handed over by retire_mapping() that the maintenance thread has unmapped. Any thread.
  uint64_t mappings_unmapped() const noexcept { return mappings_unmapped_.load(std::memory_order_relaxed); }
  // What recovery found and truncated on open ("" when the tail was clean).
  const std::string& recovery_note() const noexcept { return recovery_note_; }

  // Stops the maintenance thread, flushes what this open wrote (every durability: a closed
  // log is durable whole), records the durable watermark, unmaps, releases the lock.
  Status close();

 private:
  LogWriter(std::string dir, const LogOptions& options);
  Status open_impl();
  Status recover(bool* need_new_segment, uint64_t* last_index);
  Status roll(uint64_t needed) noexcept;
  Status write_meta();
  // Flushes segments [from, segment_->index()] (the current one up to tail_) and moves the
  // durable watermark to the end.
  Status make_all_durable(uint64_t from);
  Status quarantine_bytes(const std::string& name, const std::byte* data, size_t n);
  Status quarantine_file(const std::string& name);
  void maintenance_loop();
  Status place_maintenance_thread();
  Status group_flush_locked();
  void fail(Status st) noexcept;
  void publish_acknowledged(uint64_t position) noexcept {
    // Release: pairs with the acquire in acknowledged_position(); a reader that sees
    // `position` knows every event below it is acknowledged.
    acknowledged_.store(position, std::memory_order_release);
  }
  int64_t now_ns() const noexcept;
  // Makes segment_ the segment appends go to: caches what the fast path reads of it.
  void use_segment(std::unique_ptr<log_internal::MappedSegment> seg) noexcept;
  // append() with the CPU's CRC instructions (SSE4.2 crc32, PCLMULQDQ), or without: the
  // general path (batches, ids, long payloads, segment rolls, refusals) and the one-event
  // fast path, which hands everything it does not do to the general one.
  [[gnu::noinline]] AppendResult append_fused(StreamId stream, ExpectedVersion expected,
                                              std::span<const EventData> events) noexcept;
  [[gnu::noinline]] AppendResult append_portable(StreamId stream, ExpectedVersion expected,
                                                 std::span<const EventData> events) noexcept;
  AppendResult append_one_fused(StreamId stream, ExpectedVersion expected,
                                const EventData& e) noexcept;
  AppendResult append_one_portable(StreamId stream, ExpectedVersion expected,
                                   const EventData& e) noexcept;
  template <class Encoder>
  AppendResult append_with(StreamId stream, ExpectedVersion expected,
                           std::span<const EventData> events) noexcept;
  template <class Encoder>
  AppendResult append_one_with(StreamId stream, ExpectedVersion expected,
                               const EventData& e) noexcept;
  // After records up to tail_ / next_position_ are written: publishes them and
  // acknowledges them under the durability policy. False when a sync failed (last_error_
  // says why; the writer is failed).
  bool publish_appended(uint64_t batch_start, uint64_t events) noexcept;
  // publish_appended() under group and sync: out of line, so that the fast path stays small
  // whatever the compiler inlines (built without -fPIC, sync_current() used to inline into
  // it, with a frame of spills: ~28 -> ~32 ns per append).
  [[gnu::noinline]] bool acknowledge_durable(uint64_t events) noexcept;
  [[gnu::noinline]] void notify_commit_listener(uint64_t batch_start) noexcept;
  [[gnu::noinline, gnu::cold]] AppendResult reject(AppendCode code, Status st) noexcept;
  [[gnu::noinline, gnu::cold]] AppendResult refuse_append(StreamId stream, ExpectedVersion expected,
                                           size_t count) noexcept;
  [[gnu::noinline, gnu::cold]] AppendResult refuse_too_large(StreamId stream, size_t count,
                                              uint64_t need) noexcept;
  Status sync_current(uint64_t end_offset);

  const std::string dir_;
  const LogOptions options_;
  FileOps* ops_;
  std::unique_ptr<log_internal::RealtimeClock> clock_;  // used by the writer thread only
  const bool fused_;  // append() takes append_fused()
  int lock_fd_ = -1;
  std::string recovery_note_;
  // The durable watermark last written to sluice.meta (writer thread; open and close).
  uint64_t durable_segment_ = 0;
  uint64_t durable_offset_ = 0;
  uint64_t durable_position_ = 0;

  // Owned by the writer thread.
  std::unique_ptr<log_internal::MappedSegment> segment_;
  // What the fast path reads of segment_ (use_segment() sets them): its mapping, its index,
  // and the highest tail_ + payload size at which a record without ids still fits before the
  // room reserved for the segment's seal.
  std::byte* segment_base_ = nullptr;
  uint64_t segment_index_ = 0;
  uint64_t short_record_limit_ = 0;
  uint64_t tail_ = 0;            // offset of the next record in segment_
  uint64_t next_position_ = 0;
  uint64_t synced_offset_ = 0;   // sync: segment_ bytes below this are flushed
  int64_t last_ts_ = 0;
  std::vector<uint64_t> versions_;         // stream versions, index = id - 1
  std::vector<std::string> stream_names_;  // index = id - 1
  std::unordered_map<std::string, StreamId> stream_ids_;
  LogWriterStats stats_;
  // Group flushes done by the maintenance thread (its only writer; relaxed, see stats()).
  std::atomic<uint64_t> group_flushes_{0};
  Status last_error_;
  bool closed_ = false;
  // Debug guard: one thread appends (checked only without NDEBUG; the member is always
  // there, so the class has one layout whatever NDEBUG a user compiles with).
  std::atomic<std::thread::id> owner_{};

  // Published by the writer thread.
  // committed_: positions below it are committed. Release store in append(), acquire loads
  // in committed_position() and in the group flusher (which then flushes at least up to
  // committed_offset_).
  alignas(64) std::atomic<uint64_t> committed_{0};
  // Byte offset in the current segment matching committed_; stored (release) before
  // committed_, so a flusher that acquires committed_ then reads this sees an offset at least
  // as far.
  std::atomic<uint64_t> committed_offset_{0};
  // acknowledged_: positions below it are acknowledged. Written by whoever flushed (writer
  // under sync / roll, maintenance thread under group) with release; read with acquire.
  alignas(64) std::atomic<uint64_t> acknowledged_{0};
  // failed_: set once, with release, after failure_ is written under mu_.
  std::atomic<bool> failed_{false};

  // Shared with the maintenance thread, under mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the maintenance thread
  std::condition_variable ack_cv_;   // wakes wait_acknowledged()
  Status failure_;
  bool stopping_ = false;
  bool flush_requested_ = false;
  uint64_t flushed_offset_ = 0;      // group: current segment flushed below this offset
  // The next segments, ready, in index order; at most options_.prepared_segments (capacity
  // reserved in open, so that roll() does not allocate).
  std::vector<std::unique_ptr<log_internal::MappedSegment>> prepared_;
  Status prepare_error_;
  bool preparing_ = false;           // the maintenance thread is creating a segment
  bool rolling_ = false;             // the writer is installing the next segment (roll())
  std::condition_variable prepared_cv_;  // signals prepared_ or prepare_error_ changed
  std::vector<std::unique_ptr<log_internal::MappedSegment>> retired_;  // to flush (none) and unmap
  // Owned by the maintenance thread: retired_ is swapped into it. Both reserve
  // kRetiredCapacity, so that roll() does not allocate. What can wait at once: the mappings
  // retire_mapping() accepted (it refuses past kMaxRetiredMappings entries), then one segment
  // per roll while the maintenance thread is busy unmapping — at most one per prepared
  // segment, plus one made inline when none was prepared — and a margin.
  std::vector<std::unique_ptr<log_internal::MappedSegment>> retiring_;
  static constexpr size_t kRetiredCapacity = kMaxRetiredMappings + kMaxPreparedSegments + 4;
  // Relaxed: a statistic, written by the maintenance thread only (load + store).
  std::atomic<uint64_t> mappings_unmapped_{0};
  std::atomic<uint64_t> pending_events_{0};  // group: relaxed counter, a hint for early flush
  std::unique_ptr<log_internal::SlicePacer> pacer_;  // the maintenance thread's; created before it
  std::thread maintenance_;
};

}  // namespace sluice
