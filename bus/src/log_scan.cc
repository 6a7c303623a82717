#include "internal/log_scan.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

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

}  // namespace

Result<LogScan> scan_log(FileOps& ops, const std::string& dir, const RecordCallback& on_record,
                         bool keep_maps) {
  auto listed = list_segments(dir);
  if (!listed.ok()) return listed.status();
  const std::vector<uint64_t>& indices = listed.value();
  LogScan out;
  // Trailing segments whose header was never written were prepared but not yet used.
  size_t active = indices.size();
  while (active > 0 && !read_activated(segment_path(dir, indices[active - 1]))) --active;
  for (size_t i = active; i < indices.size(); ++i) out.unactivated.push_back(indices[i]);

  for (size_t i = 0; i < active; ++i) {
    const uint64_t idx = indices[i];
    const std::string path = segment_path(dir, idx);
    if (i > 0 && idx != indices[i - 1] + 1)
      return Status(StatusCode::corruption, "segment " + segment_path(dir, indices[i - 1] + 1) +
                                                " is missing (the log jumps from segment " +
                                                std::to_string(indices[i - 1]) + " to " +
                                                std::to_string(idx) + ")");
    auto m = MappedSegment::open_read(ops, path, idx);
    if (!m.ok()) return m.status();
    MappedSegment& seg = m.value();
    if (!seg.activated()) return corrupt(path, 0, "header is zero, but later segments exist");
    if (Status st = seg.check_header(); !st.ok()) return st;
    const auto* h = seg.header();
    if (i == 0) {
      out.next_position = h->base_position;
    } else if (h->base_position != out.next_position) {
      return corrupt(path, 0, "base position " + std::to_string(h->base_position) +
                                  ", but the previous segment ends at position " +
                                  std::to_string(out.next_position));
    }
    SegmentSummary s;
    s.index = idx;
    s.path = path;
    s.base_position = h->base_position;
    s.segment_size = h->segment_size;
    s.created_ns = h->created_ns;
    struct stat st {};
    if (ops.fstat(seg.fd(), &st) == 0) s.file_size = static_cast<uint64_t>(st.st_size);

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
      // the stop point is valid now, and the scan goes on from where it left off. Only a
      // valid record after one that is still bad is corruption.
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

    if (sc.stop == ScanStop::inconsistent) return corrupt(path, sc.stop_offset, sc.reason);
    if (sc.stop != ScanStop::sealed) {
      if (!last) {
        return corrupt(path, sc.stop_offset,
                       std::string(to_string(sc.stop)) +
                           (sc.reason.empty() ? "" : " (" + sc.reason + ")") +
                           " in a segment that is followed by segment " +
                           std::to_string(indices[i + 1]));
      }
      if (after.found_valid) {
        std::string what = sc.stop == ScanStop::invalid ? sc.reason
                           : sc.stop == ScanStop::incomplete ? "incomplete batch"
                                                             : "zero-filled record";
        return corrupt(path, sc.stop_offset,
                       what + ", but a valid record follows at offset " +
                           std::to_string(after.valid_offset));
      }
      // Everything from the truncation point is dirty: the records of an incomplete batch
      // before the stop point too. Left behind, they would follow the next, shorter append as
      // "a valid record after an invalid one" and make the log look corrupt.
      uint64_t dirty_end = std::max<uint64_t>({after.dirty_end, sc.end_offset, sc.stop_offset});
      const bool short_file = s.file_size < s.segment_size;
      if (sc.stop != ScanStop::end || dirty_end > sc.end_offset || short_file) {
        out.tail_damaged = true;
        out.tail_segment = idx;
        out.tail_offset = sc.end_offset;
        out.tail_dirty_end = dirty_end;
        out.tail_reason = sc.stop == ScanStop::invalid      ? "torn record: " + sc.reason
                          : sc.stop == ScanStop::incomplete ? "incomplete batch at offset " +
                                                                  std::to_string(sc.end_offset)
                          : short_file ? "file truncated to " + std::to_string(s.file_size) +
                                             " of " + std::to_string(s.segment_size) + " bytes"
                                       : "garbage after the last record at offset " +
                                             std::to_string(sc.end_offset);
      }
    }
    out.segments.push_back(std::move(s));
    if (keep_maps) out.maps.push_back(std::move(seg));
  }
  return out;
}

}  // namespace sluice::log_internal
