#include "internal/log_scan.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "internal/segment_scanner.h"

namespace sluice::log_internal {

namespace lf = log_format;

namespace {

// Reads the magic without mapping: tells activated segments from prepared ones.
bool read_activated(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // let open_read report the error
  uint64_t magic = 0;
  ssize_t n = ::pread(fd, &magic, sizeof magic, 0);
  ::close(fd);
  return n == static_cast<ssize_t>(sizeof magic) && magic != 0;
}

Status corrupt(const std::string& path, uint64_t offset, const std::string& what) {
  return Status(StatusCode::corruption,
                "segment " + path + " offset " + std::to_string(offset) + ": " + what);
}

std::string watermark_text(const Watermark& w) {
  return "the durable watermark in " + std::string(lf::kMetaFileName) + " (segment " +
         std::to_string(w.segment) + " offset " + std::to_string(w.offset) + ", position " +
         std::to_string(w.position) + ")";
}

// Bytes of segment idx known durable: its whole length below the watermark's segment.
uint64_t durable_end(const Watermark& w, uint64_t idx) {
  if (!w.known || idx > w.segment) return 0;
  return idx < w.segment ? UINT64_MAX : w.offset;
}

}  // namespace

Watermark read_watermark(const std::string& dir) {
  Watermark w;
  std::ifstream meta(dir + "/" + lf::kMetaFileName);
  bool seg = false, off = false, pos = false;
  for (std::string line; std::getline(meta, line);) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq);
    uint64_t v = 0;
    try {
      v = std::stoull(line.substr(eq + 1));
    } catch (...) {
      continue;
    }
    if (key == lf::kMetaDurableSegment) w.segment = v, seg = true;
    else if (key == lf::kMetaDurableOffset) w.offset = v, off = true;
    else if (key == lf::kMetaDurablePosition) w.position = v, pos = true;
  }
  w.known = seg && off && pos;
  return w;
}

Result<LogScan> scan_log(FileOps& ops, const std::string& dir, const RecordCallback& on_record,
                         bool keep_maps, bool cut_at_corruption) {
  LogScan out;
  const bool cut = cut_at_corruption;
  // The watermark before the listing: a live writer only moves it forward, over segments that
  // exist by then, so a listing taken after it holds every segment it names.
  out.watermark = read_watermark(dir);
  auto listed = list_segments(dir);
  if (!listed.ok()) return listed.status();
  const std::vector<uint64_t>& indices = listed.value();
  const Watermark& wm = out.watermark;
  // Trailing segments whose header was never written were prepared but not yet used.
  size_t active = indices.size();
  while (active > 0 && !read_activated(segment_path(dir, indices[active - 1]))) --active;
  // A header torn while being activated: the last segment, its header bad, nothing after it,
  // and the watermark not past its header. A power cut during the header's flush does that;
  // the writer writes no record into a segment before its header is durable.
  if (active > 0) {
    const uint64_t idx = indices[active - 1];
    const std::string path = segment_path(dir, idx);
    auto m = MappedSegment::open_read(ops, path, idx);
    if (m.ok() && !m.value().check_header().ok() && first_nonzero_byte(path, lf::kSegmentHeaderSize) == -1 &&
        durable_end(wm, idx) <= lf::kSegmentHeaderSize) {
      out.torn_headers.push_back(idx);
      --active;
    }
  }
  for (size_t i = active; i < indices.size(); ++i) {
    const std::string path = segment_path(dir, indices[i]);
    const bool torn = !out.torn_headers.empty() && out.torn_headers.front() == indices[i];
    const int64_t junk = first_nonzero_byte(path, torn ? lf::kSegmentHeaderSize : 0);
    // Activated since its magic was read: a live writer rolled (a reader races it; a writer
    // holds the lock). Not part of this scan; a reader's refresh() picks it up.
    if (junk >= 0 && !torn && read_activated(path)) break;
    if (junk >= 0) {
      Status st = corrupt(path, static_cast<uint64_t>(junk),
                          "the segment's header is zero (prepared, never activated), but it holds "
                          "data; no writer writes a record into a segment before its header is durable");
      if (!cut) return st;
      // point_in_time: this one and every later one are moved aside.
      out.cut_reason = st.message();
      for (size_t j = i; j < indices.size(); ++j) out.beyond.push_back(indices[j]);
      break;
    }
    if (junk == -2) return Status(StatusCode::io_error, "cannot read " + path);
    if (!cut && durable_end(wm, indices[i]) > lf::kSegmentHeaderSize)
      return corrupt(path, 0, "the header is zero, but " + watermark_text(wm) +
                                  " says this segment holds records");
    out.unactivated.push_back(indices[i]);
  }

  // point_in_time: damage to segment i as a whole (a bad header, a gap before it) ends the
  // log before it; it and everything after are moved aside.
  auto cut_before = [&](size_t i, Status st) -> Result<LogScan> {
    if (!cut || st.code() != StatusCode::corruption) return st;
    out.cut_reason = st.message();
    std::vector<uint64_t> moved(indices.begin() + static_cast<std::ptrdiff_t>(i),
                                indices.begin() + static_cast<std::ptrdiff_t>(active));
    moved.insert(moved.end(), out.unactivated.begin(), out.unactivated.end());
    moved.insert(moved.end(), out.beyond.begin(), out.beyond.end());
    out.beyond = std::move(moved);
    out.unactivated.clear();
    out.torn_headers.clear();
    return std::move(out);
  };
  for (size_t i = 0; i < active; ++i) {
    const uint64_t idx = indices[i];
    const std::string path = segment_path(dir, idx);
    if (i > 0 && idx != indices[i - 1] + 1)
      return cut_before(i, Status(StatusCode::corruption, "segment " + segment_path(dir, indices[i - 1] + 1) +
                                                              " is missing (the log jumps from segment " +
                                                              std::to_string(indices[i - 1]) + " to " +
                                                              std::to_string(idx) + ")"));
    auto m = MappedSegment::open_read(ops, path, idx);
    if (!m.ok()) return cut_before(i, m.status());
    MappedSegment& seg = m.value();
    if (!seg.activated()) return cut_before(i, corrupt(path, 0, "header is zero, but later segments exist"));
    if (Status st = seg.check_header(); !st.ok()) return cut_before(i, st);
    const auto* h = seg.header();
    if (i == 0) {
      out.next_position = h->base_position;
    } else if (h->base_position != out.next_position) {
      return cut_before(i, corrupt(path, 0, "base position " + std::to_string(h->base_position) +
                                                ", but the previous segment ends at position " +
                                                std::to_string(out.next_position)));
    }
    SegmentSummary s;
    s.index = idx;
    s.path = path;
    s.base_position = h->base_position;
    s.segment_size = h->segment_size;
    s.created_ns = h->created_ns;
    struct stat st {};
    if (ops.fstat(seg.fd(), &st) == 0) s.file_size = static_cast<uint64_t>(st.st_size);
    if (s.file_size > s.segment_size)
      return cut_before(i, corrupt(path, s.segment_size,
                                   "the file is " + std::to_string(s.file_size) +
                                       " bytes, longer than the segment size in its header"));

    const bool last = (i + 1 == active);
    auto report = [&](const RecordView& v) {
      if (on_record) on_record(v);
    };
    SegmentScan sc = scan_segment(seg.data(), seg.mapped_size(), idx, lf::kSegmentHeaderSize,
                                  out.next_position, report);
    AfterScan after;
    while (last && sc.stop != ScanStop::sealed && sc.stop != ScanStop::inconsistent) {
      after = find_valid_after(seg.data(), seg.mapped_size(), idx, sc.stop_offset);
      if (!after.found_valid) break;
      // A live writer may have committed records since the scan stopped: then the record at
      // the stop point is valid now, and the scan goes on from where it left off.
      uint32_t len = 0;
      if (decode_record(seg.data() + sc.stop_offset, seg.mapped_size() - sc.stop_offset, idx, &len) !=
          Decode::ok)
        break;
      const int64_t last_ts = sc.last_timestamp_ns;
      sc = scan_segment(seg.data(), seg.mapped_size(), idx, sc.end_offset, sc.next_position, report);
      sc.last_timestamp_ns = std::max(sc.last_timestamp_ns, last_ts);
    }
    s.end_position = sc.next_position;
    s.end_offset = sc.end_offset;
    s.last_timestamp_ns = sc.last_timestamp_ns;
    s.sealed = sc.stop == ScanStop::sealed;
    out.next_position = sc.next_position;

    // Corruption inside this segment; under point_in_time the log is cut there instead.
    Status damage;
    if (sc.stop == ScanStop::inconsistent) damage = corrupt(path, sc.stop_offset, sc.reason);
    if (sc.stop == ScanStop::sealed) {
      // A writer makes (and flushes the directory entry of) the next segment before it
      // seals one: a sealed last segment means the next one was lost.
      // (Checked on disk, not in the listing: a live writer may have made it since.)
      if (!cut && last && out.unactivated.empty() && ::access(segment_path(dir, idx + 1).c_str(), F_OK) != 0)
        return Status(StatusCode::corruption,
                      "segment " + segment_path(dir, idx + 1) + " is missing: segment " + path +
                          " is sealed, and the writer makes the next segment before sealing one");
      out.segments.push_back(std::move(s));
      if (keep_maps) out.maps.push_back(std::move(seg));
      continue;
    }
    // Damage (or the end of what was written) at sc.end_offset. Below the watermark it is
    // corruption: those bytes were flushed and a power cut cannot have changed them.
    const std::string what = sc.stop == ScanStop::invalid      ? sc.reason
                             : sc.stop == ScanStop::incomplete ? "incomplete batch"
                                                               : "zero-filled record";
    if (damage.ok() && sc.end_offset < durable_end(wm, idx))
      damage = corrupt(path, sc.stop == ScanStop::end ? sc.end_offset : sc.stop_offset,
                       what + " before " + watermark_text(wm));
    if (!last && damage.ok()) {
      // Not sealed, and later segments exist. Under group and sync the next segment's header
      // says this one was flushed whole first: corruption. Under none nothing was flushed:
      // a power cut may have lost any of it, and the log's consistent prefix ends here.
      const bool next_says_durable = [&] {
        auto n = MappedSegment::open_read(ops, segment_path(dir, indices[i + 1]), indices[i + 1]);
        return n.ok() && n.value().activated() && n.value().check_header().ok() &&
               (n.value().header()->flags & lf::kSegmentPrevDurable) != 0;
      }();
      if (next_says_durable)
        damage = corrupt(path, sc.stop_offset,
                         std::string(to_string(sc.stop)) +
                             (sc.reason.empty() ? "" : " (" + sc.reason + ")") +
                             " in a segment that is followed by segment " +
                             std::to_string(indices[i + 1]) + ", whose header says it was flushed whole");
    }
    if (!damage.ok()) {
      if (!cut) return damage;
      out.cut_reason = damage.message();
    }
    if (!last) {
      for (size_t j = i + 1; j < active; ++j) out.beyond.push_back(indices[j]);
      for (uint64_t u : out.unactivated) out.beyond.push_back(u);
      out.unactivated.clear();
      out.torn_headers.clear();
      after = find_valid_after(seg.data(), seg.mapped_size(), idx, sc.stop_offset);
    }
    // Everything from the truncation point is dirty: the records of an incomplete batch
    // before the stop point too. Left behind, they would follow the next, shorter append.
    uint64_t dirty_end = std::max<uint64_t>({after.dirty_end, sc.end_offset, sc.stop_offset});
    if (sc.stop == ScanStop::inconsistent) {
      after = find_valid_after(seg.data(), seg.mapped_size(), idx, sc.stop_offset);
      dirty_end = std::max<uint64_t>({after.dirty_end, sc.end_offset, sc.stop_offset + 8});
    }
    const bool short_file = s.file_size < s.segment_size;
    if (sc.stop != ScanStop::end || dirty_end > sc.end_offset || short_file || !out.beyond.empty()) {
      out.tail_damaged = true;
      out.tail_segment = idx;
      out.tail_offset = sc.end_offset;
      out.tail_dirty_end = dirty_end;
      out.tail_reason = sc.stop == ScanStop::invalid      ? "torn record: " + sc.reason
                        : sc.stop == ScanStop::incomplete ? "incomplete batch at offset " +
                                                                std::to_string(sc.end_offset)
                        : short_file ? "file truncated to " + std::to_string(s.file_size) +
                                           " of " + std::to_string(s.segment_size) + " bytes"
                        : dirty_end > sc.end_offset ? "garbage after the last record at offset " +
                                                          std::to_string(sc.end_offset)
                                                    : "unsealed segment at offset " +
                                                          std::to_string(sc.end_offset);
      if (!out.cut_reason.empty())
        out.tail_reason = "corruption, cut (point_in_time): " + out.cut_reason;
      else if (after.found_valid)
        out.tail_reason += " (a record after it at offset " + std::to_string(after.valid_offset) +
                           " decodes, but lies after the durable watermark: never acknowledged)";
    }
    out.segments.push_back(std::move(s));
    if (keep_maps) out.maps.push_back(std::move(seg));
    if (!last) break;
  }
  // The log must reach the watermark: a missing last segment, or a last segment cut short.
  if (wm.known && !cut) {
    const uint64_t last_idx = out.segments.empty() ? 0 : out.segments.back().index;
    if (out.segments.empty() ? wm.offset > lf::kSegmentHeaderSize || wm.segment > 0 : wm.segment > last_idx)
      return Status(StatusCode::corruption,
                    "segment " + segment_path(dir, wm.segment) + " is missing: the log ends at segment " +
                        std::to_string(last_idx) + ", but " + watermark_text(wm) + " names it");
    if (out.next_position < wm.position)
      return Status(StatusCode::corruption,
                    "the log ends at position " + std::to_string(out.next_position) + ", before " +
                        watermark_text(wm));
  }
  return out;
}

void report_every_region(const std::string& dir, Reporter& reporter) {
  auto listed = list_segments(dir);
  if (!listed.ok()) return;
  const std::vector<uint64_t>& indices = listed.value();
  for (size_t i = 0; i < indices.size(); ++i) {
    const uint64_t idx = indices[i];
    const bool last = i + 1 == indices.size();
    LogDamage d;
    d.segment = idx;
    d.path = segment_path(dir, idx);
    auto m = MappedSegment::open_read(FileOps::system(), d.path, idx);
    if (!m.ok()) {
      d.corruption = true;
      d.reason = m.status().message();
      reporter.on_damage(d);
      continue;
    }
    const MappedSegment& seg = m.value();
    if (!seg.activated()) {
      const int64_t junk = first_nonzero_byte(d.path, 0);
      if (junk >= 0) {
        d.corruption = true;
        d.offset = static_cast<uint64_t>(junk);
        d.reason = "data in a prepared segment (its header is zero)";
        reporter.on_damage(d);
      }
      continue;
    }
    if (Status st = seg.check_header(); !st.ok()) {
      d.corruption = true;
      d.reason = st.message();
      reporter.on_damage(d);
      continue;
    }
    uint64_t off = lf::kSegmentHeaderSize;
    uint64_t pos = seg.header()->base_position;
    for (;;) {
      SegmentScan sc = scan_segment(seg.data(), seg.mapped_size(), idx, static_cast<uint32_t>(off), pos,
                                    [](const RecordView&) {});
      if (sc.stop == ScanStop::sealed) break;
      const AfterScan after = find_valid_after(seg.data(), seg.mapped_size(), idx, sc.stop_offset);
      if (sc.stop == ScanStop::end && after.dirty_end <= sc.stop_offset) {
        if (!last) {
          d.corruption = true;
          d.offset = sc.stop_offset;
          d.reason = "segment ends without its seal, and segment " + std::to_string(indices[i + 1]) + " follows";
          reporter.on_damage(d);
        }
        break;
      }
      d.offset = sc.stop == ScanStop::incomplete ? sc.end_offset : sc.stop_offset;
      d.reason = sc.stop == ScanStop::end ? "garbage after a zero length"
                 : sc.reason.empty()      ? std::string(to_string(sc.stop))
                                          : sc.reason;
      d.corruption = after.found_valid || !last || sc.stop == ScanStop::inconsistent;
      d.end_offset = after.found_valid ? after.valid_offset : std::max<uint64_t>(after.dirty_end, sc.stop_offset);
      reporter.on_damage(d);
      if (!after.found_valid) break;
      off = after.valid_offset;
      pos = reinterpret_cast<const lf::RecordHeader*>(seg.data() + off)->position;
    }
  }
}

}  // namespace sluice::log_internal
