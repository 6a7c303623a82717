#include "sluice/bus/log_writer.h"

#include "sluice/bus/agent.h"  // name_current_thread
#include "sluice/bus/clock.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>

#include "internal/log_scan.h"
#include "internal/realtime_clock.h"
#include "internal/record_codec.h"
#include "internal/record_encoder_fused.h"
#include "internal/segment.h"
#include "sluice/bus/file_ops.h"

namespace sluice {

namespace lf = log_format;
using log_internal::MappedSegment;

namespace {

constexpr size_t kMaxStreamName = 1024;

}  // namespace

std::string_view to_string(Durability d) noexcept {
  switch (d) {
    case Durability::none: return "none";
    case Durability::group: return "group";
    case Durability::sync: return "sync";
  }
  return "?";
}

bool parse_durability(std::string_view s, Durability* out) noexcept {
  if (s == "none") *out = Durability::none;
  else if (s == "group") *out = Durability::group;
  else if (s == "sync") *out = Durability::sync;
  else return false;
  return true;
}

std::string_view to_string(AppendCode c) noexcept {
  switch (c) {
    case AppendCode::ok: return "ok";
    case AppendCode::conflict: return "conflict";
    case AppendCode::too_large: return "too_large";
    case AppendCode::closed: return "closed";
    case AppendCode::io_error: return "io_error";
    case AppendCode::invalid_argument: return "invalid_argument";
    case AppendCode::back_pressured: return "back_pressured";
  }
  return "?";
}

Id128 RecordView::id_at(uint8_t flag) const noexcept {
  if ((header->flags & flag) == 0) return {};
  const auto* p = reinterpret_cast<const std::byte*>(header) + lf::kRecordHeaderSize;
  for (uint8_t f : {lf::kFlagIdempotencyKey, lf::kFlagCorrelationId, lf::kFlagCausationId}) {
    if (f == flag) break;
    if (header->flags & f) p += lf::kIdSize;
  }
  Id128 id;
  std::memcpy(&id, p, sizeof id);
  return id;
}

LogWriter::LogWriter(std::string dir, const LogOptions& options)
    : dir_(std::move(dir)),
      options_(options),
      ops_(options.file_ops ? options.file_ops : &FileOps::system()),
      clock_(std::make_unique<log_internal::RealtimeClock>(options.clock_ns)),
      fused_(log_internal::fused_encoder_available()) {}

Result<std::unique_ptr<LogWriter>> LogWriter::open(const std::string& dir,
                                                   const LogOptions& options) {
  std::unique_ptr<LogWriter> w(new LogWriter(dir, options));
  if (Status st = w->open_impl(); !st.ok()) return st;
  return w;
}

LogWriter::~LogWriter() { close().ignore(); }

[[gnu::always_inline]] inline int64_t LogWriter::now_ns() const noexcept { return clock_->now(); }

Status LogWriter::open_impl() {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  if (options_.segment_size < lf::kMinSegmentSize || options_.segment_size > lf::kMaxSegmentSize ||
      options_.segment_size % page != 0) {
    return Status(StatusCode::invalid_argument,
                  "segment size " + std::to_string(options_.segment_size) +
                      " must be a multiple of " + std::to_string(page) + " between " +
                      std::to_string(lf::kMinSegmentSize) + " and " +
                      std::to_string(lf::kMaxSegmentSize));
  }
  if (options_.prepared_segments < 1 || options_.prepared_segments > kMaxPreparedSegments)
    return Status(StatusCode::invalid_argument,
                  "prepared_segments " + std::to_string(options_.prepared_segments) +
                      " must be between 1 and " + std::to_string(kMaxPreparedSegments));
  struct stat st {};
  if (::stat(dir_.c_str(), &st) != 0) {
    if (errno != ENOENT || !options_.create_if_missing)
      return Status(errno == ENOENT ? StatusCode::not_found : StatusCode::io_error,
                    "log directory " + dir_ + ": " + log_internal::errno_text(errno));
    if (ops_->mkdir(dir_.c_str(), options_.dir_mode) != 0 && errno != EEXIST)
      return Status(StatusCode::io_error,
                    "create log directory " + dir_ + ": " + log_internal::errno_text(errno));
  } else if (!S_ISDIR(st.st_mode)) {
    return Status(StatusCode::invalid_argument, dir_ + " is not a directory");
  }
  const std::string lock_path = dir_ + "/" + lf::kLockFileName;
  lock_fd_ = ops_->open(lock_path.c_str(), O_RDWR | O_CREAT, options_.file_mode);
  if (lock_fd_ < 0)
    return Status(StatusCode::io_error, "open " + lock_path + ": " + log_internal::errno_text(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ops_->close(lock_fd_);
    lock_fd_ = -1;
    if (err == EWOULDBLOCK)
      return Status(StatusCode::busy, "log " + dir_ + " is open by another writer (" + lock_path + ")");
    return Status(StatusCode::io_error, "flock " + lock_path + ": " + log_internal::errno_text(err));
  }
  bool need_new = false;
  uint64_t last_index = 0;
  if (Status s = recover(&need_new, &last_index); !s.ok()) return s;
  if (need_new) {
    // Everything before the new segment durable first: its header then says so.
    for (uint64_t idx = durable_segment_; idx < last_index; ++idx)
      if (Status s = log_internal::sync_file(*ops_, log_internal::segment_path(dir_, idx)); !s.ok())
        return s;
    auto seg = MappedSegment::create(*ops_, dir_, last_index, options_.segment_size, options_.prefault,
                                     options_.durability != Durability::none, nullptr,
                                     options_.file_mode);
    if (!seg.ok()) return seg.status();
    use_segment(std::make_unique<MappedSegment>(std::move(seg.value())));
    segment_->activate(next_position_, now_ns(), last_index > 0 ? uint32_t{lf::kSegmentPrevDurable} : 0u);
    if (Status s = segment_->sync(0, lf::kSegmentHeaderSize); !s.ok()) return s;
    tail_ = lf::kSegmentHeaderSize;
    durable_segment_ = last_index;
    durable_offset_ = 0;
  }
  synced_offset_ = tail_;
  flushed_offset_ = tail_;
  committed_offset_.store(tail_, std::memory_order_relaxed);  // before the thread starts
  committed_.store(next_position_, std::memory_order_relaxed);
  acknowledged_.store(next_position_, std::memory_order_relaxed);
  // What recovery found may be in the page cache only (a process killed under none): flush
  // it, and record the watermark, so that damage to it is told from a torn tail from now on.
  if (Status s = make_all_durable(durable_segment_); !s.ok()) return s;
  retired_.reserve(kRetiredCapacity);
  prepared_.reserve(kMaxPreparedSegments);
  retiring_.reserve(kRetiredCapacity);
  pacer_ = std::make_unique<log_internal::SlicePacer>();
  maintenance_ = std::thread([this] { maintenance_loop(); });
  return place_maintenance_thread();
}

namespace {
// The CPUs this process could use when the library was loaded, before the application pinned
// any thread: the set the maintenance thread may spread over. Under `taskset -c 3` it is
// {3}, so the maintenance thread stays where the user confined the process.
struct InitialAffinity {
  cpu_set_t set;
  bool known;
  InitialAffinity() { known = ::sched_getaffinity(0, sizeof set, &set) == 0; }
};
const InitialAffinity kInitialAffinity;
}  // namespace

Status LogWriter::place_maintenance_thread() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (options_.maintenance_cpu >= 0) {
    if (options_.maintenance_cpu >= CPU_SETSIZE)
      return Status(StatusCode::invalid_argument,
                    "maintenance_cpu " + std::to_string(options_.maintenance_cpu) + " out of range");
    CPU_SET(options_.maintenance_cpu, &set);
    if (const int rc = ::pthread_setaffinity_np(maintenance_.native_handle(), sizeof set, &set); rc != 0)
      return Status(StatusCode::invalid_argument,
                    "pin the maintenance thread of log " + dir_ + " to CPU " +
                        std::to_string(options_.maintenance_cpu) + ": " + log_internal::errno_text(rc));
    // A CPU apart from the hot threads (not avoided, and the opener pinned to another one):
    // nothing hot to yield to there.
    cpu_set_t opener;
    const bool avoided = options_.maintenance_cpu < 64 && ((options_.maintenance_avoid_cpus >> options_.maintenance_cpu) & 1) != 0;
    const bool opener_elsewhere = ::pthread_getaffinity_np(::pthread_self(), sizeof opener, &opener) == 0 &&
                                  CPU_COUNT(&opener) == 1 && !CPU_ISSET(options_.maintenance_cpu, &opener);
    if (!avoided && opener_elsewhere) pacer_->set_yielding(false);
    return Status();
  }
  // Default: when the opener is pinned to exactly one CPU, keep the maintenance thread (which
  // inherited that pin) off it, on the process's other CPUs, and off the avoided ones. Before
  // this, `sluice bench log` (appender pinned) had segment preparation preempt the appender
  // ~50 times per 4 M appends; in `sluice bench e2e` it then landed on the busy-spinning
  // worker's CPU, hence maintenance_avoid_cpus.
  if (!kInitialAffinity.known || ::pthread_getaffinity_np(::pthread_self(), sizeof set, &set) != 0)
    return Status();
  const bool pinned_opener = CPU_COUNT(&set) == 1;
  if (!pinned_opener && options_.maintenance_avoid_cpus == 0) return Status();
  cpu_set_t allowed = kInitialAffinity.set;
  for (int c = 0; c < 64; ++c)
    if ((options_.maintenance_avoid_cpus >> c) & 1) CPU_CLR(c, &allowed);
  cpu_set_t chosen = allowed;
  bool apart = false;  // on CPUs that neither the pinned opener nor an avoided thread uses
  if (pinned_opener) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) CPU_CLR(c, &chosen);
    apart = CPU_COUNT(&chosen) > 0;
    if (!apart) chosen = allowed;  // no other CPU: share the opener's
  }
  // Where nothing is left, or the cpuset forbids the choice, the thread keeps its inherited CPUs.
  if (CPU_COUNT(&chosen) > 0 &&
      ::pthread_setaffinity_np(maintenance_.native_handle(), sizeof chosen, &chosen) == 0 && apart) {
    // Apart from the hot threads, a yield between slices could only hand the CPU to another
    // process, at a price (SlicePacer::set_yielding): the slices run back to back.
    pacer_->set_yielding(false);
  }
  return Status();
}

Status LogWriter::recover(bool* need_new_segment, uint64_t* last_index) {
  Status bad;
  auto on_record = [&](const RecordView& v) {
    if (!bad.ok()) return;
    auto where = [&] {
      return "segment " + log_internal::segment_path(dir_, v.segment_index) + " offset " +
             std::to_string(v.offset) + ": ";
    };
    if (v.type() == lf::kTypeStreamDefined) {
      auto p = v.payload();
      std::string name(reinterpret_cast<const char*>(p.data()), p.size());
      if (v.stream_id() != versions_.size() + 1 || name.empty() || stream_ids_.count(name)) {
        bad = Status(StatusCode::corruption, where() + "stream record for '" + name + "' with id " +
                                                 std::to_string(v.stream_id()) + " out of sequence");
        return;
      }
      stream_ids_.emplace(name, v.stream_id());
      stream_names_.push_back(std::move(name));
      versions_.push_back(0);
    } else if (v.is_event()) {
      if (v.stream_id() > versions_.size() ||
          v.stream_version() != versions_[v.stream_id() - 1] + 1) {
        bad = Status(StatusCode::corruption,
                     where() + "event at position " + std::to_string(v.position()) +
                         " has stream " + std::to_string(v.stream_id()) + " version " +
                         std::to_string(v.stream_version()) + ", out of sequence");
        return;
      }
      versions_[v.stream_id() - 1] = v.stream_version();
    }
  };
  auto scan = log_internal::scan_log(*ops_, dir_, on_record, /*keep_maps=*/false,
                                     options_.recovery == RecoveryMode::point_in_time);
  if (!scan.ok()) return scan.status();
  if (!bad.ok()) return bad;
  log_internal::LogScan& s = scan.value();
  if (!s.cut_reason.empty()) recovery_note_ += "point_in_time recovery cut the log at: " + s.cut_reason + "; ";
  if (s.watermark.known && s.cut_reason.empty()) {
    durable_segment_ = s.watermark.segment;
    durable_offset_ = s.watermark.offset;
    durable_position_ = s.watermark.position;
  } else {
    durable_segment_ = s.segments.empty() ? 0 : s.segments.front().index;
  }
  // Segments after a torn unsealed one (a power cut under none): outside the consistent
  // prefix. Moved aside, never deleted.
  for (uint64_t idx : s.beyond) {
    if (Status st = quarantine_file(log_internal::segment_file_name(idx)); !st.ok()) return st;
    recovery_note_ += "moved segment " + log_internal::segment_file_name(idx) + " to " +
                      lf::kQuarantineDir + "/ (after the torn end of the log); ";
  }
  // A header torn while it was being activated: its bytes kept aside, then zeroed, so that
  // the segment can be made again (nothing else in it is non-zero).
  for (uint64_t idx : s.torn_headers) {
    const std::string p = log_internal::segment_path(dir_, idx);
    std::byte header[lf::kSegmentHeaderSize];
    const int fd = ops_->open(p.c_str(), O_RDWR, 0);
    if (fd < 0) return Status(StatusCode::io_error, "open " + p + ": " + log_internal::errno_text(errno));
    const bool read_ok = ::pread(fd, header, sizeof header, 0) == static_cast<ssize_t>(sizeof header);
    Status st = read_ok ? quarantine_bytes(log_internal::segment_file_name(idx) + ".0.header", header,
                                           sizeof header)
                        : Status(StatusCode::io_error, "read " + p);
    static constexpr std::byte kZeros[lf::kSegmentHeaderSize] = {};
    if (st.ok() && (ops_->pwrite(fd, kZeros, sizeof kZeros, 0) != static_cast<ssize_t>(sizeof kZeros) ||
                    ops_->fdatasync(fd) != 0))
      st = Status(StatusCode::io_error, "zero the torn header of " + p + ": " + log_internal::errno_text(errno));
    ops_->close(fd);
    if (!st.ok()) return st;
    recovery_note_ += "zeroed the torn header of segment " + p + "; ";
  }
  next_position_ = s.next_position;
  for (const auto& seg : s.segments) last_ts_ = std::max(last_ts_, seg.last_timestamp_ns);
  if (s.segments.empty()) {
    *need_new_segment = true;
    *last_index = s.unactivated.empty() ? 0 : s.unactivated.front();
    return Status();
  }
  const log_internal::SegmentSummary& last = s.segments.back();
  if (last.sealed) {
    *need_new_segment = true;
    *last_index = last.index + 1;
    return Status();
  }
  // The last segment keeps its own size; segments made from now on get the configured one.
  auto seg = MappedSegment::open_write(*ops_, last.path, last.index, last.segment_size);
  if (!seg.ok()) return seg.status();
  use_segment(std::make_unique<MappedSegment>(std::move(seg.value())));
  tail_ = last.end_offset;
  if (s.tail_damaged) {
    if (s.tail_dirty_end > s.tail_offset) {
      if (Status st = quarantine_bytes(log_internal::segment_file_name(last.index) + "." +
                                           std::to_string(s.tail_offset) + ".torn",
                                       segment_->data() + s.tail_offset, s.tail_dirty_end - s.tail_offset);
          !st.ok())
        return st;
    }
    std::memset(segment_->data() + s.tail_offset, 0, s.tail_dirty_end - s.tail_offset);
    if (Status st = segment_->sync(s.tail_offset, std::max(s.tail_dirty_end, s.tail_offset + 1));
        !st.ok())
      return st;
    recovery_note_ += "truncated the tail of segment " + last.path + " at offset " +
                      std::to_string(s.tail_offset) + ": " + s.tail_reason +
                      (s.tail_dirty_end > s.tail_offset ? " (the bytes cut are in " +
                                                              std::string(lf::kQuarantineDir) + "/)"
                                                        : "");
  }
  return Status();
}

Status LogWriter::write_meta() {
  const std::string path = dir_ + "/" + lf::kMetaFileName;
  std::string text = "format_version=" + std::to_string(lf::kFormatVersion) +
                     "\ndurability=" + std::string(to_string(options_.durability)) +
                     "\nsegment_size=" + std::to_string(options_.segment_size) +
                     "\nwriter_pid=" + std::to_string(::getpid()) +
                     "\nopened_ns=" + std::to_string(realtime_ns()) + "\n" +
                     lf::kMetaDurableSegment + "=" + std::to_string(durable_segment_) + "\n" +
                     lf::kMetaDurableOffset + "=" + std::to_string(durable_offset_) + "\n" +
                     lf::kMetaDurablePosition + "=" + std::to_string(durable_position_) + "\n";
  AtomicFileOptions o;
  o.mode = options_.file_mode;
  return write_file_atomically(*ops_, path, text, o);
}

Status LogWriter::make_all_durable(uint64_t from) {
  for (uint64_t idx = from; idx < segment_->index(); ++idx)
    if (Status st = log_internal::sync_file(*ops_, log_internal::segment_path(dir_, idx)); !st.ok())
      return st;
  if (Status st = segment_->sync(0, tail_); !st.ok()) return st;
  durable_segment_ = segment_->index();
  durable_offset_ = tail_;
  durable_position_ = next_position_;
  return write_meta();
}

Status LogWriter::quarantine_bytes(const std::string& name, const std::byte* data, size_t n) {
  const std::string qdir = dir_ + "/" + lf::kQuarantineDir;
  if (ops_->mkdir(qdir.c_str(), options_.dir_mode) != 0 && errno != EEXIST)
    return Status(StatusCode::io_error, "create " + qdir + ": " + log_internal::errno_text(errno));
  std::string path = qdir + "/" + name;
  int fd = -1;
  for (int i = 1; i < 1000; ++i) {
    fd = ops_->open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, options_.file_mode);
    if (fd >= 0 || errno != EEXIST) break;
    path = qdir + "/" + name + "." + std::to_string(i);
  }
  if (fd < 0) return Status(StatusCode::io_error, "create " + path + ": " + log_internal::errno_text(errno));
  bool ok = ops_->pwrite(fd, data, n, 0) == static_cast<ssize_t>(n) && ops_->fsync(fd) == 0;
  const int err = errno;
  ops_->close(fd);
  if (!ok) return Status(StatusCode::io_error, "write " + path + ": " + log_internal::errno_text(err));
  // The copy durable (file, then its directory entry) before the bytes are zeroed.
  if (Status st = log_internal::sync_directory(*ops_, qdir); !st.ok()) return st;
  return log_internal::sync_directory(*ops_, dir_);
}

Status LogWriter::quarantine_file(const std::string& name) {
  const std::string qdir = dir_ + "/" + lf::kQuarantineDir;
  if (ops_->mkdir(qdir.c_str(), options_.dir_mode) != 0 && errno != EEXIST)
    return Status(StatusCode::io_error, "create " + qdir + ": " + log_internal::errno_text(errno));
  const std::string from = dir_ + "/" + name;
  std::string to = qdir + "/" + name;
  for (int i = 1; ::access(to.c_str(), F_OK) == 0 && i < 1000; ++i)
    to = qdir + "/" + name + "." + std::to_string(i);
  if (ops_->rename(from.c_str(), to.c_str()) != 0)
    return Status(StatusCode::io_error, "rename " + from + " to " + to + ": " + log_internal::errno_text(errno));
  // The new entry durable before the old one's removal: a crash leaves the file in one
  // place or the other (or, briefly, both), never in neither.
  if (Status st = log_internal::sync_directory(*ops_, qdir); !st.ok()) return st;
  return log_internal::sync_directory(*ops_, dir_);
}

uint64_t LogWriter::segment_index() const noexcept { return segment_ ? segment_->index() : 0; }

void LogWriter::use_segment(std::unique_ptr<MappedSegment> seg) noexcept {
  segment_ = std::move(seg);
  segment_base_ = segment_->data();
  segment_index_ = segment_->index();
  // A record without ids and with an n-byte payload takes align_up(56 + n) bytes, and fits
  // when tail_ + that <= mapped - kSealReserve; as tail_ and the bound are multiples of 8,
  // that is tail_ + n <= mapped - kSealReserve - 56.
  static_assert(lf::kSealReserve % lf::kRecordAlignment == 0);
  short_record_limit_ = segment_->mapped_size() - lf::kSealReserve - lf::kRecordHeaderSize;
}

std::optional<StreamId> LogWriter::find_stream(std::string_view name) const {
  auto it = stream_ids_.find(std::string(name));
  if (it == stream_ids_.end()) return std::nullopt;
  return it->second;
}

std::string_view LogWriter::stream_name(StreamId id) const {
  return id >= 1 && id <= stream_names_.size() ? std::string_view(stream_names_[id - 1]) : std::string_view();
}

uint64_t LogWriter::stream_version(StreamId id) const noexcept {
  return id >= 1 && id <= versions_.size() ? versions_[id - 1] : 0;
}

namespace {

// Offset of the first byte of `s` that is not part of well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, at most U+10FFFF) or is NUL; s.size() when all are fine.
size_t invalid_utf8_at(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    if (c == 0) return i;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c == 0xED) len = 3, hi = 0x9F;  // no surrogates
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c == 0xF4) len = 4, hi = 0x8F;  // at most U+10FFFF
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else return i;
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return n;
}

}  // namespace

Result<StreamId> LogWriter::stream(std::string_view name) {
  if (auto id = find_stream(name)) return *id;
  if (name.empty() || name.size() > kMaxStreamName)
    return Status(StatusCode::invalid_argument,
                  "stream name must be 1.." + std::to_string(kMaxStreamName) + " bytes, got " +
                      std::to_string(name.size()));
  if (const size_t bad = invalid_utf8_at(name); bad != name.size())
    return Status(StatusCode::invalid_argument,
                  "stream name must be UTF-8 without NUL: byte " + std::to_string(bad) + " of " +
                      std::to_string(name.size()) + " is not");
  const StreamId id = versions_.size() + 1;
  EventData e;
  e.payload = std::as_bytes(std::span(name.data(), name.size()));
  // Reuse the system-record path with the stream id in the header.
  if (failed()) return failure();
  if (closed_) return Status(StatusCode::closed, "log " + dir_ + " is closed");
  const uint64_t need = lf::align_up(log_internal::record_length(e));
  if (tail_ + need + lf::kSealReserve > segment_->mapped_size()) {
    if (Status st = roll(need); !st.ok()) return st;
  }
  log_internal::RecordFields f;
  f.type = lf::kTypeStreamDefined;
  f.position = next_position_;
  f.stream_id = id;
  last_ts_ = std::max(last_ts_, now_ns());
  f.timestamp_ns = last_ts_;
  std::byte* dst = segment_->data() + tail_;
  const uint32_t len = log_internal::encode_record(dst, segment_->index(), f, e);
  log_internal::commit_record(dst, len);
  tail_ += lf::align_up(len);
  committed_offset_.store(tail_, std::memory_order_release);  // pairs with the flusher's acquire
  if (options_.durability == Durability::sync) {
    if (Status st = sync_current(tail_); !st.ok()) return st;
  }
  stream_names_.emplace_back(name);
  versions_.push_back(0);
  stream_ids_.emplace(std::string(name), id);
  return id;
}

Status LogWriter::append_system(uint8_t type, uint32_t event_type,
                                std::span<const std::byte> payload) {
  if ((type & lf::kTypeIgnorable) == 0)
    return Status(StatusCode::invalid_argument,
                  "system record type " + std::to_string(type) + " lacks the ignorable bit");
  if (failed()) return failure();
  if (closed_) return Status(StatusCode::closed, "log " + dir_ + " is closed");
  EventData e;
  e.type = event_type;
  e.payload = payload;
  const uint64_t need = lf::align_up(log_internal::record_length(e));
  if (need + lf::kSegmentHeaderSize + lf::kSealReserve > options_.segment_size)
    return Status(StatusCode::too_large, "system record of " + std::to_string(need) +
                                             " bytes does not fit in a segment");
  if (tail_ + need + lf::kSealReserve > segment_->mapped_size()) {
    if (Status st = roll(need); !st.ok()) return st;
  }
  log_internal::RecordFields f;
  f.type = type;
  f.position = next_position_;
  last_ts_ = std::max(last_ts_, now_ns());
  f.timestamp_ns = last_ts_;
  std::byte* dst = segment_->data() + tail_;
  const uint32_t len = log_internal::encode_record(dst, segment_->index(), f, e);
  log_internal::commit_record(dst, len);
  tail_ += lf::align_up(len);
  committed_offset_.store(tail_, std::memory_order_release);  // pairs with the flusher's acquire
  if (options_.durability == Durability::sync) return sync_current(tail_);
  return Status();
}

AppendResult LogWriter::reject(AppendCode code, Status st) noexcept {
  last_error_ = std::move(st);
  return AppendResult{code, 0, 0};
}

Status LogWriter::sync_current(uint64_t end_offset) {
  Status st = segment_->sync(synced_offset_, end_offset);
  if (!st.ok()) {
    fail(st);
    return st;
  }
  synced_offset_ = end_offset;
  return st;
}

namespace {

// The record encoder, as a type: append_with<Encoder> and append_one_with<Encoder> are
// instantiated with the fused encoder (append_fused, append_one_fused) and with the reference
// one (append_portable, append_one_portable), so that the encoder inlines into the append.
// (Called out of line, it cost ~25 more instructions per append: callgrind, 340 against 315.)
// encode_short: records without ids and with payloads of at most kShortPayloadMax bytes.
struct PortableEncoder {
  static constexpr bool kFused = false;
  [[gnu::always_inline]] static uint32_t encode(std::byte* dst, uint64_t segment_index,
                                                const log_internal::RecordFields& f,
                                                const EventData& e) noexcept {
    return log_internal::encode_record_portable(dst, segment_index, f, e);
  }
  [[gnu::always_inline]] static uint32_t encode_short(std::byte* dst, uint64_t segment_index,
                                                      const log_internal::RecordFields& f,
                                                      const EventData& e) noexcept {
    return log_internal::encode_record_portable(dst, segment_index, f, e);
  }
};
#if defined(__x86_64__)
struct FusedEncoder {
  static constexpr bool kFused = true;
  SLUICE_SSE42 static uint32_t encode(std::byte* dst, uint64_t segment_index,
                                      const log_internal::RecordFields& f,
                                      const EventData& e) noexcept {
    return log_internal::fused::encode_record_fused(dst, segment_index, f, e);
  }
  SLUICE_SSE42 static uint32_t encode_short(std::byte* dst, uint64_t segment_index,
                                            const log_internal::RecordFields& f,
                                            const EventData& e) noexcept {
    return log_internal::fused::encode_short_record_fused(dst, segment_index, f, e);
  }
};
constexpr size_t kShortPayloadMax = log_internal::fused::kFusedPayloadMax;
#else
constexpr size_t kShortPayloadMax = 256;
#endif
// How far ahead of the tail the fast path prefetches the segment's lines. (The hint says
// "for writing"; without PRFCHW in the target it is a plain prefetcht0, which serves as well:
// no other cache holds the line, so it arrives exclusive and the store needs no upgrade.)
constexpr uint64_t kPrefetchAhead = 1024;

}  // namespace

#if defined(__x86_64__)
// flatten: the encoder's target attributes keep it from inlining into append_with (which has
// none); flattening inlines the whole call tree into this function, which has them (but not
// the noinline general path into the fast one).
[[gnu::flatten]] SLUICE_SSE42 AppendResult LogWriter::append_fused(
    StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept {
  return append_with<FusedEncoder>(stream, expected, events);
}
[[gnu::flatten]] SLUICE_SSE42 AppendResult LogWriter::append_one_fused(
    StreamId stream, ExpectedVersion expected, const EventData& e) noexcept {
  return append_one_with<FusedEncoder>(stream, expected, e);
}
#else
AppendResult LogWriter::append_fused(StreamId stream, ExpectedVersion expected,
                                     std::span<const EventData> events) noexcept {
  return append_with<PortableEncoder>(stream, expected, events);
}
AppendResult LogWriter::append_one_fused(StreamId stream, ExpectedVersion expected,
                                         const EventData& e) noexcept {
  return append_one_with<PortableEncoder>(stream, expected, e);
}
#endif

AppendResult LogWriter::append_portable(StreamId stream, ExpectedVersion expected,
                                        std::span<const EventData> events) noexcept {
  return append_with<PortableEncoder>(stream, expected, events);
}
AppendResult LogWriter::append_one_portable(StreamId stream, ExpectedVersion expected,
                                            const EventData& e) noexcept {
  return append_one_with<PortableEncoder>(stream, expected, e);
}

// The one-event fast path: the common append (a known stream, no ids, a payload of at most
// kShortPayloadMax bytes, room in the current segment, a writer neither failed nor closed)
// with no other test. Anything else goes to the general path, append_with(), which also
// builds the error messages.
template <class Encoder>
inline AppendResult LogWriter::append_one_with(StreamId stream, ExpectedVersion expected,
                                               const EventData& e) noexcept {
  // Ask for the lines a few records ahead now: the segment's pages are fresh, so each record
  // lands on lines that are not in any cache, and the clock read below stalls the core
  // while the stores of this record would wait for them. (Append, 64-byte payload, no
  // rolls: ~33 -> ~30.5 ns in a throwaway harness, 1 KiB ahead; 512 B to 16 KiB did the same.)
  __builtin_prefetch(segment_base_ + tail_ + kPrefetchAhead, 1);
  __builtin_prefetch(segment_base_ + tail_ + kPrefetchAhead + 64, 1);
  // The clock first: rdtsc waits here for what is in flight, and everything after it waits
  // for rdtsc, so what comes before it in the append lengthens every append.
  int64_t ts = now_ns();
  const size_t n = e.payload.size();
  const std::span<const EventData> one(&e, 1);
  const bool ids = log_internal::has_ids(e);  // a keyed command's event: the full encoder, here too
  if (stream - 1 >= versions_.size() || failed() || closed_ || n > kShortPayloadMax ||
      tail_ + n + (ids ? 3 * lf::kIdSize : 0) > short_record_limit_) [[unlikely]]
    return Encoder::kFused ? append_fused(stream, expected, one) : append_portable(stream, expected, one);
#ifndef NDEBUG
  {
    std::thread::id none{}, me = std::this_thread::get_id();
    if (!owner_.compare_exchange_strong(none, me, std::memory_order_relaxed))
      assert(none == me && "LogWriter::append called from two threads");
  }
#endif
  uint64_t& version = versions_[stream - 1];
  if (!expected.is_any() && expected.value() != version) [[unlikely]]
    return refuse_append(stream, expected, 1);
  if (ts < last_ts_) ts = last_ts_;  // timestamps never go backwards within a log
  last_ts_ = ts;
  log_internal::RecordFields f;
  f.position = next_position_;
  f.stream_id = stream;
  f.stream_version = version + 1;
  f.timestamp_ns = ts;
  const uint64_t start = tail_;
  std::byte* dst = segment_base_ + start;
  const uint32_t len = ids ? Encoder::encode(dst, segment_index_, f, e) : Encoder::encode_short(dst, segment_index_, f, e);
  log_internal::commit_record(dst, len);
  tail_ = start + lf::align_up(len);
  next_position_ = f.position + 1;
  version = f.stream_version;
  if (!publish_appended(start, 1)) [[unlikely]] return AppendResult{AppendCode::io_error, 0, 0};
  return AppendResult{AppendCode::ok, f.position, f.stream_version};
}

template <class Encoder>
inline AppendResult LogWriter::append_with(
    StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept {
#ifndef NDEBUG
  {
    // Debug-only guard: the writer has a single owning thread.
    std::thread::id none{}, me = std::this_thread::get_id();
    if (!owner_.compare_exchange_strong(none, me, std::memory_order_relaxed))
      assert(none == me && "LogWriter::append called from two threads");
  }
#endif
  if (failed() || closed_ || events.empty() || stream - 1 >= versions_.size() ||
      (!expected.is_any() && expected.value() != versions_[stream - 1])) [[unlikely]]
    return refuse_append(stream, expected, events.size());
  uint64_t& version = versions_[stream - 1];
  uint64_t need = 0;
  for (const EventData& e : events) need += lf::align_up(log_internal::record_length(e));
  if (need > options_.segment_size - lf::kSegmentHeaderSize - lf::kSealReserve)
    return refuse_too_large(stream, events.size(), need);
  if (tail_ + need + lf::kSealReserve > segment_->mapped_size()) {
    if (Status st = roll(need); !st.ok()) return reject(AppendCode::io_error, std::move(st));
  }
  int64_t ts = now_ns();
  if (ts < last_ts_) ts = last_ts_;  // timestamps never go backwards within a log
  last_ts_ = ts;

  const uint64_t first = next_position_;
  const size_t n = events.size();
  log_internal::RecordFields f;
  f.stream_id = stream;
  f.timestamp_ns = ts;
  const uint64_t batch_start = tail_;
  uint64_t off = tail_;
  for (size_t i = 0; i < n; ++i) {
    f.extra_flags = i + 1 < n ? lf::kFlagBatchContinues : 0;
    f.position = first + i;
    f.stream_version = version + i + 1;
    const uint32_t len = Encoder::encode(segment_base_ + off, segment_index_, f, events[i]);
    log_internal::commit_record(segment_base_ + off, len);
    off += lf::align_up(len);
  }
  tail_ = off;
  next_position_ = first + n;
  version += n;
  if (!publish_appended(batch_start, n)) return AppendResult{AppendCode::io_error, 0, 0};
  return AppendResult{AppendCode::ok, first, version};
}

inline bool LogWriter::publish_appended(uint64_t batch_start, uint64_t events) noexcept {
  // Release: the flusher that acquires committed_ (below) then reads this offset sees at
  // least the bytes of the records above.
  committed_offset_.store(tail_, std::memory_order_release);
  // Release: publishes the committed records to in-process observers that acquire
  // committed_position().
  committed_.store(next_position_, std::memory_order_release);
  ++stats_.appends;
  stats_.events += events;
  if (options_.durability == Durability::none) [[likely]] {
    publish_acknowledged(next_position_);
    // Last: after a call nothing of *this is read again on the way out.
    if (options_.commit_listener != nullptr) notify_commit_listener(batch_start);
    return true;
  }
  if (options_.commit_listener != nullptr) notify_commit_listener(batch_start);
  return acknowledge_durable(events);
}

bool LogWriter::acknowledge_durable(uint64_t events) noexcept {
  if (options_.durability == Durability::sync) {
    if (Status st = sync_current(tail_); !st.ok()) [[unlikely]] {
      last_error_ = std::move(st);  // the writer is failed now
      return false;
    }
    ++stats_.flushes;
    publish_acknowledged(next_position_);
    return true;
  }
  // Relaxed: a hint for the flusher; the data it flushes is published by committed_.
  const uint64_t before = pending_events_.fetch_add(events, std::memory_order_relaxed);
  if (before < options_.group_max_events && before + events >= options_.group_max_events)
    cv_.notify_one();  // one wake-up per full group
  return true;
}

void LogWriter::notify_commit_listener(uint64_t batch_start) noexcept {
  RecordView v;
  v.segment_index = segment_index_;
  for (uint64_t at = batch_start; at < tail_;) {
    v.header = reinterpret_cast<const lf::RecordHeader*>(segment_base_ + at);
    v.offset = static_cast<uint32_t>(at);
    at += lf::align_up(v.header->length);
    options_.commit_listener->on_commit(v, at >= tail_);
  }
}

AppendResult LogWriter::refuse_append(StreamId stream, ExpectedVersion expected,
                                      size_t count) noexcept {
  if (failed()) return reject(AppendCode::closed, failure());
  if (closed_) return reject(AppendCode::closed, Status(StatusCode::closed, "log " + dir_ + " is closed"));
  if (count == 0)
    return reject(AppendCode::invalid_argument, Status(StatusCode::invalid_argument, "empty batch"));
  if (stream == 0 || stream > versions_.size())
    return reject(AppendCode::invalid_argument,
                  Status(StatusCode::invalid_argument, "unknown stream id " + std::to_string(stream)));
  return reject(AppendCode::conflict,
                Status(StatusCode::conflict,
                       "stream '" + stream_names_[stream - 1] + "': expected version " +
                           std::to_string(expected.value()) + ", current version " +
                           std::to_string(versions_[stream - 1])));
}

AppendResult LogWriter::refuse_too_large(StreamId stream, size_t count, uint64_t need) noexcept {
  const uint64_t room = options_.segment_size - lf::kSegmentHeaderSize - lf::kSealReserve;
  return reject(AppendCode::too_large,
                Status(StatusCode::too_large,
                       "batch of " + std::to_string(count) + " events to stream '" +
                           stream_names_[stream - 1] + "' needs " + std::to_string(need) +
                           " bytes; a segment holds " + std::to_string(room)));
}

Status LogWriter::roll(uint64_t needed) noexcept {
  (void)needed;
  std::unique_ptr<MappedSegment> next;
  {
    std::unique_lock lock(mu_);
    // 1. Take the prepared segment first: the next segment exists, its directory entry
    //    durable, before this one is sealed (recovery takes a sealed last segment with no
    //    successor for a lost segment). The maintenance thread makes it, so that its
    //    allocations and system calls stay off this thread; if it is not ready yet, wait for
    //    it. Only when the maintenance thread could not make one does this thread try, below.
    if (prepared_.empty()) {
      ++stats_.roll_waits;
      const int64_t wait_start = steady_ns();
      // While this thread waits, the maintenance thread's slices stop yielding: no hot thread
      // needs the CPU back, and each yield would lend it to other processes instead.
      if (pacer_) pacer_->set_urgent(true);
      cv_.notify_one();
      prepared_cv_.wait(lock, [&] {
        return !prepared_.empty() || (!preparing_ && !prepare_error_.ok()) ||
               failed_.load(std::memory_order_relaxed);
      });
      if (pacer_) pacer_->set_urgent(false);
      stats_.roll_wait_ns += static_cast<uint64_t>(steady_ns() - wait_start);
    }
    if (!prepared_.empty()) {
      next = std::move(prepared_.front());
      prepared_.erase(prepared_.begin());  // moves the pointers down: no allocation
    }
    // Keep the maintenance thread from starting a segment until segment_ is the new one
    // (step 4): with none left prepared it would make segment_->index() + 1 again, the very
    // file we are about to use. (One it is making already has a higher index.)
    rolling_ = true;
  }
  auto stop_rolling = [&] {
    std::lock_guard lock(mu_);
    rolling_ = false;
  };
  const uint64_t next_index = segment_->index() + 1;
  if (next == nullptr && failed()) {
    stop_rolling();
    return failure();
  }
  if (next == nullptr || next->index() != next_index) {
    auto made = MappedSegment::create(*ops_, dir_, next_index, options_.segment_size, options_.prefault,
                                      options_.durability != Durability::none, nullptr,
                                      options_.file_mode);
    if (!made.ok()) {
      // A full disk when making the next segment must not cost acknowledgements: flush and
      // acknowledge what was appended before failing.
      if (options_.durability != Durability::none) {
        std::lock_guard lock(mu_);
        const uint64_t from = options_.durability == Durability::group ? flushed_offset_ : synced_offset_;
        if (segment_->sync(from, tail_).ok()) publish_acknowledged(next_position_);
      }
      ack_cv_.notify_all();
      stop_rolling();
      fail(made.status());
      return made.status();
    }
    next = std::make_unique<MappedSegment>(std::move(made.value()));
  }
  // 2. Seal the current segment: readers move to the next segment at this record.
  log_internal::RecordFields f;
  f.type = lf::kTypeSegmentEnd;
  f.position = next_position_;
  last_ts_ = std::max(last_ts_, now_ns());
  f.timestamp_ns = last_ts_;
  std::byte* dst = segment_->data() + tail_;
  const uint32_t len = log_internal::encode_record(dst, segment_->index(), f, EventData{});
  log_internal::commit_record(dst, len);
  const uint64_t sealed_end = tail_ + lf::align_up(len);
  // 3. Under group and sync, the sealed segment is flushed whole before the next one is
  //    activated, so acknowledged positions never depend on two segments, and the next
  //    header can say so (kSegmentPrevDurable).
  if (options_.durability != Durability::none) {
    std::lock_guard lock(mu_);
    const uint64_t from = options_.durability == Durability::group ? flushed_offset_ : synced_offset_;
    Status st = segment_->sync(from, sealed_end);
    if (!st.ok()) {
      rolling_ = false;
      failure_ = st;
      failed_.store(true, std::memory_order_release);  // see fail()
      ack_cv_.notify_all();
      return st;
    }
    publish_acknowledged(next_position_);
    ack_cv_.notify_all();
  }
  // 4. Activate the next segment and flush its header before any record goes into it (so a
  //    zero header with data after it is always damage), then make it current.
  next->activate(next_position_, now_ns(),
                 options_.durability != Durability::none ? uint32_t{lf::kSegmentPrevDurable} : 0u);
  if (Status st = next->sync(0, lf::kSegmentHeaderSize); !st.ok()) {
    stop_rolling();
    fail(st);
    return st;
  }
  {
    std::lock_guard lock(mu_);
    retired_.push_back(std::move(segment_));  // no allocation: capacity reserved in open
    use_segment(std::move(next));
    rolling_ = false;  // the maintenance thread may now prepare the segment after this one
    prepare_error_ = Status();  // a segment was made after all: let it prepare again
    tail_ = lf::kSegmentHeaderSize;
    synced_offset_ = tail_;   // the header is flushed
    flushed_offset_ = tail_;
    // Relaxed is enough: the flusher reads it under mu_, which we hold.
    committed_offset_.store(tail_, std::memory_order_relaxed);
  }
  if (options_.durability != Durability::none) publish_acknowledged(next_position_);
  ++stats_.segment_rolls;
  cv_.notify_one();  // prepare the following segment, retire the old one
  return Status();
}

void LogWriter::fail(Status st) noexcept {
  {
    std::lock_guard lock(mu_);
    if (failed_.load(std::memory_order_relaxed)) return;
    failure_ = std::move(st);
    // Release: publishes failure_ to readers that acquire failed_ (failed()); they also take
    // mu_ to read it.
    failed_.store(true, std::memory_order_release);
  }
  ack_cv_.notify_all();
}

Status LogWriter::failure() const {
  std::lock_guard lock(mu_);
  if (!failed_.load(std::memory_order_relaxed)) return Status();
  return Status(StatusCode::closed, "log " + dir_ + " stopped accepting appends after an error: " +
                                        failure_.to_string());
}

Status LogWriter::group_flush_locked() {
  // Acquire: pairs with the release of committed_ in append(); committed_offset_ (stored
  // before it) then covers at least those records.
  const uint64_t pos = committed_.load(std::memory_order_acquire);
  const uint64_t off = committed_offset_.load(std::memory_order_acquire);
  if (pos <= acknowledged_.load(std::memory_order_relaxed) && off <= flushed_offset_) return Status();
  // Relaxed: only a hint of how much waits; the flush below covers everything committed.
  pending_events_.store(0, std::memory_order_relaxed);
  Status st = segment_->sync(flushed_offset_, off);
  if (!st.ok()) return st;
  flushed_offset_ = off;
  publish_acknowledged(pos);
  // Relaxed: a statistic (single writer under mu_: load + store, no locked RMW).
  group_flushes_.store(group_flushes_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return st;
}

uint64_t LogWriter::longest_background_slice_cpu_ns() const noexcept {
  return pacer_ ? pacer_->longest_slice_cpu_ns() : 0;
}

uint64_t LogWriter::background_cpu_ns() const noexcept { return pacer_ ? pacer_->total_cpu_ns() : 0; }

void LogWriter::reset_background_slices() noexcept {
  if (pacer_) pacer_->reset_longest();
}

uint64_t LogWriter::longest_background_slice_ns() const noexcept {
  return pacer_ ? pacer_->longest_slice_ns() : 0;
}

bool LogWriter::retire_mapping(std::unique_ptr<MappedSegment>& seg) noexcept {
  if (seg == nullptr) return false;
  {
    std::lock_guard lock(mu_);
    // At most kMaxRetiredMappings entries, so that roll()'s own push_back never reallocates
    // (see kRetiredCapacity).
    if (closed_ || stopping_ || !maintenance_.joinable() || retired_.size() >= kMaxRetiredMappings) return false;
    retired_.push_back(std::move(seg));  // no allocation: capacity reserved in open
  }
  cv_.notify_one();
  return true;
}

bool LogWriter::wait_prepared(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  prepared_cv_.wait_for(lock, timeout, [&] {
    return prepared_.size() >= options_.prepared_segments || !prepare_error_.ok() ||
           failed_.load(std::memory_order_relaxed);
  });
  return prepared_.size() >= options_.prepared_segments;
}

void LogWriter::maintenance_loop() {
  name_current_thread("log-maintenance");
  std::unique_lock lock(mu_);
  const auto wait = options_.durability == Durability::group
                        ? std::min<std::chrono::microseconds>(options_.group_interval,
                                                              options_.health_check_interval)
                        : std::chrono::microseconds(options_.health_check_interval);
  auto last_health = std::chrono::steady_clock::now();
  while (!stopping_) {
    // Retire first unless the writer may be waiting for a segment: unmapping takes a few
    // milliseconds, making one ten or more, and a writer that rolls faster than segments are
    // made must not pile up mapped segments in retired_.
    const bool may_prepare = !failed_.load(std::memory_order_relaxed) &&
                             prepared_.size() < options_.prepared_segments && !preparing_ &&
                             !rolling_ && prepare_error_.ok() && segment_ != nullptr;
    if (may_prepare && (prepared_.empty() || retired_.empty())) {
      preparing_ = true;
      const uint64_t idx = (prepared_.empty() ? segment_->index() : prepared_.back()->index()) + 1;
      lock.unlock();
      auto made = MappedSegment::create(*ops_, dir_, idx, options_.segment_size, options_.prefault,
                                        options_.durability != Durability::none, pacer_.get(),
                                        options_.file_mode);
      lock.lock();
      preparing_ = false;
      if (made.ok()) prepared_.push_back(std::make_unique<MappedSegment>(std::move(made.value())));
      else prepare_error_ = made.status();  // the writer retries inline at its next roll
      prepared_cv_.notify_all();
      continue;
    }
    if (!retired_.empty()) {
      // Swap, never move: both vectors keep their reserved capacity, so that the writer's
      // push_back in roll() does not allocate.
      retiring_.swap(retired_);
      lock.unlock();
      // Unmapping is the expensive part (page-table teardown, TLB shootdowns): done here, off
      // the hot path. Under none the sealed segment's pages are left to the kernel's
      // writeback; group and sync flushed it whole at the roll.
      uint64_t handed_over = 0;  // read-only mappings come from retire_mapping()
      for (auto& seg : retiring_) {
        handed_over += seg->read_only() ? 1 : 0;
        seg->release_sliced(pacer_.get());
      }
      mappings_unmapped_.store(mappings_unmapped_.load(std::memory_order_relaxed) + handed_over,
                               std::memory_order_relaxed);
      retiring_.clear();
      lock.lock();
      continue;
    }
    if (options_.durability == Durability::group && !failed_.load(std::memory_order_relaxed)) {
      Status st = group_flush_locked();
      if (!st.ok()) {
        failure_ = std::move(st);
        failed_.store(true, std::memory_order_release);  // see fail()
      }
      ack_cv_.notify_all();
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_health >= options_.health_check_interval && segment_ != nullptr &&
        !failed_.load(std::memory_order_relaxed)) {
      last_health = now;
      struct stat st {};
      if (ops_->fstat(segment_->fd(), &st) != 0 || st.st_nlink == 0) {
        failure_ = Status(StatusCode::io_error,
                          "segment " + segment_->path() + " was removed while in use");
        failed_.store(true, std::memory_order_release);  // see fail()
        ack_cv_.notify_all();
      }
    }
    if (flush_requested_) {
      flush_requested_ = false;
      continue;
    }
    cv_.wait_for(lock, wait);
  }
}

Status LogWriter::flush() {
  if (failed()) return failure();
  if (closed_ || segment_ == nullptr) return Status();
  Status st;
  if (options_.durability == Durability::group) {
    {
      std::lock_guard lock(mu_);
      st = group_flush_locked();
    }
    if (!st.ok()) fail(st);
    ack_cv_.notify_all();
  } else {
    st = sync_current(tail_);
    if (st.ok()) publish_acknowledged(next_position_);
    ++stats_.flushes;  // group flushes count themselves (group_flushes_)
  }
  return st;
}

Status LogWriter::wait_acknowledged(uint64_t position, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  bool done = ack_cv_.wait_for(lock, timeout, [&] {
    return acknowledged_.load(std::memory_order_acquire) > position ||
           failed_.load(std::memory_order_relaxed);
  });
  if (failed_.load(std::memory_order_relaxed))
    return Status(StatusCode::closed, "log " + dir_ + " failed: " + failure_.to_string());
  if (!done)
    return Status(StatusCode::timeout, "position " + std::to_string(position) +
                                           " not acknowledged within " +
                                           std::to_string(timeout.count()) + " ms");
  return Status();
}

Status LogWriter::close() {
  if (closed_) return Status();
  closed_ = true;
  if (maintenance_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    maintenance_.join();
  }
  Status st;
  retired_.clear();
  if (segment_ != nullptr && !failed()) {
    // Every durability: a closed log is durable whole, and its watermark says so.
    // (Under group and sync, every segment before the current one was flushed at its roll.)
    st = make_all_durable(options_.durability == Durability::none ? durable_segment_ : segment_->index());
    if (st.ok()) publish_acknowledged(next_position_);
  }
  ack_cv_.notify_all();
  for (auto& seg : prepared_) {
    const std::string p = seg->path();
    seg.reset();
    ops_->unlink(p.c_str());  // an unused prepared segment; recovery would remove it anyway
  }
  prepared_.clear();
  segment_.reset();
  if (lock_fd_ >= 0) {
    ops_->close(lock_fd_);
    lock_fd_ = -1;
  }
  return st;
}

}  // namespace sluice
