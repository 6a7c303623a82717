// Acknowledged means kept: damage to a closed log written under `sync` (every event flushed
// and acknowledged, the durable watermark at the end) is corruption wherever it lies: refused
// by the reader and the writer with the segment file and offset, and nothing is modified —
// never a torn tail, never silently cut, never re-initialised. These are the cases an
// independent reader found accepted before the watermark existed.
#include <gtest/gtest.h>

#include <algorithm>
#include <gtest/gtest-spi.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bus/log_test_util.h"
#include "internal/record_codec.h"
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

namespace sluice {
namespace {

namespace fs = std::filesystem;
namespace lf = log_format;
using namespace sluice::testing;

// Recovery modes: point_in_time keeps the valid prefix and moves the rest aside; the bytes in
// quarantine/ are exactly those cut.
class RecoveryModes : public ::testing::Test {
 protected:
  void build(uint64_t events, size_t payload = 1000) {
    auto w = LogWriter::open(dir(), small_log_options(Durability::sync));
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    auto s = (*w)->stream("s");
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(append_events(**w, *s, events, payload));
    ASSERT_TRUE((*w)->close().ok());
    locs_ = locate_records(dir());
  }
  LogOptions point_in_time() {
    LogOptions o = small_log_options(Durability::sync);
    o.recovery = RecoveryMode::point_in_time;
    return o;
  }
  std::string dir() const { return tmp_.sub("log"); }
  std::string quarantine() const { return dir() + "/" + lf::kQuarantineDir; }
  std::vector<RecordLocation> locs_;
  TempDir tmp_{"modes"};
};

TEST_F(RecoveryModes, PointInTimeKeepsThePrefixAndQuarantinesExactlyTheBytesCut) {
  ASSERT_NO_FATAL_FAILURE(build(50));
  const RecordLocation victim = locs_[30];
  xor_byte(segment_file(dir(), 0), victim.offset + 70, 0x01);
  const std::vector<char> damaged = read_file(segment_file(dir(), 0));
  ASSERT_FALSE(LogWriter::open(dir(), small_log_options(Durability::sync)).ok()) << "strict refuses";
  {
    auto w = LogWriter::open(dir(), point_in_time());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    EXPECT_EQ((*w)->next_position(), 30u);
    EXPECT_NE((*w)->recovery_note().find("offset " + std::to_string(victim.offset) + ":"), std::string::npos)
        << (*w)->recovery_note();
    ASSERT_TRUE((*w)->close().ok());
  }
  expect_log_holds(dir(), 30, 1000);
  const std::string q = quarantine() + "/" + segment_file(dir(), 0).substr(dir().size() + 1) + "." +
                        std::to_string(victim.offset) + ".torn";
  ASSERT_TRUE(fs::exists(q));
  const std::vector<char> cut = read_file(q);
  const RecordLocation last = locs_.back();
  EXPECT_EQ(cut.size(), last.offset + lf::align_up(last.length) - victim.offset);
  EXPECT_TRUE(std::equal(cut.begin(), cut.end(), damaged.begin() + victim.offset))
      << "the quarantined bytes differ from those cut";
  // The log takes appends and reopens strictly.
  auto w = LogWriter::open(dir(), small_log_options(Durability::sync));
  ASSERT_TRUE(w.ok()) << w.status().to_string();
}

TEST_F(RecoveryModes, PointInTimeMovesEverySegmentAfterTheDamageAsideWhole) {
  ASSERT_NO_FATAL_FAILURE(build(150));  // three segments
  ASSERT_EQ(locs_.back().segment, 2u);
  const std::vector<char> seg1 = read_file(segment_file(dir(), 1));
  const std::vector<char> seg2 = read_file(segment_file(dir(), 2));
  xor_byte(segment_file(dir(), 0), locs_[10].offset + 70, 0x01);
  auto w = LogWriter::open(dir(), point_in_time());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_EQ((*w)->next_position(), 10u);
  ASSERT_TRUE((*w)->close().ok());
  EXPECT_EQ(read_file(quarantine() + "/" + segment_file(dir(), 1).substr(dir().size() + 1)), seg1);
  EXPECT_EQ(read_file(quarantine() + "/" + segment_file(dir(), 2).substr(dir().size() + 1)), seg2);
  expect_log_holds(dir(), 10, 1000);
}

TEST_F(RecoveryModes, PointInTimeOnAnUndamagedLogChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(build(20));
  auto w = LogWriter::open(dir(), point_in_time());
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->next_position(), 20u);
  EXPECT_EQ((*w)->recovery_note(), "");
  EXPECT_FALSE(fs::exists(quarantine()));
}

class CollectingReporter : public Reporter {
 public:
  void on_damage(const LogDamage& d) override { seen.push_back(d); }
  std::vector<LogDamage> seen;
};

TEST_F(RecoveryModes, ReaderReporterListsEveryDamagedRegion) {
  ASSERT_NO_FATAL_FAILURE(build(50));
  xor_byte(segment_file(dir(), 0), locs_[10].offset + 70, 0x01);
  xor_byte(segment_file(dir(), 0), locs_[40].offset + 70, 0x01);
  CollectingReporter rep;
  ReaderOptions o;
  o.reporter = &rep;
  o.every_region = true;
  auto r = LogReader::open(dir(), o);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(rep.seen.size(), 2u);
  EXPECT_EQ(rep.seen[0].offset, locs_[10].offset);
  EXPECT_EQ(rep.seen[0].end_offset, locs_[11].offset);
  EXPECT_EQ(rep.seen[1].offset, locs_[40].offset);
  EXPECT_TRUE(rep.seen[0].corruption);
}

TEST_F(RecoveryModes, ReaderReporterIsToldOfATornTail) {
  ASSERT_NO_FATAL_FAILURE(build(20));
  rewind_watermark(dir());
  xor_byte(segment_file(dir(), 0), locs_.back().offset + 70, 0x01);
  CollectingReporter rep;
  ReaderOptions o;
  o.reporter = &rep;
  auto r = LogReader::open(dir(), o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(rep.seen.size(), 1u);
  EXPECT_FALSE(rep.seen[0].corruption);
  EXPECT_EQ(rep.seen[0].offset, locs_.back().offset);
}

// --- invariants only `verify` (check_invariants) checks --------------------------------------

// Rewrites a record's CRC after a test changed its bytes, so that only the invariant is broken.
void reseal(const std::string& path, uint64_t segment, uint32_t offset) {
  std::vector<char> b = read_file(path);
  auto* h = reinterpret_cast<lf::RecordHeader*>(b.data() + offset);
  h->crc = log_internal::record_crc(segment, reinterpret_cast<const std::byte*>(h), h->length);
  write_file(path, b);
}

Status open_checking(const std::string& dir) {
  ReaderOptions o;
  o.check_invariants = true;
  auto r = LogReader::open(dir, o);
  return r.ok() ? Status() : r.status();
}

TEST_F(RecoveryModes, VerifyRefusesATimestampThatGoesBackwards) {
  ASSERT_NO_FATAL_FAILURE(build(20, 100));
  ASSERT_TRUE(open_checking(dir()).ok());
  const uint32_t off = locs_[10].offset;
  std::vector<char> b = read_file(segment_file(dir(), 0));
  auto* h = reinterpret_cast<lf::RecordHeader*>(b.data() + off);
  h->timestamp_ns -= 1'000'000'000;
  write_file(segment_file(dir(), 0), b);
  reseal(segment_file(dir(), 0), 0, off);
  ASSERT_TRUE(LogReader::open(dir()).ok()) << "the scan alone accepts it";
  Status st = open_checking(dir());
  expect_corruption(st, segment_file(dir(), 0), off);
  EXPECT_NE(st.message().find("timestamp"), std::string::npos) << st.message();
}

TEST_F(RecoveryModes, VerifyRefusesNonZeroPadding) {
  ASSERT_NO_FATAL_FAILURE(build(20, 101));  // 157-byte records: 3 bytes of padding
  const uint32_t off = locs_[5].offset;
  xor_byte(segment_file(dir(), 0), off + locs_[5].length + 1, 0x01);
  ASSERT_TRUE(LogReader::open(dir()).ok());
  expect_corruption(open_checking(dir()), segment_file(dir(), 0), off);
}

TEST_F(RecoveryModes, VerifyRefusesAStreamNameThatIsNotUtf8) {
  {
    auto w = LogWriter::open(dir(), small_log_options());
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->stream("ok").ok());
    // The writer refuses such a name now; a log written before it did may hold one. Write a
    // valid name, then turn it into "bad\xc3\x28" (a truncated sequence) and reseal the CRC.
    ASSERT_TRUE((*w)->stream("badAB").ok());
    ASSERT_TRUE((*w)->close().ok());
  }
  {
    const std::string seg = segment_file(dir(), 0);
    std::vector<char> b = read_file(seg);
    const std::string name = "badAB";
    auto at = std::search(b.begin(), b.end(), name.begin(), name.end());
    ASSERT_NE(at, b.end());
    at[3] = static_cast<char>(0xc3);
    at[4] = static_cast<char>(0x28);
    write_file(seg, b);
    // A stream record has no ids: its name starts right after the fixed header.
    reseal(seg, 0, static_cast<uint32_t>(at - b.begin()) - lf::kRecordHeaderSize);
  }
  Status st = open_checking(dir());
  EXPECT_EQ(st.code(), StatusCode::corruption) << st.to_string();
  EXPECT_NE(st.message().find("UTF-8"), std::string::npos) << st.message();
}

TEST_F(RecoveryModes, VerifyRefusesAStreamRecordAtTheWrongPosition) {
  {
    auto w = LogWriter::open(dir(), small_log_options());
    ASSERT_TRUE(w.ok());
    auto s = (*w)->stream("a");
    ASSERT_TRUE(append_events(**w, *s, 3, 100));
    ASSERT_TRUE((*w)->stream("b").ok());
    ASSERT_TRUE(append_events(**w, *s, 3, 100));
    ASSERT_TRUE((*w)->close().ok());
  }
  ASSERT_TRUE(open_checking(dir()).ok());
  // The stream record for "b" lies between the events at positions 2 and 3.
  const auto locs = locate_records(dir());
  const uint32_t off = locs[2].offset + lf::align_up(locs[2].length);
  std::vector<char> b = read_file(segment_file(dir(), 0));
  auto* h = reinterpret_cast<lf::RecordHeader*>(b.data() + off);
  ASSERT_EQ(h->type, lf::kTypeStreamDefined);
  ASSERT_EQ(h->position, 3u);
  h->position = 7;
  write_file(segment_file(dir(), 0), b);
  reseal(segment_file(dir(), 0), 0, off);
  ASSERT_TRUE(LogReader::open(dir()).ok());
  expect_corruption(open_checking(dir()), segment_file(dir(), 0), off);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// The helper every corruption test leans on must itself be able to fail: "offset 2400" does
// not name offset 24 (it used to, by prefix).
TEST(ExpectCorruption, AnOffsetThatOnlyStartsTheSameIsNotNamed) {
  const Status st(StatusCode::corruption, "segment /x/0.seg offset 2400: checksum mismatch");
  EXPECT_NONFATAL_FAILURE(testing::expect_corruption(st, "/x/0.seg", 24), "does not name offset 24");
}

TEST(ExpectCorruption, TheExactOffsetIsNamed) {
  testing::expect_corruption(Status(StatusCode::corruption, "segment /x/0.seg offset 24: bad"), "/x/0.seg", 24);
  testing::expect_corruption(Status(StatusCode::corruption, "segment /x/0.seg offset 24"), "/x/0.seg", 24);
}

}  // namespace
}  // namespace sluice
