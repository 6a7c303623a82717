// The damage corpus, in the style of leveldb's log_test: a small log is damaged on purpose and
// reopened. Damage at the tail (what a crash can leave) must yield exactly the intact prefix,
// both read-only (LogReader, which reports it and repairs nothing) and through writer recovery
// (LogWriter::open, which truncates it, zeroes it, and appends after it). Damage in the middle
// must be refused as corruption, with a message naming the segment file and the offset.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bus/log_test_util.h"
#include "internal/record_codec.h"
#include "sluice/bus/log_format.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"

namespace sluice {
namespace {

namespace lf = log_format;
using namespace sluice::testing;

// 21-byte payloads: records of 77 bytes, padded to 80, so truncation also hits the padding.
constexpr size_t kPayload = 21;

// Writers in the corpus skip the disk flushes: what is tested is which bytes recovery keeps,
// not their durability (log_fault_test and the crash test cover that), and some 650 reopens
// (ctest runs each case in its own process, building the base log each time) with five
// fsyncs each would be slow on a busy disk.
LogOptions corpus_options() {
  static FaultFileOps ops;
  ops.no_sync = true;
  LogOptions o = small_log_options();
  o.file_ops = &ops;
  return o;
}

// Builds a log of `events` single-event appends (and, with batch_tail, a final batch of
// `batch_tail` events) in 64 KiB segments. `crashed`: the log as a crash of the writer leaves
// it (a copy taken while the writer is open: its durable watermark is where that open
// started, so every record is after it and damage to it is a torn tail); otherwise the log
// as close() leaves it (the watermark at its end: damage anywhere is corruption).
void build_log(const std::string& dir, uint64_t events, size_t batch_tail = 0, bool crashed = true) {
  const std::string live = crashed ? dir + ".live" : dir;
  auto w = LogWriter::open(live, corpus_options());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  auto s = (*w)->stream("account-1");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_TRUE(append_events(**w, *s, events, kPayload));
  if (batch_tail > 0) {
    AppendResult r = append_batch(**w, *s, batch_tail, kPayload);
    ASSERT_TRUE(r.ok()) << (*w)->last_error().to_string();
  }
  if (crashed) copy_log(live, dir);
  ASSERT_TRUE((*w)->close().ok());
  if (crashed) std::filesystem::remove_all(live);
}

// What one reopen of a damaged log must find.
struct Expect {
  uint64_t end = 0;          // positions [0, end) intact, nothing more
  bool tail_damaged = true;  // the read-only reader reports a damaged tail
};

// Reopens `dir` read-only, then through writer recovery, then read-only again, and checks that
// each sees exactly the intact prefix; after recovery every byte of the last segment past the
// prefix is zero and the tail is clean.
void expect_recovers_to(const std::string& dir, uint64_t last_segment, Expect want) {
  {
    auto r = LogReader::open(dir);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ((*r)->end_position(), want.end);
    EXPECT_EQ((*r)->info().tail_damaged, want.tail_damaged) << (*r)->info().tail_reason;
  }
  expect_log_holds(dir, want.end, kPayload);
  uint64_t tail = 0;
  {
    auto w = LogWriter::open(dir, corpus_options());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    EXPECT_EQ((*w)->next_position(), want.end);
    EXPECT_EQ((*w)->stream_version(1), want.end);
    EXPECT_EQ((*w)->recovery_note().empty(), !want.tail_damaged) << (*w)->recovery_note();
    ASSERT_TRUE((*w)->close().ok());
  }
  {
    auto r = LogReader::open(dir);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ((*r)->end_position(), want.end);
    EXPECT_FALSE((*r)->info().tail_damaged) << (*r)->info().tail_reason;
    const LogInfo info = (*r)->info();
    ASSERT_FALSE(info.segments.empty());
    EXPECT_EQ(info.segments.back().index, last_segment);
    tail = info.segments.back().used_bytes;
  }
  expect_log_holds(dir, want.end, kPayload);
  const std::vector<char> bytes = read_file(segment_file(dir, last_segment));
  ASSERT_EQ(bytes.size(), lf::kMinSegmentSize) << "recovery restores the full segment size";
  for (uint64_t i = tail; i < bytes.size(); ++i)
    ASSERT_EQ(bytes[i], 0) << "byte " << i << " of segment " << last_segment
                           << " survived recovery past the intact prefix (ends at " << tail << ")";
}

// A log of two segments built once; each case damages a copy of it.
class DamagedTail : public ::testing::Test {
 protected:
  static constexpr uint64_t kEvents = 1000;  // ~820 fit in a 64 KiB segment: two segments

  static void SetUpTestSuite() {
    base_ = new TempDir("recovery_base");
    build_log(base_->sub("log"), kEvents);
    locs_ = new std::vector<RecordLocation>(locate_records(base_->sub("log")));
  }
  static void TearDownTestSuite() {
    delete locs_;
    delete base_;
    locs_ = nullptr;
    base_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(locs_->size(), kEvents);
    // The corpus assumes the last two records share the last segment.
    ASSERT_EQ(locs_->back().segment, 1u);
    ASSERT_EQ((*locs_)[kEvents - 2].segment, 1u);
    copy_log(base_->sub("log"), dir());
  }

  std::string dir() const { return tmp_.sub("log"); }
  std::string last_file() const { return segment_file(dir(), 1); }
  const RecordLocation& loc(uint64_t p) const { return (*locs_)[p]; }
  uint64_t end_of(uint64_t p) const { return loc(p).offset + lf::align_up(loc(p).length); }

  static TempDir* base_;
  static std::vector<RecordLocation>* locs_;
  TempDir tmp_{"recovery"};
};
TempDir* DamagedTail::base_ = nullptr;
std::vector<RecordLocation>* DamagedTail::locs_ = nullptr;

// --- every bit of the last record's header --------------------------------------------------

struct HeaderField {
  const char* name;
  uint32_t offset;
  uint32_t size;
};
constexpr HeaderField kHeaderFields[] = {
    {"length", 0, 4},      {"crc", 4, 4},           {"type", 8, 1},
    {"flags", 9, 1},       {"header_length", 10, 2}, {"event_type", 12, 4},
    {"schema_version", 16, 2}, {"codec", 18, 1},    {"reserved0", 19, 1},
    {"reserved1", 20, 4},  {"position", 24, 8},     {"stream_id", 32, 8},
    {"stream_version", 40, 8}, {"timestamp_ns", 48, 8},
};
static_assert(sizeof(kHeaderFields) / sizeof(kHeaderFields[0]) == 14);

std::string header_bit_name(uint32_t bit) {
  for (const HeaderField& f : kHeaderFields)
    if (bit / 8 >= f.offset && bit / 8 < f.offset + f.size)
      return std::string(f.name) + "_bit" + std::to_string(bit - f.offset * 8);
  return "bit" + std::to_string(bit);
}

class LastRecordHeaderBitFlip : public DamagedTail, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(LastRecordHeaderBitFlip, YieldsThePrefixWithoutTheLastRecord) {
  const uint32_t bit = GetParam();
  const uint64_t at = loc(kEvents - 1).offset + bit / 8;
  std::vector<char> seg = read_file(last_file());
  seg[at] = static_cast<char>(seg[at] ^ (1 << (bit % 8)));
  write_file(last_file(), seg);
  expect_recovers_to(dir(), 1, {kEvents - 1, true});
}

INSTANTIATE_TEST_SUITE_P(EveryBit, LastRecordHeaderBitFlip,
                         ::testing::Range<uint32_t>(0, lf::kRecordHeaderSize * 8),
                         [](const ::testing::TestParamInfo<uint32_t>& i) { return header_bit_name(i.param); });

// --- truncation of the segment file at every byte of the last two records ------------------

TEST_F(DamagedTail, FileTruncatedAtEveryByteOfTheLastTwoRecords) {
  const uint64_t from = loc(kEvents - 2).offset;
  const uint64_t to = loc(kEvents - 1).offset + loc(kEvents - 1).length;  // unpadded end
  const std::vector<char> original = read_file(last_file());
  for (uint64_t size = from; size <= to; ++size) {
    SCOPED_TRACE("segment 1 truncated to " + std::to_string(size) + " bytes");
    copy_log(base_->sub("log"), dir());
    write_file(last_file(), std::vector<char>(original.begin(), original.begin() + static_cast<long>(size)));
    uint64_t intact = kEvents - 2;
    if (size >= loc(kEvents - 2).offset + loc(kEvents - 2).length) intact = kEvents - 1;
    if (size >= to) intact = kEvents;
    expect_recovers_to(dir(), 1, {intact, true});
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) return;
  }
}

TEST_F(DamagedTail, FileTruncatedRightAfterTheSegmentHeader) {
  const std::vector<char> original = read_file(last_file());
  write_file(last_file(), std::vector<char>(original.begin(), original.begin() + lf::kSegmentHeaderSize));
  const auto in_segment0 = static_cast<uint64_t>(
      std::count_if(locs_->begin(), locs_->end(), [](const RecordLocation& l) { return l.segment == 0; }));
  expect_recovers_to(dir(), 1, {in_segment0, true});
}

// --- zero and garbage tails ------------------------------------------------------------------

TEST_F(DamagedTail, LastRecordZeroedWholeIsACleanShorterLog) {
  std::vector<char> zeros(end_of(kEvents - 1) - loc(kEvents - 1).offset, 0);
  patch_file(last_file(), loc(kEvents - 1).offset, zeros.data(), zeros.size());
  expect_recovers_to(dir(), 1, {kEvents - 1, false});
}

TEST_F(DamagedTail, LastRecordLengthZeroedLeavesGarbageThatIsTruncated) {
  const uint32_t zero = 0;
  patch_file(last_file(), loc(kEvents - 1).offset, &zero, sizeof zero);
  expect_recovers_to(dir(), 1, {kEvents - 1, true});
}

TEST_F(DamagedTail, LastRecordBodyZeroedUnderItsLengthIsTornRecord) {
  std::vector<char> zeros(end_of(kEvents - 1) - loc(kEvents - 1).offset - 4, 0);
  patch_file(last_file(), loc(kEvents - 1).offset + 4, zeros.data(), zeros.size());
  expect_recovers_to(dir(), 1, {kEvents - 1, true});
}

TEST_F(DamagedTail, LastRecordPayloadBitFlipIsTornRecord) {
  const uint64_t at = loc(kEvents - 1).offset + lf::kRecordHeaderSize + 3;
  std::vector<char> seg = read_file(last_file());
  seg[at] = static_cast<char>(seg[at] ^ 0x10);
  write_file(last_file(), seg);
  expect_recovers_to(dir(), 1, {kEvents - 1, true});
}

TEST_F(DamagedTail, RandomGarbageAfterTheLastRecordIsTruncated) {
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    copy_log(base_->sub("log"), dir());
    std::mt19937 rng(seed);
    std::vector<char> garbage(1 + rng() % 4096);
    for (char& c : garbage) c = static_cast<char>(rng());
    garbage[0] = static_cast<char>(garbage[0] | 1);  // a non-zero length word: not free space
    patch_file(last_file(), end_of(kEvents - 1), garbage.data(), garbage.size());
    expect_recovers_to(dir(), 1, {kEvents, true});
  }
}

TEST_F(DamagedTail, RandomGarbageOverTheLastRecordIsTruncated) {
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    copy_log(base_->sub("log"), dir());
    std::mt19937 rng(seed);
    std::vector<char> garbage(end_of(kEvents - 1) - loc(kEvents - 1).offset + rng() % 512);
    for (char& c : garbage) c = static_cast<char>(rng());
    garbage[0] = static_cast<char>(garbage[0] | 1);
    patch_file(last_file(), loc(kEvents - 1).offset, garbage.data(), garbage.size());
    expect_recovers_to(dir(), 1, {kEvents - 1, true});
  }
}

TEST_F(DamagedTail, GarbageAtTheVeryEndOfTheSegmentIsTruncated) {
  const char junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  patch_file(last_file(), lf::kMinSegmentSize - sizeof junk, junk, sizeof junk);
  expect_recovers_to(dir(), 1, {kEvents, true});
}

// --- stale epoch ------------------------------------------------------------------------------

TEST_F(DamagedTail, RecordCopiedFromSegmentZeroIntoTheTailIsRejected) {
  const std::vector<char> seg0 = read_file(segment_file(dir(), 0));
  const RecordLocation& old = loc(0);
  std::vector<char> rec(seg0.begin() + old.offset, seg0.begin() + old.offset + lf::align_up(old.length));
  patch_file(last_file(), end_of(kEvents - 1), rec.data(), rec.size());
  expect_recovers_to(dir(), 1, {kEvents, true});
}

// A record that would be the perfect next event (position, stream, version) but is checksummed
// for segment 0: only the epoch in the CRC tells that it is stale, and it must.
void write_next_event(const std::string& file, uint64_t offset, uint64_t crc_segment, uint64_t position) {
  std::vector<uint64_t> buf(32, 0);
  auto* dst = reinterpret_cast<std::byte*>(buf.data());
  log_internal::RecordFields f;
  f.position = position;
  f.stream_id = 1;
  f.stream_version = position + 1;
  f.timestamp_ns = INT64_MAX / 2;
  const std::string payload = payload_for(position, kPayload);
  const uint32_t len = log_internal::encode_record(dst, crc_segment, f, event(payload));
  log_internal::commit_record(dst, len);
  patch_file(file, offset, dst, lf::align_up(len));
}

TEST_F(DamagedTail, NextEventChecksummedForAnEarlierSegmentIsRejected) {
  write_next_event(last_file(), end_of(kEvents - 1), /*crc_segment=*/0, kEvents);
  expect_recovers_to(dir(), 1, {kEvents, true});
}

TEST_F(DamagedTail, NextEventChecksummedForItsOwnSegmentIsAccepted) {
  // The control for the case above: the same bytes with the right epoch are a valid record.
  write_next_event(last_file(), end_of(kEvents - 1), /*crc_segment=*/1, kEvents);
  expect_recovers_to(dir(), 1, {kEvents + 1, false});
}

// --- huge length fields -------------------------------------------------------------------------

TEST_F(DamagedTail, HugeLengthInTheLastRecordIsTornRecord) {
  for (uint32_t huge : {0xFFFFFFFFu, 0x80000000u, static_cast<uint32_t>(lf::kMinSegmentSize),
                        static_cast<uint32_t>(lf::kMinSegmentSize - loc(kEvents - 1).offset + 1)}) {
    SCOPED_TRACE("length " + std::to_string(huge));
    copy_log(base_->sub("log"), dir());
    patch_file(last_file(), loc(kEvents - 1).offset, &huge, sizeof huge);
    expect_recovers_to(dir(), 1, {kEvents - 1, true});
  }
}

TEST_F(DamagedTail, HugeLengthWordInFreeSpaceIsTruncated) {
  const uint32_t huge = 0xFFFFFFF0u;
  patch_file(last_file(), end_of(kEvents - 1), &huge, sizeof huge);
  expect_recovers_to(dir(), 1, {kEvents, true});
}

// --- an incomplete batch ------------------------------------------------------------------------

class TornBatch : public ::testing::Test {
 protected:
  static constexpr uint64_t kSingles = 40;
  static constexpr size_t kBatch = 4;
  void SetUp() override {
    build_log(dir(), kSingles, kBatch);
    locs_ = locate_records(dir());
    ASSERT_EQ(locs_.size(), kSingles + kBatch);
  }
  std::string dir() const { return tmp_.sub("log"); }
  std::string file() const { return segment_file(dir(), 0); }
  const RecordLocation& last() const { return locs_.back(); }

  TempDir tmp_{"torn_batch"};
  std::vector<RecordLocation> locs_;
};

TEST_F(TornBatch, BatchWithoutItsLastRecordIsDroppedWhole) {
  std::vector<char> zeros(lf::align_up(last().length), 0);
  patch_file(file(), last().offset, zeros.data(), zeros.size());
  expect_recovers_to(dir(), 0, {kSingles, true});
}

TEST_F(TornBatch, BatchWhoseLastRecordIsCorruptIsDroppedWhole) {
  const char flip = 0x5a;
  patch_file(file(), last().offset + lf::kRecordHeaderSize, &flip, 1);
  expect_recovers_to(dir(), 0, {kSingles, true});
}

TEST_F(TornBatch, BatchTruncatedInsideItsLastRecordIsDroppedWhole) {
  std::vector<char> seg = read_file(file());
  seg.resize(last().offset + 20);
  write_file(file(), seg);
  expect_recovers_to(dir(), 0, {kSingles, true});
}

// After the torn batch is cut off, a shorter append lands where the batch was. Any batch record
// left behind would follow it as a "valid record after an invalid one" and brick the log.
TEST_F(TornBatch, AppendAfterDroppingATornBatchReopensCleanly) {
  std::vector<char> zeros(lf::align_up(last().length), 0);
  patch_file(file(), last().offset, zeros.data(), zeros.size());
  {
    auto w = LogWriter::open(dir(), small_log_options());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    ASSERT_EQ((*w)->next_position(), kSingles);
    // 56 + 5 bytes: shorter than one batch record, so it cannot cover the batch's bytes.
    const std::string p = payload_for(kSingles, 5);
    ASSERT_TRUE((*w)->append(1, ExpectedVersion::exact(kSingles), event(p)).ok()) << (*w)->last_error().to_string();
    ASSERT_TRUE((*w)->close().ok());
  }
  auto r = LogReader::open(dir());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->end_position(), kSingles + 1);
  EXPECT_FALSE((*r)->info().tail_damaged) << (*r)->info().tail_reason;
  auto w = LogWriter::open(dir(), small_log_options());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_EQ((*w)->next_position(), kSingles + 1);
}

// --- after recovery -----------------------------------------------------------------------------

TEST_F(DamagedTail, WriterAppendsAfterRecoveryWithContiguousPositions) {
  const char flip = 0x01;
  patch_file(last_file(), loc(kEvents - 1).offset + 30, &flip, 1);
  {
    auto w = LogWriter::open(dir(), small_log_options());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    ASSERT_EQ((*w)->next_position(), kEvents - 1);
    EXPECT_NE((*w)->recovery_note().find(last_file()), std::string::npos) << (*w)->recovery_note();
    // Enough to roll into a new segment too.
    ASSERT_TRUE(append_events(**w, 1, 900, kPayload));
    EXPECT_GT((*w)->stats().segment_rolls, 0u);
    ASSERT_TRUE((*w)->close().ok());
  }
  expect_log_holds(dir(), kEvents - 1 + 900, kPayload);
  auto r = LogReader::open(dir());
  ASSERT_TRUE(r.ok());
  auto versions = (*r)->stream_positions(1);
  ASSERT_EQ(versions.size(), kEvents - 1 + 900);
  for (uint64_t v = 0; v < versions.size(); ++v) ASSERT_EQ(versions[v], v);
}

TEST_F(DamagedTail, ReadOnlyReaderReportsTheDamagedTailWithoutRepairingIt) {
  const uint32_t zero_len = 0;
  patch_file(last_file(), loc(kEvents - 1).offset, &zero_len, sizeof zero_len);
  const std::vector<char> before = read_file(last_file());
  for (int round = 0; round < 2; ++round) {
    auto r = LogReader::open(dir());
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const LogInfo info = (*r)->info();
    EXPECT_TRUE(info.tail_damaged);
    EXPECT_EQ(info.tail_segment, 1u);
    EXPECT_EQ(info.tail_offset, loc(kEvents - 1).offset);
    EXPECT_FALSE(info.tail_reason.empty());
    EXPECT_EQ((*r)->end_position(), kEvents - 1);
  }
  EXPECT_EQ(read_file(last_file()), before) << "a read-only open must not repair the log";
}

TEST_F(DamagedTail, PreparedButNeverActivatedSegmentIsNotPartOfTheLog) {
  // A crash between preparing segment 2 and using it leaves a zero-filled file behind.
  // (The crashed base log may hold prepared segments of its own already.)
  write_file(segment_file(dir(), 2), std::vector<char>(lf::kMinSegmentSize, 0));
  size_t prepared = 0;
  for (uint64_t i = 2; std::filesystem::exists(segment_file(dir(), i)); ++i) ++prepared;
  {
    auto r = LogReader::open(dir());
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ((*r)->end_position(), kEvents);
    EXPECT_EQ((*r)->info().prepared_segments, prepared);
    EXPECT_FALSE((*r)->info().tail_damaged);
  }
  expect_recovers_to(dir(), 1, {kEvents, false});
}

// --- damage in the middle: corruption, never truncation -----------------------------------------

// The base log here was closed: its durable watermark is at its end, so damage anywhere in
// it lies below the watermark.
class DamagedMiddle : public DamagedTail {
 public:
  static void SetUpTestSuite() {
    base_ = new TempDir("recovery_base_closed");
    build_log(base_->sub("log"), kEvents, 0, /*crashed=*/false);
    locs_ = new std::vector<RecordLocation>(locate_records(base_->sub("log")));
  }

 protected:
  // Both opens refuse with corruption naming file (and offset when >= 0), and change nothing.
  void expect_refused(const std::string& file, int64_t offset) {
    std::vector<std::vector<char>> before;
    for (uint64_t i = 0; i < 2; ++i) before.push_back(read_file(segment_file(dir(), i)));
    {
      auto r = LogReader::open(dir());
      ASSERT_FALSE(r.ok());
      expect_corruption(r.status(), file, offset);
    }
    {
      auto w = LogWriter::open(dir(), small_log_options());
      ASSERT_FALSE(w.ok());
      expect_corruption(w.status(), file, offset);
    }
    for (uint64_t i = 0; i < 2; ++i) {
      if (std::filesystem::exists(segment_file(dir(), i))) {
        EXPECT_EQ(read_file(segment_file(dir(), i)), before[i]) << "segment " << i << " was modified";
      }
    }
  }
};

TEST_F(DamagedMiddle, BitFlipFollowedByValidRecordsIsCorruption) {
  const uint64_t victim = kEvents - 10;
  const char flip = 0x04;
  patch_file(last_file(), loc(victim).offset + 40, &flip, 1);
  expect_refused(last_file(), loc(victim).offset);
}

TEST_F(DamagedMiddle, ZeroedRecordFollowedByValidRecordsIsCorruption) {
  const uint64_t victim = kEvents - 10;
  std::vector<char> zeros(lf::align_up(loc(victim).length), 0);
  patch_file(last_file(), loc(victim).offset, zeros.data(), zeros.size());
  expect_refused(last_file(), loc(victim).offset);
}

TEST_F(DamagedMiddle, HugeLengthFollowedByValidRecordsIsCorruption) {
  const uint64_t victim = kEvents - 10;
  const uint32_t huge = 0xFFFFFFFFu;
  patch_file(last_file(), loc(victim).offset, &huge, sizeof huge);
  expect_refused(last_file(), loc(victim).offset);
}

TEST_F(DamagedMiddle, BitFlipInANonLastSegmentIsCorruption) {
  const uint64_t victim = 100;
  ASSERT_EQ(loc(victim).segment, 0u);
  const char flip = 0x20;
  patch_file(segment_file(dir(), 0), loc(victim).offset + 2, &flip, 1);
  expect_refused(segment_file(dir(), 0), loc(victim).offset);
}

TEST_F(DamagedMiddle, NonLastSegmentWithoutItsSealIsCorruption) {
  // The seal follows the last event of segment 0.
  uint64_t last0 = 0;
  while (loc(last0 + 1).segment == 0) ++last0;
  const uint64_t seal = end_of(last0);
  std::vector<char> zeros(lf::kRecordHeaderSize, 0);
  patch_file(segment_file(dir(), 0), seal, zeros.data(), zeros.size());
  expect_refused(segment_file(dir(), 0), seal);
}

TEST_F(DamagedMiddle, LastRecordOfANonLastSegmentCutIsCorruption) {
  uint64_t last0 = 0;
  while (loc(last0 + 1).segment == 0) ++last0;
  // A timestamp byte: XOR, since a fixed value would equal the byte there 1 time in 256.
  xor_byte(segment_file(dir(), 0), loc(last0).offset + 50, 0x40);
  expect_refused(segment_file(dir(), 0), loc(last0).offset);
}

TEST_F(DamagedMiddle, CorruptSegmentHeaderIsCorruption) {
  const char flip = 0x01;
  patch_file(last_file(), 24, &flip, 1);  // base_position
  expect_refused(last_file(), 0);
}

TEST_F(DamagedMiddle, MissingMiddleSegmentIsCorruption) {
  // Three segments, then segment 1 disappears.
  {
    auto w = LogWriter::open(dir(), small_log_options());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    ASSERT_TRUE(append_events(**w, 1, 900, kPayload));
    ASSERT_EQ((*w)->segment_index(), 2u);
    ASSERT_TRUE((*w)->close().ok());
  }
  std::filesystem::remove(last_file());
  auto r = LogReader::open(dir());
  ASSERT_FALSE(r.ok());
  expect_corruption(r.status(), segment_file(dir(), 1));
  auto w = LogWriter::open(dir(), small_log_options());
  ASSERT_FALSE(w.ok());
  expect_corruption(w.status(), segment_file(dir(), 1));
  EXPECT_TRUE(std::filesystem::exists(segment_file(dir(), 2))) << "a refused open must not delete segments";
}

}  // namespace
}  // namespace sluice
