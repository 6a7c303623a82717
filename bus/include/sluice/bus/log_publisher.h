// The bridge between the write log and the bus.
//
//   LogWriter ──on_commit──► LogPublisher ──► RecordRing (RingBuffer<CommittedRecord>)
//                                                  │ one EventProcessor per consumer
//                                                  ▼
//                              RecordConsumer ──► RecordHandler::on_record(RecordView, eob)
//                                 └─ overrun? ──► LogCatchUpSource (its own LogReader)
//
// Design
//   LogPublisher is the writer's CommitListener: for every committed event it publishes a
//   CommittedRecord (position, segment, offset, length, type, stream key, timestamp and a
//   pointer to the record) into the ring, on the writer's thread. Ring sequence == log
//   position (the ring starts at the writer's next position).
//
//   Zero-copy and mapping lifetime: the record pointer must stay valid while consumers use
//   it, but the writer unmaps a segment soon after it rolls to the next one. So the
//   publisher keeps its OWN read-only mapping of each segment (the same page-cache pages:
//   no copy) — mapped when the first record of a segment is published (one mmap per segment
//   roll, off the per-record path) — and releases a mapping only when every consumer of the
//   ring has passed the segment's last position (checked at each roll): with
//   release_through(writer), the writer's maintenance thread unmaps it in paced slices, so
//   the thread that appends never pays the munmap. A consumer that is
//   catching up reads through its own LogReader, whose mappings live as long as it does.
//   Handlers must not keep a RecordView after on_record() returns.
//
// Thread safety
//   LogPublisher::on_commit runs on the writer thread only. A RecordConsumer is polled by one
//   thread (its AgentRunner). The publisher must outlive every consumer's use of the ring
//   (stop the runners first).
//
// Invariants
//   - The ring's sequence s holds the event at log position s.
//   - A published record's header pointer is valid until every consumer's sequence >= s.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/bus/event_processor.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_types.h"
#include "sluice/bus/ring_buffer.h"
#include "sluice/status.h"

namespace sluice {

class LogWriter;

// One committed event as the ring carries it: 56 bytes, one 64-byte slot with its stamp.
struct CommittedRecord {
  const log_format::RecordHeader* header = nullptr;  // into a mapping (see the file comment)
  uint64_t position = 0;
  uint64_t stream_id = 0;
  uint64_t segment_index = 0;
  int64_t timestamp_ns = 0;
  uint32_t offset = 0;      // of the record in its segment
  uint32_t length = 0;      // header + payload bytes
  uint32_t event_type = 0;
  uint32_t end_of_append = 0;  // 1 on the last event of one append() batch

  RecordView view() const noexcept {
    RecordView v;
    v.header = header;
    v.segment_index = segment_index;
    v.offset = offset;
    return v;
  }
};
static_assert(sizeof(CommittedRecord) == 56);
static_assert(std::is_trivially_copyable_v<CommittedRecord>);

template <>
struct ShardKey<CommittedRecord> {
  static uint64_t of(const CommittedRecord& r) noexcept { return r.stream_id; }
};

using RecordRing = RingBuffer<CommittedRecord, SingleProducerSequencer>;
static_assert(sizeof(RecordRing::Slot) == 64);

class LogPublisher final : public CommitListener {
 public:
  // `ring` must start at the writer's next position: RecordRing ring(cap, writer.next_position()).
  // Set options.commit_listener = publisher.get() before LogWriter::open, or use attach().
  // producer_idle: how the writer waits when a block-policy consumer holds the ring full.
  LogPublisher(std::string dir, RecordRing& ring, const IdleOptions& producer_idle = {});
  ~LogPublisher() override;
  LogPublisher(const LogPublisher&) = delete;
  LogPublisher& operator=(const LogPublisher&) = delete;

  void on_commit(const RecordView& v, bool end_of_batch) noexcept override;

  // The first mapping error (the records of that segment then carry header == nullptr and
  // RecordConsumer resolves them through its own LogReader).
  Status status() const;
  size_t mapped_segments() const noexcept { return mappings_.size(); }
  uint64_t published() const noexcept { return published_; }
  // on_commit hands a batch over through the shared cache (see log_publisher.cc) when it
  // follows a pause this long (by the records' timestamps); handed_over() counts them.
  static constexpr int64_t kQuietGapNs = 500;
  uint64_t handed_over() const noexcept { return handed_over_; }  // writer thread
  // The writer whose maintenance thread unmaps the mappings of segments every consumer has
  // passed (LogWriter::retire_mapping); without one, on_commit unmaps them itself at the
  // roll. Before the first append, or on the writer's thread.
  void release_through(LogWriter* writer) noexcept { writer_ = writer; }
  uint64_t mappings_retired() const noexcept { return mappings_retired_; }  // handed to the writer; writer thread

 private:
  struct Mapping;
  void enter_segment(uint64_t index, uint64_t first_position) noexcept;

  const std::string dir_;
  RecordRing& ring_;
  IdleStrategy idle_;
  // Writer thread only.
  std::vector<std::unique_ptr<Mapping>> mappings_;
  const std::byte* current_base_ = nullptr;
  uint64_t current_index_ = ~uint64_t{0};
  uint64_t published_ = 0;
  int64_t last_timestamp_ns_ = INT64_MIN;  // of the last record published (none yet: any gap)
  uint64_t handed_over_ = 0;
  LogWriter* writer_ = nullptr;
  uint64_t mappings_retired_ = 0;
  bool in_batch_ = false;           // a batch's first record was published, not its last
  bool batch_after_pause_ = false;  // the current batch came kQuietGapNs after the last one
  Status error_;
};

// Reads committed records from the log for a consumer that fell behind the ring.
class LogCatchUpSource final : public CatchUpSource<CommittedRecord> {
 public:
  explicit LogCatchUpSource(std::string dir) : dir_(std::move(dir)) {}
  // Transient failures next to a live writer (see log_publisher.cc) are retried on later
  // calls (not_yet); a failure that persists becomes `error`.
  ReadResult read(int64_t sequence, CommittedRecord* out) noexcept override;
  // The last failure (OK after a successful read).
  Status status() const override { return error_; }
  // The reader (opened on first use); nullptr before.
  LogReader* reader() noexcept { return reader_.get(); }

 private:
  std::string dir_;
  std::unique_ptr<LogReader> reader_;
  Status error_;
  uint32_t failures_ = 0;  // consecutive failed opens / refreshes
};

// What a projection (or relay) implements. Must not throw or block for long: it runs on a
// bus worker thread (the projections layer adds retries and dead-lettering on top).
class RecordHandler {
 public:
  virtual ~RecordHandler() = default;
  // `v` is valid only during the call; end_of_batch: commit the read model now.
  virtual void on_record(const RecordView& v, bool end_of_batch) noexcept = 0;
};

// A consumer of committed records: EventProcessor + catch-up from the log + RecordHandler.
class RecordConsumer final : public Agent {
 public:
  // Projections use options.overrun = catch_up (they never hold the writer back); block
  // makes the writer wait for this consumer.
  RecordConsumer(RecordRing& ring, std::string log_dir, RecordHandler& handler,
                 ProcessorOptions options);
  const Status& status() const noexcept { return processor_.status(); }
  const Sequence& sequence() const noexcept { return processor_.sequence(); }
  int64_t lag_estimate() const noexcept { return processor_.lag_estimate(); }
  ProcessorStats stats() const noexcept { return processor_.stats(); }
  // The catch-up source's last error; read it from the polling thread or after the runner stopped.
  Status source_status() const { return source_.status(); }

  int do_work() noexcept override { return processor_.do_work(); }
  const char* role_name() const noexcept override { return processor_.role_name(); }
  bool drained() const noexcept override { return processor_.drained(); }
  bool has_work() const noexcept override { return processor_.has_work(); }
  WakeSignal* wake_signal() noexcept override { return processor_.wake_signal(); }

 private:
  struct Dispatch {
    RecordConsumer* self;
    void on_event(const CommittedRecord& r, int64_t seq, bool end_of_batch) noexcept;
  };

  LogCatchUpSource source_;
  RecordHandler& handler_;
  Dispatch dispatch_{this};
  EventProcessor<CommittedRecord, Dispatch> processor_;
};

}  // namespace sluice
