#include "sluice/bus/log_publisher.h"

#include <algorithm>
#include <cassert>

#include "internal/segment.h"
#include "sluice/bus/file_ops.h"
#include "sluice/bus/log_writer.h"

namespace sluice {

struct LogPublisher::Mapping {
  // A pointer, so that a passed mapping can be handed to the writer's maintenance thread
  // (LogWriter::retire_mapping) without an allocation on the writer's thread.
  std::unique_ptr<log_internal::MappedSegment> segment;
  uint64_t first_position = 0;
  uint64_t end_position = ~uint64_t{0};  // one past its last event; known once the next segment begins
};

LogPublisher::LogPublisher(std::string dir, RecordRing& ring, const IdleOptions& producer_idle)
    : dir_(std::move(dir)), ring_(ring), idle_(producer_idle) {}

LogPublisher::~LogPublisher() = default;

Status LogPublisher::status() const { return error_; }

// Cold: once per segment. Maps the new segment read-only and releases the mappings that
// every consumer has passed.
void LogPublisher::enter_segment(uint64_t index, uint64_t first_position) noexcept {
  if (!mappings_.empty() && mappings_.back()->end_position == ~uint64_t{0})
    mappings_.back()->end_position = first_position;
  // A consumer at sequence q will only read positions > q, so a segment whose events all lie
  // at or below the slowest consumer's sequence is no longer referenced by any ring slot in use.
  const int64_t slowest = ring_.min_consumer_sequence();
  std::erase_if(mappings_, [&](const std::unique_ptr<Mapping>& m) {
    if (m->end_position == ~uint64_t{0} || static_cast<int64_t>(m->end_position) - 1 > slowest) return false;
    // Unmapped by the writer's maintenance thread, in paced slices, when there is one
    // (a 64 MiB munmap of pages the consumers have read: 0.2-0.7 ms here); else here.
    if (writer_ != nullptr && writer_->retire_mapping(m->segment)) ++mappings_retired_;
    return true;
  });
  current_index_ = index;
  current_base_ = nullptr;
  try {
    auto seg = log_internal::MappedSegment::open_read(FileOps::system(),
                                                      log_internal::segment_path(dir_, index), index);
    if (!seg.ok()) {
      if (error_.ok()) error_ = seg.status();
      return;
    }
    auto m = std::make_unique<Mapping>();
    m->segment = std::make_unique<log_internal::MappedSegment>(std::move(seg.value()));
    m->first_position = first_position;
    current_base_ = m->segment->data();
    mappings_.push_back(std::move(m));
  } catch (const std::bad_alloc&) {
    if (error_.ok()) error_ = Status(StatusCode::io_error, "out of memory mapping segment " + std::to_string(index));
  }
}

void LogPublisher::on_commit(const RecordView& v, bool end_of_batch) noexcept {
  if (v.segment_index != current_index_) enter_segment(v.segment_index, v.position());
  CommittedRecord r;
  // Our own mapping of the same file: same bytes, a lifetime we control.
  r.header = current_base_ == nullptr
                 ? nullptr
                 : reinterpret_cast<const log_format::RecordHeader*>(current_base_ + v.offset);
  r.position = v.position();
  r.stream_id = v.stream_id();
  r.segment_index = v.segment_index;
  r.timestamp_ns = v.timestamp_ns();
  r.offset = v.offset;
  r.length = v.length();
  r.event_type = v.event_type();
  r.end_of_append = end_of_batch ? 1 : 0;
  assert(static_cast<int64_t>(r.position) == ring_.head() + 1 && "ring must start at the writer's next position");
  ring_.publish(r, idle_);
  // A batch that comes after a pause (kQuietGapNs since the last one, by the records' own
  // timestamps) finds the consumers spinning for it on other cores; they read the slot, then
  // the record: hand both over through the shared cache instead of leaving them to be
  // snooped out of this core one after the other. Not in a stream faster than one batch per
  // kQuietGapNs: there the consumers lag anyway, and the writer's next record would have to
  // fetch back the line it shares with this one (e2e throughput halved when every record was
  // demoted). (The writer never lets timestamps go backwards: after a step back of the
  // realtime clock they stay flat, and the hand-over is off until the clock catches up.)
  // (`sluice bench e2e`, append -> applied p50 at 100 k events/s: see docs/bus.md.)
  // The test subtracts from the new timestamp, not from the old one: no overflow from the
  // initial INT64_MIN (timestamps are not within kQuietGapNs of INT64_MIN).
  if (!in_batch_) {
    batch_after_pause_ = r.timestamp_ns - kQuietGapNs >= last_timestamp_ns_;
    handed_over_ += batch_after_pause_ ? 1 : 0;
  }
  in_batch_ = !end_of_batch;
  last_timestamp_ns_ = r.timestamp_ns;
  if (batch_after_pause_) {
    ring_.demote(static_cast<int64_t>(r.position));
    cache_demote_range(v.header, r.length);
  }
  ++published_;
}

// Opening and refreshing a reader next to a live writer can fail transiently:
// LogReader::open's scan may see a record committed during the scan after a zero one ("a
// valid record follows"), and refresh() may find the next segment file just created by the
// writer's maintenance thread, still empty ("shorter than its header"). A failure is
// therefore retried on later polls (the consumer idles meanwhile) and reported as the
// source's error only when it persists (kMaxFailures polls in a row, ~1 s with the default
// backoff); real corruption persists.
CatchUpSource<CommittedRecord>::ReadResult LogCatchUpSource::read(int64_t sequence,
                                                                 CommittedRecord* out) noexcept {
  constexpr uint32_t kMaxFailures = 1000;
  if (failures_ >= kMaxFailures) return ReadResult::error;
  auto failed = [this](Status st) {
    error_ = std::move(st);
    return ++failures_ >= kMaxFailures ? ReadResult::error : ReadResult::not_yet;
  };
  try {
    if (reader_ == nullptr) {
      auto r = LogReader::open(dir_);
      if (!r.ok()) return failed(r.status());
      reader_ = std::move(r.value());
    }
    RecordView v;
    if (!reader_->read(static_cast<uint64_t>(sequence), &v)) {
      auto n = reader_->refresh();
      if (!n.ok()) return failed(n.status());
      if (!reader_->read(static_cast<uint64_t>(sequence), &v)) return ReadResult::not_yet;
    }
    failures_ = 0;
    error_ = Status::OK();
    out->header = v.header;
    out->position = v.position();
    out->stream_id = v.stream_id();
    out->segment_index = v.segment_index;
    out->timestamp_ns = v.timestamp_ns();
    out->offset = v.offset;
    out->length = v.length();
    out->event_type = v.event_type();
    out->end_of_append = (v.header->flags & log_format::kFlagBatchContinues) ? 0 : 1;
    return ReadResult::ok;
  } catch (const std::exception& e) {
    return failed(Status(StatusCode::io_error, std::string("catch-up from ") + dir_ + ": " + e.what()));
  }
}

RecordConsumer::RecordConsumer(RecordRing& ring, std::string log_dir, RecordHandler& handler,
                               ProcessorOptions options)
    : source_(std::move(log_dir)), handler_(handler), processor_(ring, dispatch_, std::move(options), &source_) {}

void RecordConsumer::Dispatch::on_event(const CommittedRecord& r, int64_t seq, bool end_of_batch) noexcept {
  if (r.header != nullptr) {
    self->handler_.on_record(r.view(), end_of_batch);
    return;
  }
  // The publisher could not map this segment: resolve through our own reader.
  CommittedRecord resolved;
  if (self->source_.read(seq, &resolved) == CatchUpSource<CommittedRecord>::ReadResult::ok) {
    self->handler_.on_record(resolved.view(), end_of_batch);
  }
  // Otherwise the source holds the error (source_status()); the record was committed, so this
  // only happens when the log itself cannot be read.
}

}  // namespace sluice
