// Helpers shared by the write-log tests (tests/bus/*, tests/tools/*): temporary log
// directories, deterministic payloads, raw access to segment files, and a reader-side check
// that a log holds exactly an expected prefix.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/bus/file_ops.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_types.h"
#include "sluice/bus/log_writer.h"

namespace sluice::testing {

namespace fs = std::filesystem;

// A directory under ::testing::TempDir() with a unique name, removed when it goes out of scope.
class TempDir {
 public:
  explicit TempDir(std::string_view tag = "log") {
    static std::atomic<uint64_t> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "sluice_" + std::string(tag) + "_" + std::to_string(::getpid()) + "_" +
                       std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
    if (info != nullptr) name += std::string("_") + info->name();
    for (char& c : name)
      if (c == '/') c = '_';
    path_ = fs::path(::testing::TempDir()) / name;
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  // A path inside the temporary directory (not created).
  std::string sub(std::string_view name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
inline std::string_view as_chars(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// The payload the tests write for a position: "p<position>:" followed by filler, `size` bytes
// in all (at least the prefix), so that a misplaced or mixed-up record is caught by its bytes.
inline std::string payload_for(uint64_t position, size_t size = 24) {
  std::string s = "p" + std::to_string(position) + ":";
  while (s.size() < size) s.push_back(static_cast<char>('a' + (position + s.size()) % 26));
  return s;
}

inline EventData event(std::string_view payload, uint32_t type = 1) {
  EventData e;
  e.type = type;
  e.payload = as_bytes(payload);
  return e;
}

// Options for test logs: the smallest segments (so that rolls happen), no pre-faulting.
inline LogOptions small_log_options(Durability d = Durability::none) {
  LogOptions o;
  o.segment_size = log_format::kMinSegmentSize;  // 64 KiB
  o.durability = d;
  o.prefault = false;
  return o;
}

// Appends `count` single-event appends with payload_for(position, payload_size) to `stream`.
// Returns false (after a gtest failure) if one fails.
inline bool append_events(LogWriter& w, StreamId stream, uint64_t count, size_t payload_size = 24) {
  for (uint64_t i = 0; i < count; ++i) {
    const std::string p = payload_for(w.next_position(), payload_size);
    AppendResult r = w.append(stream, ExpectedVersion::any(), event(p));
    EXPECT_TRUE(r.ok()) << to_string(r.code) << ": " << w.last_error().to_string();
    if (!r.ok()) return false;
  }
  return true;
}

// Appends a batch of `n` events with payload_for(position, payload_size).
inline AppendResult append_batch(LogWriter& w, StreamId stream, size_t n, size_t payload_size = 24) {
  std::vector<std::string> payloads;
  std::vector<EventData> events;
  for (size_t i = 0; i < n; ++i) payloads.push_back(payload_for(w.next_position() + i, payload_size));
  for (const std::string& p : payloads) events.push_back(event(p));
  return w.append(stream, ExpectedVersion::any(), events);
}

// Checks that the log in `dir` opens read-only and holds exactly positions [0, end), each with
// payload_for(position, payload_size) bytes.
inline void expect_log_holds(const std::string& dir, uint64_t end, size_t payload_size = 24) {
  auto r = LogReader::open(dir);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->begin_position(), 0u);
  ASSERT_EQ((*r)->end_position(), end);
  RecordView v;
  for (uint64_t p = 0; p < end; ++p) {
    ASSERT_TRUE((*r)->read(p, &v)) << "position " << p;
    ASSERT_EQ(v.position(), p);
    ASSERT_EQ(as_chars(v.payload()), payload_for(p, payload_size)) << "position " << p;
  }
}

// Where each event of a log lies: (segment index, offset, padded length), by position.
struct RecordLocation {
  uint64_t segment = 0;
  uint32_t offset = 0;
  uint32_t length = 0;  // unpadded
};
inline std::vector<RecordLocation> locate_records(const std::string& dir) {
  std::vector<RecordLocation> out;
  auto r = LogReader::open(dir);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (!r.ok()) return out;
  RecordView v;
  for (uint64_t p = (*r)->begin_position(); (*r)->read(p, &v); ++p)
    out.push_back(RecordLocation{v.segment_index, v.offset, v.length()});
  return out;
}

inline std::string segment_file(const std::string& dir, uint64_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(index));
  return dir + "/" + name;
}

inline std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
inline void write_file(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "writing " << path;
}
// Overwrites `n` bytes of a file at `offset` in place (the file keeps its size).
inline void patch_file(const std::string& path, uint64_t offset, const void* data, size_t n) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  ASSERT_TRUE(f.is_open()) << path;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  ASSERT_TRUE(f.good()) << "patching " << path << " at " << offset;
}

// Flips the bits of `mask` in the byte at `offset` (unlike patch_file with a fixed byte, this
// always changes it, whatever was there: a timestamp byte, say).
inline void xor_byte(const std::string& path, uint64_t offset, char mask) {
  const std::vector<char> bytes = read_file(path);
  ASSERT_LT(offset, bytes.size()) << path;
  const char b = static_cast<char>(bytes[offset] ^ mask);
  patch_file(path, offset, &b, 1);
}

// Moves the durable watermark in sluice.meta back to the start of the log, as a writer that
// crashed right after its first open leaves it: every record is then after the watermark,
// and damage to any of them is a torn tail, not corruption.
inline void rewind_watermark(const std::string& dir) {
  const std::string path = dir + "/" + log_format::kMetaFileName;
  const std::vector<char> bytes = read_file(path);
  std::string in(bytes.begin(), bytes.end()), out, line;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\n') {
      line.push_back(in[i]);
      continue;
    }
    if (line.rfind(log_format::kMetaDurableSegment, 0) == 0) line = std::string(log_format::kMetaDurableSegment) + "=0";
    else if (line.rfind(log_format::kMetaDurableOffset, 0) == 0) line = std::string(log_format::kMetaDurableOffset) + "=0";
    else if (line.rfind(log_format::kMetaDurablePosition, 0) == 0) line = std::string(log_format::kMetaDurablePosition) + "=0";
    out += line + "\n";
    line.clear();
  }
  write_file(path, std::vector<char>(out.begin(), out.end()));
}

// Copies a log directory (segment files and metadata; not the LOCK file).
inline void copy_log(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from))
    if (e.path().filename() != log_format::kLockFileName) fs::copy_file(e.path(), fs::path(to) / e.path().filename());
}

// FileOps that fails chosen calls. For each kind of call, calls are counted (1-based) from
// the last arm(); those numbered in [first, last] fail with `err`. Thread-safe: the writer's
// maintenance thread makes some of these calls. With no_sync, flushes that are not failed
// succeed without reaching the disk (tests of recovery logic, not of durability).
class FaultFileOps : public FileOps {
 public:
  enum Call { kMsync, kFdatasync, kFsync, kFallocate, kMmap, kPwrite, kRename, kOpen, kCallKinds };

  void arm(Call c, uint64_t first, uint64_t last = UINT64_MAX, int err = EIO) {
    rules_[c].err.store(err, std::memory_order_relaxed);
    rules_[c].first.store(first, std::memory_order_relaxed);
    rules_[c].last.store(last, std::memory_order_relaxed);
    rules_[c].calls.store(0, std::memory_order_relaxed);
    rules_[c].failed.store(0, std::memory_order_relaxed);
  }
  void fail_nth(Call c, uint64_t n, int err = EIO) { arm(c, n, n, err); }
  void fail_always(Call c, int err = EIO) { arm(c, 1, UINT64_MAX, err); }
  void heal() {
    for (auto& r : rules_) r.first.store(0, std::memory_order_relaxed);
  }
  uint64_t failures(Call c) const { return rules_[c].failed.load(std::memory_order_relaxed); }
  bool no_sync = false;

  int msync(void* addr, size_t length, int flags) override {
    if (hit(kMsync)) return -1;
    return no_sync ? 0 : FileOps::msync(addr, length, flags);
  }
  int fdatasync(int fd) override {
    if (hit(kFdatasync)) return -1;
    return no_sync ? 0 : FileOps::fdatasync(fd);
  }
  int fsync(int fd) override {
    if (hit(kFsync)) return -1;
    return no_sync ? 0 : FileOps::fsync(fd);
  }
  int fallocate(int fd, off_t offset, off_t length) override {
    return hit(kFallocate) ? -1 : FileOps::fallocate(fd, offset, length);
  }
  void* mmap(size_t length, int prot, int flags, int fd, off_t offset) override {
    return hit(kMmap) ? MAP_FAILED : FileOps::mmap(length, prot, flags, fd, offset);
  }
  ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) override {
    return hit(kPwrite) ? -1 : FileOps::pwrite(fd, buf, n, offset);
  }
  int rename(const char* from, const char* to) override {
    return hit(kRename) ? -1 : FileOps::rename(from, to);
  }
  int open(const char* path, int flags, mode_t mode) override {
    return hit(kOpen) ? -1 : FileOps::open(path, flags, mode);
  }

 private:
  // Relaxed throughout: counters and settings with no data published through them; the
  // test arms before the calls it means to fail and reads results after joining or closing.
  struct Rule {
    std::atomic<uint64_t> calls{0}, first{0}, last{0}, failed{0};
    std::atomic<int> err{EIO};
  };
  bool hit(Call c) {
    Rule& r = rules_[c];
    const uint64_t n = r.calls.fetch_add(1, std::memory_order_relaxed) + 1;
    const uint64_t first = r.first.load(std::memory_order_relaxed);
    if (first == 0 || n < first || n > r.last.load(std::memory_order_relaxed)) return false;
    r.failed.fetch_add(1, std::memory_order_relaxed);
    errno = r.err.load(std::memory_order_relaxed);
    return true;
  }
  Rule rules_[kCallKinds];
};

// Checks that `st` is a corruption error whose message names `file` and, when given, `offset`.
inline void expect_corruption(const Status& st, const std::string& file, int64_t offset = -1) {
  EXPECT_EQ(st.code(), StatusCode::corruption) << st.to_string();
  EXPECT_NE(st.message().find(file), std::string::npos) << "message does not name " << file << ": "
                                                        << st.message();
  if (offset >= 0) {
    // The number must end there: "offset 2400" does not name offset 24.
    const std::string where = "offset " + std::to_string(offset);
    bool named = false;
    for (size_t at = st.message().find(where); at != std::string::npos && !named;
         at = st.message().find(where, at + 1)) {
      const size_t end = at + where.size();
      named = end == st.message().size() || !std::isdigit(static_cast<unsigned char>(st.message()[end]));
    }
    EXPECT_TRUE(named) << "message does not name " << where << ": " << st.message();
  }
}

}  // namespace sluice::testing
