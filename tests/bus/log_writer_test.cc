// LogWriter: appends and their results (expected version, too large, bad input, closed, busy),
// durability and acknowledgement, the commit listener, the allocation-free hot path, and a
// segment file removed from under the writer.
#include "sluice/bus/log_writer.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "bus/log_test_util.h"
#include "internal/record_codec.h"
#include "internal/segment.h"
#include "sluice/bus/log_reader.h"

#include "common/alloc_counter.h"

namespace sluice {
namespace {

using namespace sluice::testing;
using namespace std::chrono_literals;

class LogWriterTest : public ::testing::Test {
 protected:
  std::unique_ptr<LogWriter> open(LogOptions o = small_log_options()) {
    auto w = LogWriter::open(dir(), o);
    EXPECT_TRUE(w.ok()) << w.status().to_string();
    return w.ok() ? std::move(w.value()) : nullptr;
  }
  // Opens w_ and creates the stream `name` as s_.
  void open_with_stream(std::string_view name, LogOptions o = small_log_options()) {
    w_ = open(o);
    ASSERT_NE(w_, nullptr);
    auto s = w_->stream(name);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    s_ = *s;
  }
  std::string dir() const { return tmp_.sub("log"); }
  TempDir tmp_{"writer"};
  std::unique_ptr<LogWriter> w_;
  StreamId s_ = 0;
};

TEST_F(LogWriterTest, AppendsAndReadsBack) {
  {
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto s = w->stream("acct-1");
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 0; i < 2000; ++i) {
      const std::string p = payload_for(i);
      AppendResult r = w->append(*s, ExpectedVersion::exact(i), event(p, 7));
      ASSERT_TRUE(r.ok()) << w->last_error().to_string();
      ASSERT_EQ(r.position, i);
      ASSERT_EQ(r.stream_version, i + 1);
    }
    EXPECT_GT(w->stats().segment_rolls, 0u);
    EXPECT_EQ(w->stats().events, 2000u);
  }
  expect_log_holds(dir(), 2000);
}

TEST_F(LogWriterTest, ReopenContinuesPositionsAndStreamVersions) {
  {
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto a = w->stream("a");
    auto b = w->stream("b");
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_TRUE(append_events(*w, *a, 5));
    ASSERT_TRUE(append_events(*w, *b, 3));
  }
  auto w = open();
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->next_position(), 8u);
  EXPECT_EQ(w->stream_count(), 2u);
  ASSERT_EQ(w->find_stream("b"), StreamId{2});
  EXPECT_EQ(w->stream_version(2), 3u);
  EXPECT_EQ(w->stream_name(1), "a");
  auto again = w->stream("a");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, StreamId{1}) << "an existing stream keeps its id";
  AppendResult r = w->append(2, ExpectedVersion::exact(3), event(payload_for(8)));
  ASSERT_TRUE(r.ok()) << w->last_error().to_string();
  EXPECT_EQ(r.position, 8u);
  EXPECT_EQ(r.stream_version, 4u);
}

// --- expected version -------------------------------------------------------------------------

TEST_F(LogWriterTest, ExpectedVersionAnyAppendsWhateverTheVersion) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s"));
  for (uint64_t i = 0; i < 3; ++i) {
    AppendResult r = w_->append(s_, ExpectedVersion::any(), event("x"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.stream_version, i + 1);
  }
}

TEST_F(LogWriterTest, ExpectedNoStreamSucceedsOnlyOnAnEmptyStream) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream("order-17"));
  ASSERT_TRUE(w_->append(s_, ExpectedVersion::no_stream(), event("created")).ok());
  AppendResult r = w_->append(s_, ExpectedVersion::no_stream(), event("created again"));
  EXPECT_EQ(r.code, AppendCode::conflict);
  EXPECT_EQ(w_->last_error().code(), StatusCode::conflict);
  EXPECT_NE(w_->last_error().message().find("order-17"), std::string::npos) << w_->last_error().message();
  EXPECT_EQ(w_->next_position(), 1u) << "a conflict appends nothing";
  EXPECT_EQ(w_->stream_version(s_), 1u);
}

TEST_F(LogWriterTest, ExpectedExactVersionMismatchIsConflictNamingTheStream) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream("account-9"));
  ASSERT_TRUE(w_->append(s_, ExpectedVersion::exact(0), event("v1")).ok());
  ASSERT_TRUE(w_->append(s_, ExpectedVersion::exact(1), event("v2")).ok());
  for (uint64_t wrong : {0u, 1u, 3u, 100u}) {
    AppendResult r = w_->append(s_, ExpectedVersion::exact(wrong), event("stale"));
    EXPECT_EQ(r.code, AppendCode::conflict) << wrong;
    const std::string& m = w_->last_error().message();
    EXPECT_NE(m.find("'account-9'"), std::string::npos) << m;
    EXPECT_NE(m.find("expected version " + std::to_string(wrong)), std::string::npos) << m;
    EXPECT_NE(m.find("current version 2"), std::string::npos) << m;
  }
  EXPECT_EQ(w_->next_position(), 2u);
  EXPECT_FALSE(w_->failed()) << "a conflict is a normal result, not a failure";
  EXPECT_TRUE(w_->append(s_, ExpectedVersion::exact(2), event("v3")).ok());
}

TEST_F(LogWriterTest, ConflictingBatchAppendsNoneOfItsEvents) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s"));
  ASSERT_TRUE(append_events(*w_, s_, 2));
  std::vector<EventData> batch(3, event("b"));
  AppendResult r = w_->append(s_, ExpectedVersion::exact(1), batch);
  EXPECT_EQ(r.code, AppendCode::conflict);
  EXPECT_EQ(w_->next_position(), 2u);
  w_->close().ignore();
  expect_log_holds(dir(), 2);
}

// --- bad input ----------------------------------------------------------------------------------

TEST_F(LogWriterTest, EventLargerThanASegmentIsTooLarge) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream("big"));
  const std::string huge(log_format::kMinSegmentSize, 'x');
  AppendResult r = w_->append(s_, ExpectedVersion::any(), event(huge));
  EXPECT_EQ(r.code, AppendCode::too_large);
  EXPECT_EQ(w_->last_error().code(), StatusCode::too_large);
  EXPECT_NE(w_->last_error().message().find("'big'"), std::string::npos) << w_->last_error().message();
  EXPECT_FALSE(w_->failed());
  EXPECT_TRUE(w_->append(s_, ExpectedVersion::no_stream(), event("small")).ok());
}

TEST_F(LogWriterTest, BatchLargerThanASegmentIsTooLargeAndAppendsNothing) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s"));
  const std::string chunk(16 * 1024, 'x');
  std::vector<EventData> batch(5, event(chunk));  // 80 KiB in a 64 KiB segment
  EXPECT_EQ(w_->append(s_, ExpectedVersion::any(), batch).code, AppendCode::too_large);
  EXPECT_EQ(w_->next_position(), 0u);
  batch.resize(3);  // 48 KiB fits
  EXPECT_TRUE(w_->append(s_, ExpectedVersion::any(), batch).ok()) << w_->last_error().to_string();
}

TEST_F(LogWriterTest, LargestEventThatFitsIsAccepted) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s"));
  ASSERT_TRUE(append_events(*w_, s_, 3));  // not at the start of a segment: forces a roll
  const size_t room = log_format::kMinSegmentSize - log_format::kSegmentHeaderSize - log_format::kSealReserve;
  const std::string max(room - log_format::kRecordHeaderSize, 'm');
  AppendResult r = w_->append(s_, ExpectedVersion::any(), event(max));
  ASSERT_TRUE(r.ok()) << w_->last_error().to_string();
  const std::string over(room - log_format::kRecordHeaderSize + 1, 'o');
  EXPECT_EQ(w_->append(s_, ExpectedVersion::any(), event(over)).code, AppendCode::too_large);
  w_->close().ignore();
  auto rd = LogReader::open(dir());
  ASSERT_TRUE(rd.ok()) << rd.status().to_string();
  RecordView v;
  ASSERT_TRUE((*rd)->read(3, &v));
  EXPECT_EQ(v.payload().size(), max.size());
}

TEST_F(LogWriterTest, UnknownStreamIdIsInvalidArgument) {
  auto w = open();
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->stream("only").ok());
  for (StreamId bad : {StreamId{0}, StreamId{2}, StreamId{1000}}) {
    EXPECT_EQ(w->append(bad, ExpectedVersion::any(), event("x")).code, AppendCode::invalid_argument) << bad;
    EXPECT_NE(w->last_error().message().find(std::to_string(bad)), std::string::npos) << w->last_error().message();
  }
  EXPECT_EQ(w->next_position(), 0u);
}

TEST_F(LogWriterTest, EmptyBatchIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s"));
  EXPECT_EQ(w_->append(s_, ExpectedVersion::any(), std::span<const EventData>()).code, AppendCode::invalid_argument);
  EXPECT_EQ(w_->last_error().code(), StatusCode::invalid_argument);
  EXPECT_EQ(w_->next_position(), 0u);
}

TEST_F(LogWriterTest, StreamNameMustBeOneTo1024Bytes) {
  auto w = open();
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->stream("").status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(w->stream(std::string(1025, 'n')).status().code(), StatusCode::invalid_argument);
  EXPECT_TRUE(w->stream(std::string(1024, 'n')).ok());
}

TEST_F(LogWriterTest, StreamNameMustBeUtf8WithoutNul) {
  auto w = open();
  ASSERT_NE(w, nullptr);
  // Well-formed: ASCII, 2-, 3- and 4-byte sequences (é, €, U+10FFFF), quotes and backslashes.
  for (std::string ok : {std::string("orders-\"42\"\\"), std::string("caf\xC3\xA9"), std::string("\xE2\x82\xAC"),
                         std::string("\xF4\x8F\xBF\xBF")})
    EXPECT_TRUE(w->stream(ok).ok()) << ok;
  const std::string bad[] = {
      std::string("a\0b", 3),        // NUL
      "caf\xC3",                     // truncated sequence
      "\xC0\xAF",                    // overlong '/'
      "\xED\xA0\x80",                // a surrogate (U+D800)
      "\xF4\x90\x80\x80",            // past U+10FFFF
      "\xFF",                         // never in UTF-8
      "ok\x80",                       // a lone continuation byte
  };
  for (const std::string& b : bad) {
    auto s = w->stream(b);
    ASSERT_FALSE(s.ok()) << "accepted a name that is not UTF-8 without NUL";
    EXPECT_EQ(s.status().code(), StatusCode::invalid_argument);
    EXPECT_NE(s.status().message().find("UTF-8"), std::string::npos) << s.status().to_string();
  }
  EXPECT_EQ(w->stream_count(), 4u) << "a refused name defined no stream";
}

TEST_F(LogWriterTest, SegmentSizeOutOfRangeIsInvalidArgument) {
  for (uint64_t size : {uint64_t{4096}, log_format::kMinSegmentSize + 1, (log_format::kMaxSegmentSize << 1)}) {
    LogOptions o = small_log_options();
    o.segment_size = size;
    auto w = LogWriter::open(dir(), o);
    ASSERT_FALSE(w.ok()) << size;
    EXPECT_EQ(w.status().code(), StatusCode::invalid_argument);
  }
}

TEST_F(LogWriterTest, MissingDirectoryWithoutCreateIsNotFound) {
  LogOptions o = small_log_options();
  o.create_if_missing = false;
  auto w = LogWriter::open(dir(), o);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::not_found);
  EXPECT_NE(w.status().message().find(dir()), std::string::npos) << w.status().message();
}

// --- closed and busy --------------------------------------------------------------------------

TEST_F(LogWriterTest, ClosedWriterRefusesAppends) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s"));
  ASSERT_TRUE(w_->close().ok());
  EXPECT_EQ(w_->append(s_, ExpectedVersion::any(), event("late")).code, AppendCode::closed);
  EXPECT_EQ(w_->last_error().code(), StatusCode::closed);
  EXPECT_EQ(w_->append_system(log_format::kTypeSchema, 1, as_bytes("s")).code(), StatusCode::closed);
  EXPECT_TRUE(w_->close().ok()) << "closing twice is harmless";
}

TEST_F(LogWriterTest, SecondWriterOnTheSameDirectoryIsBusy) {
  auto first = open();
  ASSERT_NE(first, nullptr);
  auto second = LogWriter::open(dir(), small_log_options());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::busy);
  EXPECT_NE(second.status().message().find(dir()), std::string::npos) << second.status().message();
  // The refused open changed nothing: the first writer goes on, and after it closes a new
  // writer may open.
  auto s = first->stream("s");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(append_events(*first, *s, 3));
  ASSERT_TRUE(first->close().ok());
  auto third = open();
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->next_position(), 3u);
}

// --- durability and acknowledgement -------------------------------------------------------------

int64_t fixed_clock() { return 1'795'000'000'123'456'789; }

// Appends the same events (single and batched, payloads of 0..300 bytes, with and without
// ids, across several segment rolls) to `dir` with a fixed clock.
void append_mixed_events(const std::string& dir) {
  LogOptions o = small_log_options();
  o.clock_ns = fixed_clock;
  auto w = LogWriter::open(dir, o);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  auto s = (*w)->stream("mixed");
  ASSERT_TRUE(s.ok());
  std::vector<std::byte> bytes(300);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i * 7 + 1);
  for (uint32_t i = 0; i < 2000; ++i) {
    EventData e[3];
    for (uint32_t k = 0; k < 3; ++k) {
      e[k].type = i + k;
      e[k].payload = std::span<const std::byte>(bytes.data() + (i % 5), (i * 37 + k * 11) % 290);
      if (i % 7 == 0) e[k].correlation_id = Id128{i + 1ull, 2};
      if (i % 11 == 0) e[k].idempotency_key = Id128{3, i + 1ull};
    }
    const size_t n = i % 4 == 0 ? 3 : 1;
    AppendResult r = (*w)->append(*s, ExpectedVersion::any(), std::span<const EventData>(e, n));
    ASSERT_TRUE(r.ok()) << (*w)->last_error().to_string();
  }
  EXPECT_GT((*w)->stats().segment_rolls, 3u);
  ASSERT_TRUE((*w)->close().ok());
}

TEST_F(LogWriterTest, FusedAndPortableAppendPathsWriteTheSameBytes) {
  const std::string fused = tmp_.sub("fused"), portable = tmp_.sub("portable");
  append_mixed_events(fused);
  log_internal::set_fused_encoder_enabled_for_testing(false);
  append_mixed_events(portable);
  log_internal::set_fused_encoder_enabled_for_testing(true);
  size_t segments = 0;
  for (const auto& entry : std::filesystem::directory_iterator(fused)) {
    if (entry.path().extension() != ".seg") continue;
    ++segments;
    EXPECT_EQ(read_file(entry.path().string()),
              read_file(portable + "/" + entry.path().filename().string()))
        << entry.path().filename();
  }
  EXPECT_GT(segments, 3u);
  auto r = LogReader::open(portable);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
}

// Fills segment 0 of `w` (kMinSegmentSize) with records of 64-byte payloads whose header is
// `header` bytes, then appends one record of `e`'s ids ending `extra` bytes past the room kept
// for the seal, and returns its result (the stream "edge" was the first record).
AppendResult append_at_segment_edge(LogWriter& w, StreamId s, EventData e, uint64_t header, uint64_t extra) {
  namespace lf = log_format;
  const uint64_t room = lf::kMinSegmentSize - lf::kSealReserve;
  uint64_t used = lf::kSegmentHeaderSize + lf::align_up(lf::kRecordHeaderSize + 4);  // "edge"
  static const std::vector<std::byte> bytes(256, std::byte{0x42});
  e.payload = std::span<const std::byte>(bytes.data(), 64);
  const uint64_t record = lf::align_up(header + 64);
  while (room - used > 248 + header) {
    const AppendResult r = w.append(s, ExpectedVersion::any(), e);
    if (!r.ok()) return r;
    used += record;
  }
  e.payload = std::span<const std::byte>(bytes.data(), room - used - header + extra);
  return w.append(s, ExpectedVersion::any(), e);
}

// The one-event fast path writes a record in place only when it fits before the room kept
// for the segment's seal, and hands it to the general path (which rolls) otherwise: a record
// that ends exactly there stays in the segment, one 8 bytes longer goes to the next.
TEST_F(LogWriterTest, RecordThatExactlyFillsTheSegmentStaysAndOneLongerRolls) {
  namespace lf = log_format;
  for (const uint64_t extra : {0u, 8u}) {
    SCOPED_TRACE("record longer than the room left by " + std::to_string(extra));
    const std::string d = tmp_.sub("edge" + std::to_string(extra));
    auto w = LogWriter::open(d, small_log_options());
    ASSERT_TRUE(w.ok());
    auto s = (*w)->stream("edge");
    ASSERT_TRUE(s.ok());
    // 120-byte records, then a payload of at most 256 bytes, no ids: the fast path's kind.
    EventData e;
    const AppendResult last = append_at_segment_edge(**w, *s, e, lf::kRecordHeaderSize, extra);
    ASSERT_TRUE(last.ok()) << (*w)->last_error().to_string();
    EXPECT_EQ((*w)->stats().segment_rolls, extra == 0 ? 0u : 1u);
    EXPECT_EQ((*w)->segment_index(), extra == 0 ? 0u : 1u);
    e.payload = {};
    const AppendResult next = (*w)->append(*s, ExpectedVersion::any(), e);
    ASSERT_TRUE(next.ok()) << (*w)->last_error().to_string();
    EXPECT_EQ((*w)->segment_index(), 1u);
    ASSERT_TRUE((*w)->close().ok());
    auto r = LogReader::open(d);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const LogInfo info = (*r)->info();
    EXPECT_EQ(info.end_position, next.position + 1);
    EXPECT_EQ(info.segments.size(), 2u);
    EXPECT_FALSE(info.tail_damaged);
  }
}

// The same edge for a one-event record with ids (a keyed command's event), which the fast
// path writes too: 32 bytes of ids (key, causation) after the header.
TEST_F(LogWriterTest, RecordWithIdsThatExactlyFillsTheSegmentStaysAndOneLongerRolls) {
  namespace lf = log_format;
  for (const uint64_t extra : {0u, 8u}) {
    SCOPED_TRACE("record longer than the room left by " + std::to_string(extra));
    const std::string d = tmp_.sub("ids-edge" + std::to_string(extra));
    auto w = LogWriter::open(d, small_log_options());
    ASSERT_TRUE(w.ok());
    auto s = (*w)->stream("edge");
    ASSERT_TRUE(s.ok());
    EventData e;
    e.idempotency_key = Id128{5, 6};
    e.causation_id = Id128{7, 8};
    // 152-byte records, then the edge record, all with the two ids.
    const AppendResult last = append_at_segment_edge(**w, *s, e, lf::kRecordHeaderSize + 2 * lf::kIdSize, extra);
    ASSERT_TRUE(last.ok()) << (*w)->last_error().to_string();
    EXPECT_EQ((*w)->stats().segment_rolls, extra == 0 ? 0u : 1u);
    EXPECT_EQ((*w)->segment_index(), extra == 0 ? 0u : 1u);
    ASSERT_TRUE((*w)->close().ok());
    auto r = LogReader::open(d);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_FALSE((*r)->info().tail_damaged);
    RecordView v;
    uint64_t n = 0;
    for (auto c = (*r)->cursor(0); c.next(&v);) {
      if (v.stream_id() != *s) continue;
      ++n;
      EXPECT_EQ(v.idempotency_key(), e.idempotency_key);
      EXPECT_EQ(v.causation_id(), e.causation_id);
    }
    EXPECT_EQ(n, last.stream_version);
  }
}

TEST_F(LogWriterTest, PreparedSegmentsOutOfRangeIsInvalidArgument) {
  for (const uint32_t n : {0u, 9u}) {
    LogOptions o = small_log_options();
    o.prepared_segments = n;
    auto w = LogWriter::open(dir(), o);
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.status().code(), StatusCode::invalid_argument);
    EXPECT_NE(w.status().message().find("prepared_segments"), std::string::npos) << w.status().to_string();
  }
}

// The maintenance thread keeps prepared_segments segments made ahead (wait_prepared() returns
// once all of them exist); rolls use them in order, and close removes the ones never used.
TEST_F(LogWriterTest, KeepsTheConfiguredNumberOfSegmentsPreparedAndCloseRemovesThem) {
  LogOptions o = small_log_options();
  o.prepared_segments = 3;
  open_with_stream("ahead", o);
  auto prepared_now = [&] {
    auto r = LogReader::open(dir());
    return r.ok() ? (*r)->info().prepared_segments : size_t{0};
  };
  EXPECT_TRUE(w_->wait_prepared(10s));
  EXPECT_EQ(prepared_now(), 3u);
  ASSERT_TRUE(append_events(*w_, s_, 2000, 200));  // ~256 bytes each: several rolls
  EXPECT_GT(w_->stats().segment_rolls, 4u);
  ASSERT_TRUE(w_->close().ok());
  auto r = LogReader::open(dir());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->info().prepared_segments, 0u);
  EXPECT_EQ((*r)->end_position(), 2000u);
  EXPECT_EQ((*r)->info().segments.size(), w_->stats().segment_rolls + 1);
}

TEST_F(LogWriterTest, MaintenanceCpuOutOfRangeIsInvalidArgumentAndCpuZeroWorks) {
  LogOptions o = small_log_options();
  o.maintenance_cpu = 1 << 20;
  auto w = LogWriter::open(dir(), o);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(w.status().message().find("maintenance_cpu"), std::string::npos) << w.status().to_string();
  o.maintenance_cpu = 0;
  auto w2 = LogWriter::open(dir(), o);
  ASSERT_TRUE(w2.ok()) << w2.status().to_string();
}

// The maintenance thread's slices yield only where it may share a CPU with a hot thread:
// placed apart from a pinned opener (or pinned by maintenance_cpu to a CPU no hot thread
// uses), a yield could only lend the CPU to another process.
TEST_F(LogWriterTest, MaintenanceThreadYieldsOnlyWhereItMayShareACpuWithAHotThread) {
  LogOptions o = small_log_options();
  o.maintenance_cpu = 0;
  o.maintenance_avoid_cpus = 1;  // CPU 0 is a hot thread's: keep yielding there
  {
    auto w = LogWriter::open(dir(), o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    ASSERT_NE((*w)->background_pacer(), nullptr);
    EXPECT_TRUE((*w)->background_pacer()->yielding());
    ASSERT_TRUE((*w)->close().ok());
  }
  cpu_set_t mine;
  ASSERT_EQ(::sched_getaffinity(0, sizeof mine, &mine), 0);
  if (CPU_COUNT(&mine) < 2) GTEST_SKIP() << "one CPU: the maintenance thread cannot be placed apart";
  int first = 0;
  while (!CPU_ISSET(first, &mine)) ++first;
  int second = first + 1;
  while (!CPU_ISSET(second, &mine)) ++second;
  o.maintenance_avoid_cpus = 0;
  o.maintenance_cpu = first;
  {
    // The opener not pinned: it may run on that CPU too, so the slices still yield.
    auto w = LogWriter::open(dir(), o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    EXPECT_TRUE((*w)->background_pacer()->yielding());
    ASSERT_TRUE((*w)->close().ok());
  }
  // The opener pinned to one CPU: with maintenance_cpu on another, and by default (the
  // thread goes to the process's other CPUs), the maintenance thread is apart.
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(second, &one);
  ASSERT_EQ(::pthread_setaffinity_np(::pthread_self(), sizeof one, &one), 0);
  auto pinned = LogWriter::open(dir(), o);
  if (!pinned.ok()) {
    ::pthread_setaffinity_np(::pthread_self(), sizeof mine, &mine);
    FAIL() << pinned.status().to_string();
  }
  const bool pinned_yields = (*pinned)->background_pacer()->yielding();
  const bool pinned_closed = (*pinned)->close().ok();
  o.maintenance_cpu = -1;
  auto w = LogWriter::open(dir(), o);
  ASSERT_EQ(::pthread_setaffinity_np(::pthread_self(), sizeof mine, &mine), 0);
  EXPECT_FALSE(pinned_yields);
  EXPECT_TRUE(pinned_closed);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_FALSE((*w)->background_pacer()->yielding());
  ASSERT_TRUE((*w)->close().ok());
}

TEST_F(LogWriterTest, DurabilityNoneAcknowledgesOnAppend) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s", small_log_options(Durability::none)));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(w_->append(s_, ExpectedVersion::any(), event("n")).ok());
    EXPECT_EQ(w_->acknowledged_position(), w_->next_position());
    EXPECT_EQ(w_->committed_position(), w_->next_position());
  }
}

TEST_F(LogWriterTest, DurabilitySyncAcknowledgesEachAppendBeforeItReturns) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s", small_log_options(Durability::sync)));
  for (int i = 0; i < 20; ++i) {
    AppendResult r = append_batch(*w_, s_, 1 + i % 3);
    ASSERT_TRUE(r.ok()) << w_->last_error().to_string();
    EXPECT_EQ(w_->acknowledged_position(), w_->next_position());
  }
  EXPECT_GE(w_->stats().flushes, 20u);
  EXPECT_TRUE(w_->wait_acknowledged(w_->next_position() - 1, 0ms).ok());
}

TEST_F(LogWriterTest, DurabilityGroupAcknowledgesAfterAGroupFlush) {
  LogOptions o = small_log_options(Durability::group);
  o.group_interval = 500us;
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s", o));
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(append_events(*w_, s_, 50));
    const uint64_t last = w_->next_position() - 1;
    EXPECT_LE(w_->acknowledged_position(), w_->committed_position());
    Status st = w_->wait_acknowledged(last, 30s);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_GT(w_->acknowledged_position(), last);
  }
}

TEST_F(LogWriterTest, DurabilityGroupFlushesEarlyOnceGroupMaxEventsWait) {
  LogOptions o = small_log_options(Durability::group);
  o.group_interval = std::chrono::microseconds(std::chrono::hours(1));  // only size triggers
  o.group_max_events = 16;
  o.health_check_interval = std::chrono::hours(1);
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s", o));
  ASSERT_TRUE(append_events(*w_, s_, 16));
  Status st = w_->wait_acknowledged(15, 30s);
  ASSERT_TRUE(st.ok()) << st.to_string();
}

TEST_F(LogWriterTest, WaitAcknowledgedFromAnotherThread) {
  LogOptions o = small_log_options(Durability::group);
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s", o));
  Status waited;
  std::thread waiter([&] { waited = w_->wait_acknowledged(99, 30s); });
  ASSERT_TRUE(append_events(*w_, s_, 100));
  waiter.join();
  EXPECT_TRUE(waited.ok()) << waited.to_string();
  EXPECT_GE(w_->acknowledged_position(), 100u);
}

TEST_F(LogWriterTest, WaitAcknowledgedForAPositionNeverAppendedTimesOut) {
  auto w = open(small_log_options(Durability::group));
  ASSERT_NE(w, nullptr);
  Status st = w->wait_acknowledged(5, 1ms);
  EXPECT_EQ(st.code(), StatusCode::timeout) << st.to_string();
}

TEST_F(LogWriterTest, FlushAcknowledgesEverythingAppended) {
  LogOptions o = small_log_options(Durability::group);
  o.group_interval = std::chrono::microseconds(std::chrono::hours(1));
  o.group_max_events = 1u << 30;
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s", o));
  ASSERT_TRUE(append_events(*w_, s_, 10));
  ASSERT_TRUE(w_->flush().ok());
  EXPECT_EQ(w_->acknowledged_position(), 10u);
}

// --- commit listener -----------------------------------------------------------------------------

class RecordingListener : public CommitListener {
 public:
  struct Call {
    uint64_t position;
    uint64_t stream_version;
    std::string payload;
    bool end_of_batch;
  };
  void on_commit(const RecordView& v, bool end_of_batch) noexcept override {
    calls.push_back(Call{v.position(), v.stream_version(), std::string(as_chars(v.payload())), end_of_batch});
  }
  std::vector<Call> calls;
};

TEST_F(LogWriterTest, CommitListenerIsCalledOncePerEventWithEndOfBatchOnTheLast) {
  RecordingListener listener;
  LogOptions o = small_log_options();
  o.commit_listener = &listener;
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s", o));
  EXPECT_TRUE(listener.calls.empty()) << "stream records are not events";
  const size_t sizes[] = {1, 3, 1, 5};
  uint64_t pos = 0;
  for (size_t n : sizes) {
    const size_t before = listener.calls.size();
    ASSERT_TRUE(append_batch(*w_, s_, n).ok());
    ASSERT_EQ(listener.calls.size(), before + n) << "called before append returns, once per event";
    for (size_t i = 0; i < n; ++i, ++pos) {
      const auto& c = listener.calls[before + i];
      EXPECT_EQ(c.position, pos);
      EXPECT_EQ(c.stream_version, pos + 1);
      EXPECT_EQ(c.payload, payload_for(pos));
      EXPECT_EQ(c.end_of_batch, i + 1 == n) << "event " << i << " of a batch of " << n;
    }
  }
  // Rejected appends are not reported.
  const size_t before = listener.calls.size();
  EXPECT_EQ(w_->append(s_, ExpectedVersion::exact(0), event("x")).code, AppendCode::conflict);
  EXPECT_EQ(w_->append_system(log_format::kTypeSchema, 1, as_bytes("schema")).code(), StatusCode::ok);
  EXPECT_EQ(listener.calls.size(), before);
}

// --- the hot path -------------------------------------------------------------------------------

TEST_F(LogWriterTest, AppendWithDurabilityNoneDoesNoHeapAllocation) {
  LogOptions o = small_log_options(Durability::none);
  o.prefault = true;
  ASSERT_NO_FATAL_FAILURE(open_with_stream("hot", o));
  const std::string payload(64, 'h');
  EventData e = event(payload);
  e.idempotency_key = {1, 2};
  EventData batch[4] = {e, e, e, e};
  ASSERT_TRUE(w_->append(s_, ExpectedVersion::any(), e).ok());  // warm up
  const uint64_t rolls_before = w_->stats().segment_rolls;
  uint64_t failures = 0;
  g_allocations = 0;
  t_counting = true;
  for (int i = 0; i < 5000; ++i) {
    if (!w_->append(s_, ExpectedVersion::any(), e).ok()) ++failures;
    if (!w_->append(s_, ExpectedVersion::any(), batch).ok()) ++failures;
  }
  t_counting = false;
  EXPECT_EQ(failures, 0u) << w_->last_error().to_string();
  EXPECT_GT(w_->stats().segment_rolls - rolls_before, 10u) << "the measured appends include segment rolls";
  EXPECT_EQ(g_allocations.load(), 0u) << "heap allocations on the append hot path; rolls " << w_->stats().segment_rolls - rolls_before << ", roll waits " << w_->stats().roll_waits;
}

TEST(AllocationCounter, CountsAllocationsOnThisThread) {
  // The control for the test above: the counter does see allocations.
  g_allocations = 0;
  t_counting = true;
  auto* p = new std::string(100, 'x');
  void* m = std::malloc(10);  // NOLINT
  t_counting = false;
  delete p;
  std::free(m);
  EXPECT_GE(g_allocations.load(), 2u);
}

// --- a segment file removed from under the writer --------------------------------------------

TEST_F(LogWriterTest, SegmentFileRemovedFromUnderTheWriterFailsItWithAClearError) {
  LogOptions o = small_log_options();
  o.health_check_interval = 5ms;
  ASSERT_NO_FATAL_FAILURE(open_with_stream("s", o));
  ASSERT_TRUE(append_events(*w_, s_, 10));
  const std::string victim = segment_file(dir(), w_->segment_index());
  ASSERT_TRUE(std::filesystem::remove(victim));
  // The maintenance thread notices at its next health check; no timing is asserted, only that
  // it happens.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!w_->failed() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(w_->failed()) << "the writer did not notice that its segment was removed";
  EXPECT_NE(w_->failure().message().find(victim), std::string::npos) << w_->failure().to_string();
  EXPECT_NE(w_->failure().message().find("removed"), std::string::npos) << w_->failure().to_string();
  const uint64_t next = w_->next_position();
  AppendResult r = w_->append(s_, ExpectedVersion::any(), event("after"));
  EXPECT_EQ(r.code, AppendCode::closed);
  EXPECT_NE(w_->last_error().message().find("removed"), std::string::npos) << w_->last_error().to_string();
  EXPECT_EQ(w_->next_position(), next);
  EXPECT_EQ(w_->wait_acknowledged(next, 0ms).code(), StatusCode::closed);
  EXPECT_FALSE(w_->stream("new").ok());
  w_->close().ignore();
}

}  // namespace
}  // namespace sluice
