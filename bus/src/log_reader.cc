#include "sluice/bus/log_reader.h"

#include <algorithm>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "internal/log_scan.h"
#include "internal/segment.h"
#include "internal/segment_scanner.h"
#include "sluice/bus/file_ops.h"

namespace sluice {

namespace lf = log_format;
using log_internal::MappedSegment;

struct LogReader::Segment {
  MappedSegment map;
  uint64_t base_position = 0;
  std::vector<uint32_t> offsets;  // offsets[p - base_position]: the event at position p
  uint32_t scan_offset = lf::kSegmentHeaderSize;  // where refresh() continues
  bool sealed = false;
};

LogReader::LogReader(std::string dir, const ReaderOptions& options)
    : dir_(std::move(dir)),
      ops_(options.file_ops ? options.file_ops : &FileOps::system()),
      options_(options) {}

LogReader::~LogReader() = default;

Result<std::unique_ptr<LogReader>> LogReader::open(const std::string& dir,
                                                   const ReaderOptions& options) {
  std::unique_ptr<LogReader> r(new LogReader(dir, options));
  if (Status st = r->open_impl(); !st.ok()) return st;
  return r;
}

Status LogReader::index_error(const RecordView& v, const std::string& what) const {
  return Status(StatusCode::corruption, "segment " + log_internal::segment_path(dir_, v.segment_index) +
                                            " offset " + std::to_string(v.offset) + ": " + what);
}

namespace {

bool valid_utf8(std::span<const std::byte> b) {
  for (size_t i = 0; i < b.size();) {
    const auto c = static_cast<unsigned char>(b[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) n = 1, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) n = 2, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0) n = 3, cp = c & 0x07;
    else return false;
    if (i + n >= b.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(b[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates, beyond U+10FFFF.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return false;
    i += n + 1;
  }
  return true;
}

// "segment PATH offset N: what" -> (PATH, N); false if the message has no such prefix.
bool parse_location(const std::string& m, std::string* path, uint64_t* offset) {
  const size_t a = m.find("segment ");
  const size_t b = m.find(" offset ", a == std::string::npos ? 0 : a);
  if (a == std::string::npos || b == std::string::npos) return false;
  *path = m.substr(a + 8, b - a - 8);
  *offset = std::strtoull(m.c_str() + b + 8, nullptr, 10);
  return true;
}

}  // namespace

void LogReader::report_damage(const Status& st) {
  if (options_.reporter == nullptr) return;
  LogDamage d;
  d.corruption = true;
  d.reason = st.message();
  if (!parse_location(st.message(), &d.path, &d.offset)) {
    const size_t a = st.message().find("segment ");
    if (a != std::string::npos) d.path = st.message().substr(a + 8, st.message().find(' ', a + 8) - a - 8);
  }
  const size_t slash = d.path.rfind('/');
  if (slash != std::string::npos) d.segment = std::strtoull(d.path.c_str() + slash + 1, nullptr, 10);
  options_.reporter->on_damage(d);
}

void LogReader::check_invariants(const RecordView& v) {
  if (!index_status_.ok()) return;
  if (v.timestamp_ns() < invariant_ts_) {
    index_status_ = index_error(v, "timestamp " + std::to_string(v.timestamp_ns()) +
                                       " is before the previous record's " + std::to_string(invariant_ts_));
    return;
  }
  invariant_ts_ = v.timestamp_ns();
  const auto* bytes = reinterpret_cast<const std::byte*>(v.header);
  for (uint32_t i = v.length(); i < lf::align_up(v.length()); ++i)
    if (bytes[i] != std::byte{0}) {
      index_status_ = index_error(v, "padding byte " + std::to_string(i) + " is not zero");
      return;
    }
  if (v.is_event()) {
    for (const RecordView& p : pending_positioned_)
      if (p.position() != v.position()) {
        index_status_ = index_error(p, "system record with position " + std::to_string(p.position()) +
                                           ", but the next event is at " + std::to_string(v.position()));
        return;
      }
    pending_positioned_.clear();
    return;
  }
  if (v.type() == lf::kTypeStreamDefined) {
    const auto name = v.payload();
    if (name.empty() || name.size() > 1024 || !valid_utf8(name)) {
      index_status_ = index_error(v, "stream name of " + std::to_string(name.size()) +
                                         " bytes is not 1..1024 bytes of UTF-8");
      return;
    }
  }
  pending_positioned_.push_back(v);
}

void LogReader::index_record(Segment& seg, const RecordView& v) {
  if (options_.check_invariants) check_invariants(v);
  if (!index_status_.ok()) return;
  if (v.is_event()) {
    const StreamId id = v.stream_id();
    if (id > streams_.size()) {
      index_status_ = index_error(v, "event for undefined stream id " + std::to_string(id));
      return;
    }
    Stream& s = streams_[id - 1];
    if (v.stream_version() != s.positions.size() + 1) {
      index_status_ = index_error(v, "stream '" + s.name + "' version " +
                                         std::to_string(v.stream_version()) + " follows version " +
                                         std::to_string(s.positions.size()));
      return;
    }
    s.positions.push_back(v.position());
    seg.offsets.push_back(v.offset);
    end_position_ = v.position() + 1;
    last_timestamp_ns_ = std::max(last_timestamp_ns_, v.timestamp_ns());
  } else if (v.type() == lf::kTypeStreamDefined) {
    auto p = v.payload();
    std::string name(reinterpret_cast<const char*>(p.data()), p.size());
    if (v.stream_id() != streams_.size() + 1 || stream_ids_.count(name)) {
      index_status_ = index_error(v, "stream record '" + name + "' with id " +
                                         std::to_string(v.stream_id()) + " out of sequence");
      return;
    }
    stream_ids_.emplace(name, v.stream_id());
    streams_.push_back(Stream{std::move(name), {}});
  } else {
    system_records_.push_back(v);
  }
}

Status LogReader::open_impl() {
  Segment* current = nullptr;
  std::vector<std::unique_ptr<Segment>> segs;
  // The callback creates entries lazily, so track them by segment index instead.
  std::vector<uint64_t> seg_of_entry;
  auto cb = [&](const RecordView& v) {
    if (seg_of_entry.empty() || seg_of_entry.back() != v.segment_index) {
      segs.push_back(std::make_unique<Segment>());
      seg_of_entry.push_back(v.segment_index);
      current = segs.back().get();
    }
    index_record(*current, v);
  };
  auto scan = log_internal::scan_log(*ops_, dir_, cb, /*keep_maps=*/true);
  if (options_.every_region && options_.reporter != nullptr)
    log_internal::report_every_region(dir_, *options_.reporter);
  if (!scan.ok()) {
    if (scan.status().code() == StatusCode::corruption && !options_.every_region) report_damage(scan.status());
    return scan.status();
  }
  if (!index_status_.ok()) {
    if (!options_.every_region) report_damage(index_status_);
    return index_status_;
  }
  log_internal::LogScan& s = scan.value();
  if (options_.check_invariants) {
    for (const RecordView& p : pending_positioned_)
      if (p.position() != s.next_position)
        return index_error(p, "system record with position " + std::to_string(p.position()) +
                                  ", but the log's next position is " + std::to_string(s.next_position));
  }
  if (s.tail_damaged && options_.reporter != nullptr && !options_.every_region) {
    LogDamage d;
    d.segment = s.tail_segment;
    d.path = log_internal::segment_path(dir_, s.tail_segment);
    d.offset = s.tail_offset;
    d.end_offset = s.tail_dirty_end;
    d.reason = s.tail_reason;
    options_.reporter->on_damage(d);
  }
  if (s.segments.empty()) {
    return Status(StatusCode::not_found, dir_ + " is not a Sluice log: it holds no active segment" +
                                             std::string(s.unactivated.empty() ? "" : " (only prepared ones)"));
  }
  // Attach maps: every activated segment gets an entry, in order.
  size_t e = 0;
  for (size_t i = 0; i < s.segments.size(); ++i) {
    const auto& sum = s.segments[i];
    std::unique_ptr<Segment> seg;
    if (e < seg_of_entry.size() && seg_of_entry[e] == sum.index) {
      seg = std::move(segs[e++]);
    } else {
      seg = std::make_unique<Segment>();
    }
    seg->map = std::move(s.maps[i]);
    seg->base_position = sum.base_position;
    seg->scan_offset = sum.end_offset;
    seg->sealed = sum.sealed;
    segments_.push_back(std::move(seg));
  }
  begin_position_ = segments_.front()->base_position;
  end_position_ = s.next_position;
  open_info_.tail_damaged = s.tail_damaged;
  open_info_.tail_segment = s.tail_segment;
  open_info_.tail_offset = s.tail_offset;
  open_info_.tail_reason = s.tail_reason;
  open_info_.prepared_segments = s.unactivated.size();
  return Status();
}

Result<uint64_t> LogReader::refresh() {
  if (segments_.empty()) return uint64_t{0};
  const uint64_t before = end_position_;
  for (;;) {
    Segment& seg = *segments_.back();
    if (seg.sealed) {
      const uint64_t idx = seg.map.index() + 1;
      const std::string path = log_internal::segment_path(dir_, idx);
      // Not created yet, or still being created by the writer (create() opens it empty, then
      // preallocates it): wait for a later refresh.
      struct stat file {};
      if (::stat(path.c_str(), &file) != 0 || static_cast<uint64_t>(file.st_size) < lf::kSegmentHeaderSize)
        break;
      auto m = MappedSegment::open_read(*ops_, path, idx);
      if (!m.ok()) return m.status();
      if (!m.value().activated()) break;  // prepared, not yet in use
      if (Status st = m.value().check_header(); !st.ok()) return st;
      if (m.value().header()->base_position != end_position_)
        return Status(StatusCode::corruption,
                      "segment " + path + " offset 0: base position " +
                          std::to_string(m.value().header()->base_position) + ", expected " +
                          std::to_string(end_position_));
      auto next = std::make_unique<Segment>();
      next->map = std::move(m.value());
      next->base_position = end_position_;
      segments_.push_back(std::move(next));
      continue;
    }
    log_internal::SegmentScan sc = log_internal::scan_segment(
        seg.map.data(), seg.map.mapped_size(), seg.map.index(), seg.scan_offset, end_position_,
        [&](const RecordView& v) { index_record(seg, v); });
    if (!index_status_.ok()) return index_status_;
    seg.scan_offset = sc.end_offset;
    if (sc.stop == log_internal::ScanStop::invalid || sc.stop == log_internal::ScanStop::inconsistent)
      return Status(StatusCode::corruption, "segment " + seg.map.path() + " offset " +
                                                std::to_string(sc.stop_offset) + ": " + sc.reason);
    if (sc.stop != log_internal::ScanStop::sealed) break;
    seg.sealed = true;
  }
  return end_position_ - before;
}

bool LogReader::read(uint64_t position, RecordView* out) const noexcept {
  if (position < begin_position_ || position >= end_position_) return false;
  // Segments are contiguous in position: find the last one whose base <= position.
  auto it = std::upper_bound(segments_.begin(), segments_.end(), position,
                             [](uint64_t p, const std::unique_ptr<Segment>& s) { return p < s->base_position; });
  const Segment& seg = **(it - 1);
  const uint32_t off = seg.offsets[position - seg.base_position];
  out->header = reinterpret_cast<const lf::RecordHeader*>(seg.map.data() + off);
  out->segment_index = seg.map.index();
  out->offset = off;
  return true;
}

std::optional<StreamId> LogReader::find_stream(std::string_view name) const {
  auto it = stream_ids_.find(std::string(name));
  if (it == stream_ids_.end()) return std::nullopt;
  return it->second;
}

std::string_view LogReader::stream_name(StreamId id) const noexcept {
  return id >= 1 && id <= streams_.size() ? std::string_view(streams_[id - 1].name) : std::string_view();
}

std::span<const uint64_t> LogReader::stream_positions(StreamId id) const noexcept {
  if (id < 1 || id > streams_.size()) return {};
  return streams_[id - 1].positions;
}

uint64_t LogReader::position_at_time(int64_t timestamp_ns) const noexcept {
  uint64_t lo = begin_position_, hi = end_position_;
  while (lo < hi) {  // timestamps are non-decreasing in position
    const uint64_t mid = lo + (hi - lo) / 2;
    RecordView v;
    read(mid, &v);
    if (v.timestamp_ns() < timestamp_ns) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

LogInfo LogReader::info() const {
  LogInfo info = open_info_;
  info.begin_position = begin_position_;
  info.end_position = end_position_;
  info.streams = streams_.size();
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& s = *segments_[i];
    SegmentInfo si;
    si.index = s.map.index();
    si.path = s.map.path();
    si.base_position = s.base_position;
    si.end_position = i + 1 < segments_.size() ? segments_[i + 1]->base_position : end_position_;
    si.used_bytes = s.scan_offset;
    si.segment_size = s.map.header()->segment_size;
    si.sealed = s.sealed;
    info.used_bytes += si.used_bytes;
    info.segments.push_back(std::move(si));
  }
  RecordView v;
  if (read(begin_position_, &v)) info.first_timestamp_ns = v.timestamp_ns();
  info.last_timestamp_ns = last_timestamp_ns_;
  std::ifstream meta(dir_ + "/" + lf::kMetaFileName);
  for (std::string line; std::getline(meta, line);)
    if (line.rfind("durability=", 0) == 0) info.last_writer_durability = line.substr(11);
  return info;
}

}  // namespace sluice
