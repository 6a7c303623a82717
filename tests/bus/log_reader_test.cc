// LogReader: reading from a position, cursors, per-stream reading, lookup by time, system
// records and zero-copy views. (Tailing a live writer: log_reader_concurrency_test.cc.)
#include "sluice/bus/log_reader.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bus/log_test_util.h"
#include "sluice/bus/log_writer.h"

namespace sluice {
namespace {

using namespace sluice::testing;
namespace lf = log_format;

// A log with two interleaved streams, rolled over several segments.
class LogReaderTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kEvents = 2000;  // ~ 3 segments of 64 KiB
  void SetUp() override {
    auto w = LogWriter::open(dir(), small_log_options());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    auto a = (*w)->stream("orders");
    auto b = (*w)->stream("payments");
    ASSERT_TRUE(a.ok() && b.ok());
    a_ = *a;
    b_ = *b;
    for (uint64_t p = 0; p < kEvents; ++p) {
      const std::string payload = payload_for(p);
      // Every third event goes to "payments".
      ASSERT_TRUE((*w)->append(p % 3 == 2 ? b_ : a_, ExpectedVersion::any(), event(payload, 100 + p % 3)).ok());
    }
    ASSERT_GE((*w)->segment_index(), 2u);
    ASSERT_TRUE((*w)->close().ok());
  }
  std::string dir() const { return tmp_.sub("log"); }
  std::unique_ptr<LogReader> open() {
    auto r = LogReader::open(dir());
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? std::move(r.value()) : nullptr;
  }

  TempDir tmp_{"reader"};
  StreamId a_ = 0, b_ = 0;
};

TEST_F(LogReaderTest, ReadsEveryPositionAcrossSegments) {
  auto r = open();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->begin_position(), 0u);
  EXPECT_EQ(r->end_position(), kEvents);
  EXPECT_GE(r->info().segments.size(), 3u);
  RecordView v;
  for (uint64_t p = 0; p < kEvents; ++p) {
    ASSERT_TRUE(r->read(p, &v)) << p;
    EXPECT_EQ(v.position(), p);
    EXPECT_EQ(v.event_type(), 100 + p % 3);
    ASSERT_EQ(as_chars(v.payload()), payload_for(p));
  }
}

TEST_F(LogReaderTest, ReadOutsideTheLogReturnsFalse) {
  auto r = open();
  ASSERT_NE(r, nullptr);
  RecordView v;
  EXPECT_FALSE(r->read(kEvents, &v));
  EXPECT_FALSE(r->read(UINT64_MAX, &v));
}

TEST_F(LogReaderTest, CursorIteratesFromAPositionToTheEnd) {
  auto r = open();
  ASSERT_NE(r, nullptr);
  auto c = r->cursor(1234);
  RecordView v;
  uint64_t expect = 1234;
  while (c.next(&v)) {
    ASSERT_EQ(v.position(), expect);
    ASSERT_EQ(as_chars(v.payload()), payload_for(expect));
    ++expect;
  }
  EXPECT_EQ(expect, kEvents);
  EXPECT_EQ(c.position(), kEvents);
  EXPECT_FALSE(c.next(&v)) << "a cursor at the end stays at the end";
}

TEST_F(LogReaderTest, CursorFromTheEndYieldsNothing) {
  auto r = open();
  ASSERT_NE(r, nullptr);
  auto c = r->cursor(kEvents);
  RecordView v;
  EXPECT_FALSE(c.next(&v));
}

TEST_F(LogReaderTest, StreamsAreFoundByNameAndListTheirPositionsByVersion) {
  auto r = open();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->stream_count(), 2u);
  EXPECT_EQ(r->find_stream("orders"), a_);
  EXPECT_EQ(r->find_stream("payments"), b_);
  EXPECT_FALSE(r->find_stream("refunds").has_value());
  EXPECT_EQ(r->stream_name(b_), "payments");
  EXPECT_EQ(r->stream_name(99), "");
  auto pa = r->stream_positions(a_);
  auto pb = r->stream_positions(b_);
  EXPECT_EQ(pa.size() + pb.size(), kEvents);
  RecordView v;
  for (size_t i = 0; i < pb.size(); ++i) {
    EXPECT_EQ(pb[i], 3 * i + 2);
    ASSERT_TRUE(r->read(pb[i], &v));
    EXPECT_EQ(v.stream_id(), b_);
    EXPECT_EQ(v.stream_version(), i + 1);
  }
  EXPECT_TRUE(r->stream_positions(0).empty());
  EXPECT_TRUE(r->stream_positions(3).empty());
}

TEST_F(LogReaderTest, StreamCursorReadsOneStreamFromAVersion) {
  auto r = open();
  ASSERT_NE(r, nullptr);
  auto c = r->stream_cursor(b_, 10);
  RecordView v;
  uint64_t version = 10;
  while (c.next(&v)) {
    ASSERT_EQ(v.stream_id(), b_);
    ASSERT_EQ(v.stream_version(), version);
    ASSERT_EQ(v.position(), 3 * (version - 1) + 2);
    ASSERT_EQ(as_chars(v.payload()), payload_for(v.position()));
    ++version;
  }
  EXPECT_EQ(version - 1, r->stream_positions(b_).size());
  auto all = r->stream_cursor(a_);
  uint64_t n = 0;
  while (all.next(&v)) ++n;
  EXPECT_EQ(n, r->stream_positions(a_).size());
}

// A view points into the read-only mapping of its segment file: nothing is copied.
TEST_F(LogReaderTest, ViewsPointIntoTheMappedSegmentFile) {
  auto r = open();
  ASSERT_NE(r, nullptr);
  // Parse /proc/self/maps: which mapped file holds an address?
  auto mapping_of = [](const void* p) -> std::string {
    std::ifstream maps("/proc/self/maps");
    const auto addr = reinterpret_cast<uintptr_t>(p);
    for (std::string line; std::getline(maps, line);) {
      unsigned long lo = 0, hi = 0;
      if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) != 2 || addr < lo || addr >= hi) continue;
      const auto slash = line.find('/');
      return slash == std::string::npos ? "" : line.substr(slash);
    }
    return "";
  };
  RecordView v;
  for (uint64_t p : {uint64_t{0}, uint64_t{900}, kEvents - 1}) {
    ASSERT_TRUE(r->read(p, &v));
    const std::string file = segment_file(dir(), v.segment_index);
    const std::byte* segment_base = reinterpret_cast<const std::byte*>(v.header) - v.offset;
    EXPECT_EQ(mapping_of(v.payload().data()), std::filesystem::canonical(file).string()) << p;
    EXPECT_GE(v.payload().data(), segment_base + lf::kSegmentHeaderSize);
    EXPECT_LE(v.payload().data() + v.payload().size(), segment_base + lf::kMinSegmentSize);
    // Two reads of one position give the same address.
    RecordView again;
    ASSERT_TRUE(r->read(p, &again));
    EXPECT_EQ(again.payload().data(), v.payload().data());
  }
}

TEST_F(LogReaderTest, InfoDescribesSegmentsPositionsAndTheLastWriter) {
  auto r = open();
  ASSERT_NE(r, nullptr);
  const LogInfo info = r->info();
  EXPECT_EQ(info.begin_position, 0u);
  EXPECT_EQ(info.end_position, kEvents);
  EXPECT_EQ(info.streams, 2u);
  EXPECT_EQ(info.last_writer_durability, "none");
  EXPECT_FALSE(info.tail_damaged);
  ASSERT_GE(info.segments.size(), 3u);
  uint64_t next = 0;
  for (size_t i = 0; i < info.segments.size(); ++i) {
    const SegmentInfo& s = info.segments[i];
    EXPECT_EQ(s.index, i);
    EXPECT_EQ(s.base_position, next);
    EXPECT_EQ(s.sealed, i + 1 < info.segments.size());
    EXPECT_EQ(s.segment_size, lf::kMinSegmentSize);
    next = s.end_position;
  }
  EXPECT_EQ(next, kEvents);
  EXPECT_LE(info.first_timestamp_ns, info.last_timestamp_ns);
}

TEST(LogReader, MissingDirectoryIsNotFound) {
  TempDir tmp("reader_missing");
  auto r = LogReader::open(tmp.sub("nope"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::not_found);
  EXPECT_NE(r.status().message().find(tmp.sub("nope")), std::string::npos) << r.status().message();
}

TEST(LogReader, DirectoryWithoutSegmentsIsNotFound) {
  TempDir tmp("reader_empty");
  auto r = LogReader::open(tmp.path().string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::not_found) << r.status().to_string();
}

// --- time ----------------------------------------------------------------------------------------

std::atomic<int64_t> g_now{0};
int64_t test_clock() { return g_now.load(std::memory_order_relaxed); }

TEST(LogReader, PositionAtTimeFindsTheFirstEventAtOrAfterATimestamp) {
  TempDir tmp("reader_time");
  LogOptions o = small_log_options();
  o.clock_ns = &test_clock;
  // Timestamps by position: 1000, 2000, 2000, 3000, then 2500 (the clock steps back: the log
  // keeps timestamps non-decreasing, so it is stored as 3000), 5000.
  const int64_t clock[] = {1000, 2000, 2000, 3000, 2500, 5000};
  {
    auto w = LogWriter::open(tmp.sub("log"), o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    auto s = (*w)->stream("ticks");
    ASSERT_TRUE(s.ok());
    for (int64_t t : clock) {
      g_now = t;
      ASSERT_TRUE((*w)->append(*s, ExpectedVersion::any(), event("tick")).ok());
    }
    ASSERT_TRUE((*w)->close().ok());
  }
  auto r = LogReader::open(tmp.sub("log"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  RecordView v;
  ASSERT_TRUE((*r)->read(4, &v));
  EXPECT_EQ(v.timestamp_ns(), 3000) << "timestamps never go backwards within a log";
  EXPECT_EQ((*r)->position_at_time(0), 0u);
  EXPECT_EQ((*r)->position_at_time(1000), 0u);
  EXPECT_EQ((*r)->position_at_time(1001), 1u);
  EXPECT_EQ((*r)->position_at_time(2000), 1u);
  EXPECT_EQ((*r)->position_at_time(2001), 3u);
  EXPECT_EQ((*r)->position_at_time(3000), 3u);
  EXPECT_EQ((*r)->position_at_time(3001), 5u);
  EXPECT_EQ((*r)->position_at_time(5000), 5u);
  EXPECT_EQ((*r)->position_at_time(5001), 6u) << "past the last event: end_position()";
  const LogInfo info = (*r)->info();
  EXPECT_EQ(info.first_timestamp_ns, 1000);
  EXPECT_EQ(info.last_timestamp_ns, 5000);
}

// --- system records ------------------------------------------------------------------------------

TEST(LogReader, SystemRecordsAreListedInOrderAndTakeNoPosition) {
  TempDir tmp("reader_system");
  const std::string schema1 = R"({"type":"OrderPlaced","version":1})";
  const std::string schema2 = R"({"type":"OrderPlaced","version":2})";
  {
    auto w = LogWriter::open(tmp.sub("log"), small_log_options());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    auto s = (*w)->stream("orders");
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*w)->append_system(lf::kTypeSchema, 7, as_bytes(schema1)).ok());
    ASSERT_TRUE((*w)->append(*s, ExpectedVersion::any(), event("e0")).ok());
    ASSERT_TRUE((*w)->append_system(lf::kTypeSchema, 7, as_bytes(schema2)).ok());
    EXPECT_EQ((*w)->next_position(), 1u) << "system records take no position";
    auto r2 = (*w)->append(*s, ExpectedVersion::any(), event("e1"));
    ASSERT_TRUE(r2.ok());
    EXPECT_EQ(r2.position, 1u);
    ASSERT_TRUE((*w)->close().ok());
  }
  auto r = LogReader::open(tmp.sub("log"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->end_position(), 2u);
  const auto& sys = (*r)->system_records();
  ASSERT_EQ(sys.size(), 2u);
  EXPECT_EQ(sys[0].type(), lf::kTypeSchema);
  EXPECT_EQ(sys[0].event_type(), 7u);
  EXPECT_EQ(as_chars(sys[0].payload()), schema1);
  EXPECT_EQ(as_chars(sys[1].payload()), schema2);
  EXPECT_FALSE(sys[0].is_event());
  RecordView v;
  ASSERT_TRUE((*r)->read(1, &v));
  EXPECT_EQ(as_chars(v.payload()), "e1");
}

TEST(LogReader, SystemRecordTypeWithoutTheIgnorableBitIsRejected) {
  TempDir tmp("reader_system_bad");
  auto w = LogWriter::open(tmp.sub("log"), small_log_options());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  Status st = (*w)->append_system(0x05, 1, as_bytes("x"));
  EXPECT_EQ(st.code(), StatusCode::invalid_argument) << st.to_string();
}

// A reader that meets a record type it does not know, with the ignorable bit, skips it.
TEST(LogReader, UnknownIgnorableRecordTypeIsSkipped) {
  TempDir tmp("reader_ignorable");
  {
    auto w = LogWriter::open(tmp.sub("log"), small_log_options());
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    auto s = (*w)->stream("s");
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*w)->append_system(0xC3, 0, as_bytes("from the future")).ok());
    ASSERT_TRUE((*w)->append(*s, ExpectedVersion::any(), event("e0")).ok());
    ASSERT_TRUE((*w)->close().ok());
  }
  auto r = LogReader::open(tmp.sub("log"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->end_position(), 1u);
  auto w = LogWriter::open(tmp.sub("log"), small_log_options());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_EQ((*w)->next_position(), 1u);
}

// --- refresh --------------------------------------------------------------------------------------

TEST(LogReader, RefreshPicksUpAppendsAndNewSegmentsOfAnOpenWriter) {
  TempDir tmp("reader_refresh");
  auto w = LogWriter::open(tmp.sub("log"), small_log_options());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  auto s = (*w)->stream("s");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(append_events(**w, *s, 10));
  auto r = LogReader::open(tmp.sub("log"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->end_position(), 10u);
  auto nothing = (*r)->refresh();
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(*nothing, 0u);
  ASSERT_TRUE(append_events(**w, *s, 2000));  // rolls twice or more
  ASSERT_GE((*w)->stats().segment_rolls, 2u);
  auto more = (*r)->refresh();
  ASSERT_TRUE(more.ok()) << more.status().to_string();
  EXPECT_EQ(*more, 2000u);
  EXPECT_EQ((*r)->end_position(), 2010u);
  EXPECT_EQ((*r)->stream_positions(*s).size(), 2010u);
  RecordView v;
  ASSERT_TRUE((*r)->read(2009, &v));
  EXPECT_EQ(as_chars(v.payload()), payload_for(2009));
}

}  // namespace
}  // namespace sluice
