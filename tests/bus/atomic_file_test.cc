// write_file_atomically() and create_directory_durably() (sluice/bus/file_ops.h): checked by
// the power-loss simulator (every crash point leaves the old file or the new one, whole; once
// acknowledged, the new one), by the order of the calls, and by injected failures.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bus/atomic_write_check.h"
#include "bus/crash_fs.h"
#include "bus/log_test_util.h"
#include "sluice/bus/file_ops.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

// Version k: "v<k>:" then filler up to a size that varies with k (a few bytes to ~5 pages,
// so a file spans pages that may tear), then ":end". Torn or mixed content fails parse().
std::string content(uint64_t k) {
  const size_t size = 16 + (k * 7919) % 20000;
  std::string s = "v" + std::to_string(k) + ":";
  while (s.size() + 4 < size) s += static_cast<char>('a' + (k + s.size()) % 26);
  return s + ":end";
}

Result<std::optional<uint64_t>> parse(const std::string& path) {
  if (!fs::exists(path)) return std::optional<uint64_t>();
  const std::vector<char> b = read_file(path);
  const std::string s(b.begin(), b.end());
  if (s.size() < 2 || s[0] != 'v') return Status(StatusCode::corruption, path + ": no version (" + std::to_string(s.size()) + " bytes)");
  const uint64_t k = std::strtoull(s.c_str() + 1, nullptr, 10);
  if (s != content(k)) return Status(StatusCode::corruption, path + ": version " + std::to_string(k) + " is not whole");
  return std::optional<uint64_t>(k);
}

class AtomicFileTest : public ::testing::Test {
 protected:
  std::string dir() const { return tmp_.sub("d"); }
  std::string img() const { return tmp_.sub("img"); }
  std::string file() const { return dir() + "/state"; }
  void SetUp() override { fs::create_directories(dir()); }
  TempDir tmp_{"atomic"};
};

// Debug builds: images per crash point; enough for both outcomes (old, new) to show up.
constexpr int kImagesPerPoint = 16;
constexpr uint64_t kVersions = 12;

TEST_F(AtomicFileTest, EveryCrashLeavesTheOldOrTheNewFileWholeAndTheAcknowledgedOneIsKept) {
  for (bool unique : {false, true}) {
    SCOPED_TRACE(unique ? "unique temporary names" : "<path>.tmp");
    fs::remove_all(dir());
    fs::create_directories(dir());
    CrashFs cfs(dir());
    AtomicFileOptions o;
    o.unique_temp = unique;
    const AtomicWriteCrashReport r = check_atomic_writes(
        cfs, img(), kVersions, kImagesPerPoint, unique ? 2 : 1,
        [&](uint64_t k) { return write_file_atomically(cfs, file(), content(k), o); },
        [&](const std::string& image) { return parse(image + "/state"); });
    EXPECT_EQ(r.failures(), 0u) << r.summary();
    EXPECT_GE(r.images, 1000u) << r.summary();
    std::cout << r.summary() << "\n";
    // Both outcomes occur: the check is not vacuous.
    EXPECT_GT(r.old_kept, 0u) << r.summary();
    EXPECT_GT(r.new_seen, 0u) << r.summary();
  }
}

TEST_F(AtomicFileTest, WithoutReplaceTheFirstFileStaysAndEveryCrashLeavesNoneOrItWhole) {
  CrashFs cfs(dir());
  AtomicFileOptions o;
  o.unique_temp = true;
  o.replace = false;
  const AtomicWriteCrashReport r = check_atomic_writes(
      cfs, img(), 1, kImagesPerPoint * 4, 3,
      [&](uint64_t k) { return write_file_atomically(cfs, file(), content(k), o); },
      [&](const std::string& image) { return parse(image + "/state"); });
  EXPECT_EQ(r.failures(), 0u) << r.summary();
  EXPECT_GT(r.old_kept, 0u) << r.summary();  // no file yet
  EXPECT_GT(r.new_seen, 0u) << r.summary();
  // A second writer finds the path taken: conflict, the first content kept, no temporary left.
  const Status st = write_file_atomically(FileOps::system(), file(), content(2), o);
  EXPECT_EQ(st.code(), StatusCode::conflict) << st.to_string();
  auto got = parse(file());
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(got.value(), std::optional<uint64_t>(1));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir()), fs::directory_iterator()), 1);
}

// The order that makes the crash outcome true, as the calls reach the file system.
class RecordingOps : public FileOps {
 public:
  std::vector<std::string> calls;
  int open(const char* path, int flags, mode_t mode) override {
    const int fd = FileOps::open(path, flags, mode);
    calls.push_back(std::string((flags & O_DIRECTORY) ? "open-dir " : "open ") + fs::path(path).filename().string());
    names_[fd] = fs::path(path).filename().string();
    return fd;
  }
  ssize_t pwrite(int fd, const void* b, size_t n, off_t off) override {
    calls.push_back("pwrite " + names_[fd]);
    return FileOps::pwrite(fd, b, n, off);
  }
  int fsync(int fd) override {
    calls.push_back("fsync " + names_[fd]);
    return FileOps::fsync(fd);
  }
  int close(int fd) override {
    calls.push_back("close " + names_[fd]);
    return FileOps::close(fd);
  }
  int rename(const char* from, const char* to) override {
    calls.push_back("rename " + fs::path(from).filename().string() + " " + fs::path(to).filename().string());
    return FileOps::rename(from, to);
  }
  int mkdir(const char* path, mode_t mode) override {
    calls.push_back("mkdir " + fs::path(path).filename().string());
    return FileOps::mkdir(path, mode);
  }

 private:
  std::map<int, std::string> names_;
};

TEST_F(AtomicFileTest, TheFileIsFlushedBeforeTheRenameAndTheDirectoryAfterIt) {
  RecordingOps ops;
  ASSERT_TRUE(write_file_atomically(ops, file(), "x").ok());
  const std::vector<std::string> want = {"open state.tmp", "pwrite state.tmp", "fsync state.tmp",
                                         "close state.tmp", "rename state.tmp state", "open-dir d",
                                         "fsync d", "close d"};
  EXPECT_EQ(ops.calls, want);
}

TEST_F(AtomicFileTest, ANewDirectoryAndItsMissingAncestorsAreEachFlushedInTheirParent) {
  RecordingOps ops;
  ASSERT_TRUE(create_directory_durably(ops, dir() + "/a/b", 0750).ok());
  EXPECT_TRUE(fs::is_directory(dir() + "/a/b"));
  const std::vector<std::string> want = {"mkdir b", "mkdir a", "open-dir d", "fsync d", "close d", "mkdir b",
                                         "open-dir a", "fsync a", "close a"};
  EXPECT_EQ(ops.calls, want);
  struct stat st {};
  ASSERT_EQ(::stat((dir() + "/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077 & ~0050u, 0u) << "no write or any access for others";
}

TEST_F(AtomicFileTest, TheFileGetsTheModeAsked) {
  AtomicFileOptions o;
  o.mode = 0640;
  ASSERT_TRUE(write_file_atomically(FileOps::system(), file(), "x", o).ok());
  struct stat st {};
  ASSERT_EQ(::stat(file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0007, 0u) << std::oct << st.st_mode;
  EXPECT_EQ(st.st_mode & 0022, 0u) << std::oct << st.st_mode;
}

TEST_F(AtomicFileTest, AFailedStepLeavesTheOldFileAndNoTemporaryFile) {
  ASSERT_TRUE(write_file_atomically(FileOps::system(), file(), content(1)).ok());
  for (auto call : {FaultFileOps::kOpen, FaultFileOps::kPwrite, FaultFileOps::kFsync, FaultFileOps::kRename}) {
    SCOPED_TRACE(call);
    FaultFileOps ops;
    ops.fail_nth(call, 1, EIO);
    const Status st = write_file_atomically(ops, file(), content(2));
    EXPECT_EQ(st.code(), StatusCode::io_error);
    EXPECT_NE(st.message().find("state"), std::string::npos) << st.to_string();
    EXPECT_NE(st.message().find(std::strerror(EIO)), std::string::npos) << st.to_string();
    auto got = parse(file());
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_EQ(got.value(), std::optional<uint64_t>(1));
    EXPECT_FALSE(fs::exists(file() + ".tmp"));
  }
}

TEST_F(AtomicFileTest, AFailedDirectoryFlushIsReported) {
  FaultFileOps ops;
  ops.fail_nth(FaultFileOps::kFsync, 2, EIO);  // #1 the file, #2 the directory
  const Status st = write_file_atomically(ops, file(), content(1));
  EXPECT_EQ(st.code(), StatusCode::io_error);
  EXPECT_NE(st.message().find("fsync directory " + dir()), std::string::npos) << st.to_string();
}

}  // namespace
}  // namespace sluice::testing
