// Acknowledged means kept: damage to a closed log written under `sync` (every event flushed
// and acknowledged, the durable watermark at the end) is corruption wherever it lies: refused
// by the reader and the writer with the segment file and offset, and nothing is modified —
// never a torn tail, never silently cut, never re-initialised. These are the cases an
// independent reader found accepted before the watermark existed.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bus/log_test_util.h"
#include "sluice/bus/log_format.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
namespace lf = log_format;
using namespace sluice::testing;

// ~1 KiB records: 50 fill most of one 64 KiB segment, 80 need two.
constexpr size_t kPayload = 1000;

class AcknowledgedMeansKept : public ::testing::Test {
 protected:
  // A sync log of `events` events, closed.
  void build(uint64_t events) {
    auto w = LogWriter::open(dir(), small_log_options(Durability::sync));
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    auto s = (*w)->stream("s");
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(append_events(**w, *s, events, kPayload));
    ASSERT_TRUE((*w)->close().ok());
    locs_ = locate_records(dir());
    ASSERT_EQ(locs_.size(), events);
  }
  std::string dir() const { return tmp_.sub("log"); }
  std::string seg(uint64_t i) const { return segment_file(dir(), i); }

  // Every file of the log, by name (LOCK excluded).
  std::map<std::string, std::vector<char>> snapshot() const {
    std::map<std::string, std::vector<char>> out;
    for (const auto& e : fs::directory_iterator(dir()))
      if (e.is_regular_file() && e.path().filename() != lf::kLockFileName)
        out[e.path().filename().string()] = read_file(e.path().string());
    return out;
  }
  // Reader and writer both refuse with corruption naming `file` (and `offset` when >= 0),
  // and no file changes.
  void expect_refused(const std::string& file, int64_t offset) {
    const auto before = snapshot();
    {
      auto r = LogReader::open(dir());
      ASSERT_FALSE(r.ok()) << "the reader accepted the damaged log";
      expect_corruption(r.status(), file, offset);
    }
    {
      auto w = LogWriter::open(dir(), small_log_options(Durability::sync));
      ASSERT_FALSE(w.ok()) << "the writer accepted the damaged log";
      expect_corruption(w.status(), file, offset);
    }
    EXPECT_EQ(snapshot(), before) << "a refused open modified the log";
  }

  std::vector<RecordLocation> locs_;
  TempDir tmp_{"damage"};
};

TEST_F(AcknowledgedMeansKept, BitFlipInTheLastRecordIsRefused) {
  ASSERT_NO_FATAL_FAILURE(build(50));
  const RecordLocation last = locs_.back();
  const char flip = 0x10;
  patch_file(seg(last.segment), last.offset + 60, &flip, 1);
  expect_refused(seg(last.segment), last.offset);
}

TEST_F(AcknowledgedMeansKept, ZeroedPageHoldingTheLastRecordsIsRefused) {
  ASSERT_NO_FATAL_FAILURE(build(50));
  const RecordLocation last = locs_.back();
  const uint64_t page = last.offset & ~uint64_t{4095};
  const std::vector<char> zeros(4096, 0);
  patch_file(seg(last.segment), page, zeros.data(), zeros.size());
  // The first record with bytes in the zeroed page is where the log stops.
  uint64_t first = 0;
  while (!(locs_[first].segment == last.segment &&
           locs_[first].offset + lf::align_up(locs_[first].length) > page))
    ++first;
  expect_refused(seg(last.segment), locs_[first].offset);
}

TEST_F(AcknowledgedMeansKept, LastSegmentCutInHalfIsRefused) {
  ASSERT_NO_FATAL_FAILURE(build(50));
  fs::resize_file(seg(0), lf::kMinSegmentSize / 2);
  uint64_t first = 0;  // the first record not wholly in the first half
  while (locs_[first].offset + lf::align_up(locs_[first].length) <= lf::kMinSegmentSize / 2) ++first;
  expect_refused(seg(0), locs_[first].offset);
}

TEST_F(AcknowledgedMeansKept, ZeroedHeaderOfTheLastSegmentIsRefused) {
  ASSERT_NO_FATAL_FAILURE(build(80));  // two segments
  ASSERT_EQ(locs_.back().segment, 1u);
  const std::vector<char> zeros(lf::kSegmentHeaderSize, 0);
  patch_file(seg(1), 0, zeros.data(), zeros.size());
  expect_refused(seg(1), lf::kSegmentHeaderSize);  // the first byte of data it holds
}

TEST_F(AcknowledgedMeansKept, ZeroedHeaderOfAOneSegmentLogIsRefusedNotReinitialised) {
  ASSERT_NO_FATAL_FAILURE(build(50));
  const std::vector<char> zeros(lf::kSegmentHeaderSize, 0);
  patch_file(seg(0), 0, zeros.data(), zeros.size());
  expect_refused(seg(0), lf::kSegmentHeaderSize);
}

TEST_F(AcknowledgedMeansKept, MissingLastSegmentIsRefused) {
  ASSERT_NO_FATAL_FAILURE(build(80));
  ASSERT_EQ(locs_.back().segment, 1u);
  fs::remove(seg(1));
  expect_refused(seg(1), -1);
}

TEST_F(AcknowledgedMeansKept, MissingLastSegmentAfterASealIsRefusedWithoutTheWatermark) {
  ASSERT_NO_FATAL_FAILURE(build(80));
  fs::remove(seg(1));
  fs::remove(dir() + "/" + lf::kMetaFileName);  // no watermark: the seal alone tells
  expect_refused(seg(1), -1);
}

TEST_F(AcknowledgedMeansKept, JunkInAPreparedSegmentIsRefused) {
  ASSERT_NO_FATAL_FAILURE(build(50));
  std::vector<char> prepared(lf::kMinSegmentSize, 0);
  prepared[5000] = 'x';
  write_file(seg(1), prepared);
  expect_refused(seg(1), 5000);
}

TEST_F(AcknowledgedMeansKept, SegmentFileLongerThanItsSegmentSizeIsRefused) {
  ASSERT_NO_FATAL_FAILURE(build(50));
  fs::resize_file(seg(0), lf::kMinSegmentSize + 4096);
  expect_refused(seg(0), lf::kMinSegmentSize);
}

TEST_F(AcknowledgedMeansKept, ClosedLogsWatermarkCoversEveryEvent) {
  ASSERT_NO_FATAL_FAILURE(build(50));
  const std::vector<char> meta = read_file(dir() + "/" + lf::kMetaFileName);
  const std::string text(meta.begin(), meta.end());
  EXPECT_NE(text.find("durable_position=50\n"), std::string::npos) << text;
  EXPECT_NE(text.find("durable_segment=0\n"), std::string::npos) << text;
}

TEST_F(AcknowledgedMeansKept, FilesAreCreatedOwnerReadWriteGroupRead) {
  ASSERT_NO_FATAL_FAILURE(build(5));
  for (const auto& e : fs::directory_iterator(dir())) {
    if (!e.is_regular_file()) continue;
    const auto perms = fs::status(e.path()).permissions();
    EXPECT_EQ(perms & (fs::perms::others_all | fs::perms::group_write | fs::perms::group_exec),
              fs::perms::none)
        << e.path();
  }
  EXPECT_EQ(fs::status(dir()).permissions() & fs::perms::others_all, fs::perms::none);
}

TEST_F(AcknowledgedMeansKept, FileModeIsConfigurable) {
  LogOptions o = small_log_options(Durability::sync);
  o.file_mode = 0600;
  auto w = LogWriter::open(dir(), o);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->close().ok());
  EXPECT_EQ(fs::status(seg(0)).permissions() & fs::perms::group_all, fs::perms::none);
}

}  // namespace
}  // namespace sluice
