// libFuzzer target: arbitrary bytes as a log segment, fed to the record decoder
// (decode_record), the segment scanner (scan_segment, find_valid_after) and, for some inputs,
// the whole-directory scan (scan_log) and LogReader::open over a segment file holding them.
//
// Input: one mode byte, then the segment bytes (records from offset 0).
//   mode & 0x07  segment index (the CRC seed)
//   mode & 0x80  fix up the CRCs of the records the bytes chain through, so that the fuzzer
//                reaches what lies behind a valid checksum (positions, batches, types)
//   mode & 0x40  also write the bytes after a valid segment header into a file and run
//                scan_log and LogReader::open over its directory
// Besides "no crash, no sanitizer report", it checks what the scanner promises: every visible
// record decodes, lies inside the bytes, events have consecutive positions, and a valid record
// found after the stop point lies after it.
//
// Seed corpus: SLUICE_FUZZ_SEED_DIR=DIR ./bus_segment_scanner_fuzz -runs=0 writes a few
// well-formed segments into DIR.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "internal/log_scan.h"
#include "internal/record_codec.h"
#include "internal/segment.h"
#include "internal/segment_scanner.h"
#include "sluice/bus/crc32c.h"
#include "sluice/bus/file_ops.h"
#include "sluice/bus/log_reader.h"

namespace {

namespace lf = sluice::log_format;
using namespace sluice::log_internal;

#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

// Recomputes the CRC of every record the bytes chain through from offset 0.
void fix_crcs(std::byte* base, size_t size, uint64_t index) {
  for (uint64_t off = 0; off + lf::kRecordHeaderSize <= size;) {
    auto* h = reinterpret_cast<lf::RecordHeader*>(base + off);
    const uint32_t len = h->length;
    if (len < lf::kRecordHeaderSize || len > size - off) return;
    h->crc = record_crc(index, base + off, len);
    off += lf::align_up(len);
  }
}

// Touches every byte of a view's payload, so that a view past the buffer is caught by ASan.
uint32_t touch(const sluice::RecordView& v) {
  uint32_t sum = 0;
  for (std::byte b : v.payload()) sum += static_cast<uint32_t>(b);
  return sum;
}

void check_decoder(const std::byte* base, size_t size, uint64_t index) {
  for (uint64_t off = 0; off < size; off += lf::kRecordAlignment) {
    uint32_t len = 0;
    if (decode_record(base + off, size - off, index, &len) == Decode::ok) {
      FUZZ_CHECK(len >= lf::kRecordHeaderSize && len <= size - off);
      const auto* h = reinterpret_cast<const lf::RecordHeader*>(base + off);
      FUZZ_CHECK(h->header_length >= lf::kRecordHeaderSize && h->header_length <= len);
      FUZZ_CHECK(h->type != lf::kTypeZero);
    }
  }
}

void check_scanner(const std::byte* base, size_t size, uint64_t index, uint64_t first_position) {
  uint64_t expect = first_position;
  uint64_t last_end = 0;
  volatile uint32_t sink = 0;
  SegmentScan sc = scan_segment(base, size, index, 0, first_position, [&](const sluice::RecordView& v) {
    FUZZ_CHECK(v.offset >= last_end);
    uint32_t len = 0;
    FUZZ_CHECK(decode_record(base + v.offset, size - v.offset, index, &len) == Decode::ok);
    FUZZ_CHECK(v.offset + len <= size);
    if (v.is_event()) {
      FUZZ_CHECK(v.position() == expect);
      FUZZ_CHECK(v.stream_id() != 0);
      ++expect;
    }
    sink = sink + touch(v);
    last_end = v.offset + lf::align_up(len);
  });
  FUZZ_CHECK(sc.next_position == expect);
  FUZZ_CHECK(sc.end_offset == last_end);
  FUZZ_CHECK(sc.end_offset <= sc.stop_offset);
  FUZZ_CHECK(sc.stop_offset <= lf::align_up(size));
  if (sc.stop == ScanStop::sealed || sc.stop == ScanStop::inconsistent) return;
  AfterScan a = find_valid_after(base, size, index, sc.stop_offset);
  if (a.found_valid) {
    FUZZ_CHECK(a.valid_offset > sc.stop_offset && a.valid_offset % lf::kRecordAlignment == 0);
    uint32_t len = 0;
    FUZZ_CHECK(decode_record(base + a.valid_offset, size - a.valid_offset, index, &len) == Decode::ok);
  }
  FUZZ_CHECK(a.dirty_end <= size);
}

// A directory for one segment file: a valid header, then the fuzzer's bytes. It is made and
// removed for each input (libFuzzer ends with _Exit: no atexit clean-up).
const std::string& scratch_dir() {
  static const std::string dir = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
                                 std::string("/sluice_fuzz_") + std::to_string(::getpid());
  return dir;
}

void write_segment_file(const std::string& path, const std::byte* body, size_t size) {
  lf::SegmentHeader h{};
  h.magic = lf::kSegmentMagic;
  h.format_version = lf::kFormatVersion;
  h.header_size = lf::kSegmentHeaderSize;
  h.segment_index = 0;
  h.base_position = 0;
  h.segment_size = lf::kMinSegmentSize;
  h.header_crc = sluice::crc32c::mask(sluice::crc32c::value(reinterpret_cast<const std::byte*>(&h) + 8, 52));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(::write(fd, &h, sizeof h) == static_cast<ssize_t>(sizeof h));
  const size_t n = std::min<size_t>(size, lf::kMinSegmentSize - sizeof h);
  if (n > 0) FUZZ_CHECK(::write(fd, body, n) == static_cast<ssize_t>(n));
  ::close(fd);
}

void check_log_scan(const std::byte* body, size_t size) {
  const std::string& dir = scratch_dir();
  ::mkdir(dir.c_str(), 0755);
  write_segment_file(segment_path(dir, 0), body, size);
  struct Cleanup {
    const std::string& dir;
    ~Cleanup() {
      ::unlink(segment_path(dir, 0).c_str());
      ::rmdir(dir.c_str());
    }
  } cleanup{dir};
  volatile uint32_t sink = 0;
  uint64_t events = 0;
  auto scan = scan_log(sluice::FileOps::system(), dir, [&](const sluice::RecordView& v) {
    sink = sink + touch(v);
    if (v.is_event()) ++events;
  }, /*keep_maps=*/false);
  if (scan.ok()) {
    FUZZ_CHECK(scan.value().next_position == events);
    FUZZ_CHECK(scan.value().segments.size() == 1);
  } else {
    // Whatever is wrong with one segment is named with its file.
    FUZZ_CHECK(scan.status().message().find(segment_file_name(0)) != std::string::npos);
  }
  auto r = sluice::LogReader::open(dir);
  if (r.ok()) {
    sluice::RecordView v;
    for (uint64_t p = (*r)->begin_position(); p < (*r)->end_position(); ++p) {
      FUZZ_CHECK((*r)->read(p, &v));
      FUZZ_CHECK(v.position() == p);
      sink = sink + touch(v);
    }
    for (const auto& s : (*r)->system_records()) sink = sink + touch(s);
  }
}

void write_seeds(const char* dir) {
  auto seed = [&](const char* name, uint8_t mode, const std::vector<std::byte>& bytes) {
    const std::string path = std::string(dir) + "/" + name;
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return;
    std::fwrite(&mode, 1, 1, f);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  };
  // Records laid out as in a segment: a stream, two events, a batch of three, then the seal.
  std::vector<uint64_t> words(512, 0);
  auto* base = reinterpret_cast<std::byte*>(words.data());
  uint64_t off = 0, pos = 0;
  auto put = [&](uint8_t type, uint8_t flags, uint64_t stream, uint64_t version, const char* payload) {
    sluice::EventData e;
    e.type = 1;
    e.payload = std::as_bytes(std::span(payload, std::strlen(payload)));
    if (version == 2) e.idempotency_key = {1, 2};
    RecordFields f;
    f.type = type;
    f.extra_flags = flags;
    f.position = pos;
    f.stream_id = stream;
    f.stream_version = version;
    const uint32_t len = encode_record(base + off, 0, f, e);
    commit_record(base + off, len);
    off += lf::align_up(len);
    if (type == lf::kTypeEvent) ++pos;
  };
  put(lf::kTypeStreamDefined, 0, 1, 0, "orders");
  put(lf::kTypeEvent, 0, 1, 1, "first");
  put(lf::kTypeEvent, 0, 1, 2, "second, with a key");
  put(lf::kTypeSchema, 0, 0, 0, "{\"schema\":1}");
  put(lf::kTypeEvent, lf::kFlagBatchContinues, 1, 3, "batch a");
  put(lf::kTypeEvent, lf::kFlagBatchContinues, 1, 4, "batch b");
  put(lf::kTypeEvent, 0, 1, 5, "batch c");
  const uint64_t before_seal = off;
  put(lf::kTypeSegmentEnd, 0, 0, 0, "");
  seed("records", 0x40, std::vector<std::byte>(base, base + before_seal));
  seed("sealed", 0x40, std::vector<std::byte>(base, base + off));
  seed("torn_batch", 0xC0, std::vector<std::byte>(base, base + before_seal - 40));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* d = std::getenv("SLUICE_FUZZ_SEED_DIR")) write_seeds(d);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  ++data;
  --size;
  // The log is read in place from 8-byte aligned mappings: give the scanner the same.
  std::vector<uint64_t> words(size / 8 + 1, 0);
  auto* base = reinterpret_cast<std::byte*>(words.data());
  if (size > 0) std::memcpy(base, data, size);
  const uint64_t index = mode & 0x07;
  if (mode & 0x80) fix_crcs(base, size, (mode & 0x40) ? 0 : index);
  check_decoder(base, size, index);
  check_scanner(base, size, index, 0);
  if (mode & 0x40) check_log_scan(base, size);
  return 0;
}
