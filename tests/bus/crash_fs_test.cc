// The power-loss simulator's own tests: what a flush made durable is in every crash image;
// what was written after it is in some and missing (or torn) in others; a directory entry
// not flushed is sometimes missing; msync makes durable only the pages it covers.
#include "bus/crash_fs.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bus/log_test_util.h"

namespace sluice::testing {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kFileSize = 8 * kPage;
constexpr int kImages = 400;

class CrashFsTest : public ::testing::Test {
 protected:
  std::string dir() const { return tmp_.sub("d"); }
  std::string img() const { return tmp_.sub("img"); }
  void SetUp() override { std::filesystem::create_directories(dir()); }

  // A file of kFileSize bytes, created, allocated, its data and its directory entry flushed.
  int make_durable_file(CrashFs& fs, const std::string& name) {
    const std::string p = dir() + "/" + name;
    const int fd = fs.open(p.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(fs.fallocate(fd, 0, kFileSize), 0);
    EXPECT_EQ(fs.fsync(fd), 0);
    const int dfd = fs.open(dir().c_str(), O_RDONLY | O_DIRECTORY, 0);
    EXPECT_EQ(fs.fsync(dfd), 0);
    fs.close(dfd);
    return fd;
  }
  // The images of one crash point: for each, the file's bytes (empty vector: missing).
  std::vector<std::vector<char>> images(const CrashFs::CrashPoint& cp, const std::string& name,
                                        CrashImageStats* stats = nullptr) {
    std::vector<std::vector<char>> out;
    std::mt19937_64 rng(42);
    for (int i = 0; i < kImages; ++i) {
      CrashFs::build_image(cp, rng, img(), stats);
      const std::string p = img() + "/" + name;
      out.push_back(std::filesystem::exists(p) ? read_file(p) : std::vector<char>());
    }
    return out;
  }
  TempDir tmp_{"crashfs"};
};

bool page_is(const std::vector<char>& f, size_t page, char c) {
  if (f.size() < (page + 1) * kPage) return c == 0;
  for (size_t i = page * kPage; i < (page + 1) * kPage; ++i)
    if (f[i] != c) return false;
  return true;
}

TEST_F(CrashFsTest, AFlushedPageIsNeverLostAndALaterPageSometimesIs) {
  CrashFs fs(dir());
  const int fd = make_durable_file(fs, "f");
  auto* m = static_cast<char*>(fs.mmap(kFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(m, MAP_FAILED);
  std::memset(m, 'a', kPage);                 // page 0
  ASSERT_EQ(fs.msync(m, kPage, MS_SYNC), 0);  // ... flushed
  std::memset(m + 3 * kPage, 'b', kPage);     // page 3, written after the flush
  fs.capture("test");
  auto caps = fs.take_captures();
  ASSERT_EQ(caps.size(), 1u);
  CrashImageStats st;
  int kept = 0, lost = 0, torn = 0;
  for (const auto& f : images(caps[0], "f", &st)) {
    ASSERT_EQ(f.size(), kFileSize);
    ASSERT_TRUE(page_is(f, 0, 'a')) << "a flushed page was lost";
    if (page_is(f, 3, 'b')) ++kept;
    else if (page_is(f, 3, 0)) ++lost;
    else ++torn;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(lost, 0);
  EXPECT_GT(torn, 0);
  EXPECT_EQ(st.images, static_cast<uint64_t>(kImages));
  EXPECT_EQ(st.pages_dirty, static_cast<uint64_t>(kImages));  // page 3 in each
  fs.munmap(m, kFileSize);
  fs.close(fd);
}

TEST_F(CrashFsTest, MsyncMakesDurableOnlyThePagesItCovers) {
  CrashFs fs(dir());
  const int fd = make_durable_file(fs, "f");
  auto* m = static_cast<char*>(fs.mmap(kFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(m, MAP_FAILED);
  std::memset(m + kPage, 'a', 2 * kPage);               // pages 1 and 2
  ASSERT_EQ(fs.msync(m + 2 * kPage, 10, MS_SYNC), 0);  // flushes page 2 only (widened)
  fs.capture("test");
  int page1_lost = 0;
  for (const auto& f : images(fs.take_captures()[0], "f")) {
    ASSERT_TRUE(page_is(f, 2, 'a')) << "page 2 was flushed";
    if (!page_is(f, 1, 'a')) ++page1_lost;
  }
  EXPECT_GT(page1_lost, 0) << "a flush of the wrong range must leave the page unprotected";
  fs.munmap(m, kFileSize);
  fs.close(fd);
}

TEST_F(CrashFsTest, TornPagesMixSectorsOfBothVersions) {
  CrashFs fs(dir());
  const int fd = make_durable_file(fs, "f");
  std::vector<char> b(kPage, 'b');
  ASSERT_EQ(fs.pwrite(fd, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
  fs.capture("test");
  int mixed = 0;
  for (const auto& f : images(fs.take_captures()[0], "f")) {
    bool any_b = false, any_0 = false;
    for (size_t i = 0; i < kPage; ++i) (f[i] == 'b' ? any_b : any_0) = true;
    if (any_b && any_0) ++mixed;
  }
  EXPECT_GT(mixed, 0);
  fs.close(fd);
}

TEST_F(CrashFsTest, AnUnflushedDirectoryEntryIsSometimesMissingAndAFlushedOneNever) {
  CrashFs fs(dir());
  const std::string p = dir() + "/new";
  const int fd = fs.open(p.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fs.pwrite(fd, "hello", 5, 0), 5);
  ASSERT_EQ(fs.fsync(fd), 0);  // the data, not the directory entry
  fs.capture("entry not flushed");
  const int dfd = fs.open(dir().c_str(), O_RDONLY | O_DIRECTORY, 0);
  ASSERT_EQ(fs.fsync(dfd), 0);
  fs.close(dfd);
  fs.capture("entry flushed");
  auto caps = fs.take_captures();
  ASSERT_EQ(caps.size(), 2u);
  int missing = 0, present = 0;
  for (const auto& f : images(caps[0], "new")) (f.empty() ? missing : present)++;
  EXPECT_GT(missing, 0);
  EXPECT_GT(present, 0);
  for (const auto& f : images(caps[1], "new")) EXPECT_EQ(std::string(f.begin(), f.end()), "hello");
  fs.close(fd);
}

TEST_F(CrashFsTest, AFlushOfAnotherDirectoryMakesNoWatchedEntryDurable) {
  CrashFs fs(dir());
  const std::string p = dir() + "/new";
  const int fd = fs.open(p.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fs.pwrite(fd, "hello", 5, 0), 5);
  ASSERT_EQ(fs.fsync(fd), 0);
  const std::string parent = std::filesystem::path(dir()).parent_path().string();
  const int pfd = fs.open(parent.c_str(), O_RDONLY | O_DIRECTORY, 0);
  ASSERT_EQ(fs.fsync(pfd), 0);  // the parent: not the directory that holds "new"
  fs.close(pfd);
  fs.capture("parent flushed");
  int missing = 0;
  for (const auto& f : images(fs.take_captures()[0], "new")) missing += f.empty();
  EXPECT_GT(missing, 0);
  fs.close(fd);
}

TEST_F(CrashFsTest, AnUnflushedRenameIsSometimesUndone) {
  CrashFs fs(dir());
  const int fd = make_durable_file(fs, "tmp");
  fs.close(fd);
  ASSERT_EQ(fs.rename((dir() + "/tmp").c_str(), (dir() + "/final").c_str()), 0);
  fs.capture("rename not flushed");
  auto caps = fs.take_captures();
  int undone = 0, done = 0;
  std::mt19937_64 rng(7);
  for (int i = 0; i < kImages; ++i) {
    CrashFs::build_image(caps[0], rng, img(), nullptr);
    const bool tmp = std::filesystem::exists(img() + "/tmp");
    const bool fin = std::filesystem::exists(img() + "/final");
    if (tmp && !fin) ++undone;
    if (fin && !tmp) ++done;
  }
  EXPECT_GT(undone, 0);
  EXPECT_GT(done, 0);
}

TEST_F(CrashFsTest, CapturesInCallsCreditOnlyAcknowledgementsAlreadyPublished) {
  CrashFs fs(dir());
  uint64_t acked = 0;
  fs.set_acknowledged_probe([&] { return acked; });
  fs.capture_in_calls(1);
  const int fd = make_durable_file(fs, "f");
  acked = 5;
  ASSERT_EQ(fs.fdatasync(fd), 0);
  auto caps = fs.take_captures();
  ASSERT_FALSE(caps.empty());
  EXPECT_EQ(caps.back().where, "fdatasync");
  EXPECT_EQ(caps.back().acknowledged, 5u);
  EXPECT_EQ(caps.front().acknowledged, 0u);
  fs.close(fd);
}

}  // namespace
}  // namespace sluice::testing
