// Fault injection through the FileOps seam: failed flushes (once, and for good), disk full at
// preallocation and when rolling mid-append. In every case: an error value (never SIGBUS),
// nothing acknowledged that was not flushed, a failed writer that refuses appends for good
// (a failed fsync is never retried), and after a restart with healthy FileOps everything
// acknowledged before is present with its bytes.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include "bus/log_test_util.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"

namespace sluice {
namespace {

using namespace sluice::testing;
using namespace std::chrono_literals;
using Call = FaultFileOps::Call;

// Large payloads: a 64 KiB segment holds ~15 events, so rolls come quickly even under sync.
constexpr size_t kBig = 4000;

class LogFaultTest : public ::testing::Test {
 protected:
  LogOptions options(Durability d) {
    LogOptions o = small_log_options(d);
    o.file_ops = &ops_;
    return o;
  }
  std::unique_ptr<LogWriter> open(Durability d) {
    auto w = LogWriter::open(dir(), options(d));
    EXPECT_TRUE(w.ok()) << w.status().to_string();
    return w.ok() ? std::move(w.value()) : nullptr;
  }
  std::string dir() const { return tmp_.sub(log_name_); }

  // After a restart with healthy FileOps: every position below `acknowledged` is there, and
  // whatever the log holds is a contiguous prefix with the right bytes.
  void expect_acknowledged_survive(uint64_t acknowledged, size_t payload_size) {
    auto w = LogWriter::open(dir(), small_log_options());
    ASSERT_TRUE(w.ok()) << "restart with healthy FileOps: " << w.status().to_string();
    const uint64_t end = (*w)->next_position();
    EXPECT_GE(end, acknowledged) << "acknowledged events were lost";
    auto s = (*w)->find_stream("s");
    ASSERT_TRUE(s.has_value());
    // It appends again, contiguously.
    const std::string p = payload_for(end, payload_size);
    AppendResult r = (*w)->append(*s, ExpectedVersion::any(), event(p));
    ASSERT_TRUE(r.ok()) << (*w)->last_error().to_string();
    EXPECT_EQ(r.position, end);
    ASSERT_TRUE((*w)->close().ok());
    expect_log_holds(dir(), end + 1, payload_size);
  }

  // Appends batches (of 1..3 events) until one fails (or `limit` appends); returns
  // acknowledged_position() after it. *failed_code gets the failing append's code.
  uint64_t append_until_failure(LogWriter& w, StreamId s, size_t payload_size, uint64_t limit,
                                AppendCode* failed_code) {
    *failed_code = AppendCode::ok;
    for (uint64_t i = 0; i < limit; ++i) {
      const uint64_t first = w.next_position();
      AppendResult r = append_batch(w, s, 1 + i % 3, payload_size);
      if (!r.ok()) {
        *failed_code = r.code;
        // Earlier appends may still be acknowledged (a group flush), the failed one never. (Its
        // records may be committed, as when the flush after them failed: they are in the page
        // cache, and may or may not survive; the caller was told that they are not durable.)
        EXPECT_LE(w.acknowledged_position(), first) << "a failed append was acknowledged";
        break;
      }
    }
    return w.acknowledged_position();
  }

  void expect_refuses_appends_for_good(LogWriter& w, StreamId s) {
    ops_.heal();  // even with a healthy disk: the failed flush is not retried
    EXPECT_TRUE(w.failed());
    const uint64_t acked = w.acknowledged_position();
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(w.append(s, ExpectedVersion::any(), event("refused")).code, AppendCode::closed);
      EXPECT_EQ(w.last_error().code(), StatusCode::closed);
    }
    EXPECT_FALSE(w.flush().ok());
    EXPECT_EQ(w.acknowledged_position(), acked);
  }

  TempDir tmp_{"fault"};
  std::string log_name_ = "log";
  FaultFileOps ops_;
};

// --- failed flushes -------------------------------------------------------------------------

TEST_F(LogFaultTest, SyncNthMsyncFailsOnceTheAppendIsNotAcknowledgedAndTheWriterFailsForGood) {
  for (uint64_t n : {1u, 2u, 7u, 20u, 45u}) {  // 45: after several rolls
    SCOPED_TRACE("msync #" + std::to_string(n) + " fails");
    log_name_ = "log_" + std::to_string(n);
    ops_.heal();
    auto w = open(Durability::sync);
    ASSERT_NE(w, nullptr);
    auto s = w->stream("s");
    ASSERT_TRUE(s.ok());
    ops_.fail_nth(Call::kMsync, n);
    AppendCode code;
    const uint64_t acked = append_until_failure(*w, *s, kBig, 1000, &code);
    ASSERT_EQ(code, AppendCode::io_error) << "no append failed";
    EXPECT_EQ(ops_.failures(Call::kMsync), 1u);
    EXPECT_NE(w->last_error().message().find("msync"), std::string::npos) << w->last_error().to_string();
    EXPECT_NE(w->failure().message().find("msync"), std::string::npos) << w->failure().to_string();
    expect_refuses_appends_for_good(*w, *s);
    w->close().ignore();
    w.reset();
    expect_acknowledged_survive(acked, kBig);
  }
}

TEST_F(LogFaultTest, SyncMsyncAlwaysFailingOnAnExistingLogFailsTheFirstAppend) {
  {
    auto w = open(Durability::sync);
    ASSERT_NE(w, nullptr);
    auto s = w->stream("s");
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(append_events(*w, *s, 4, kBig));
  }
  ops_.fail_always(Call::kMsync);
  auto w = open(Durability::sync);
  ASSERT_NE(w, nullptr);
  AppendResult r = w->append(1, ExpectedVersion::any(), event(payload_for(4, kBig)));
  EXPECT_EQ(r.code, AppendCode::io_error);
  EXPECT_EQ(w->acknowledged_position(), 4u);
  expect_refuses_appends_for_good(*w, 1);
  w->close().ignore();
  w.reset();
  expect_acknowledged_survive(4, kBig);
}

TEST_F(LogFaultTest, SyncMsyncAlwaysFailingRefusesToCreateALog) {
  ops_.fail_always(Call::kMsync);
  auto w = LogWriter::open(dir(), options(Durability::sync));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::io_error);
  EXPECT_NE(w.status().message().find("msync"), std::string::npos) << w.status().to_string();
  EXPECT_NE(w.status().message().find(segment_file(dir(), 0)), std::string::npos) << w.status().to_string();
}

TEST_F(LogFaultTest, GroupFlushFailureFailsWaitersAndTheWriterForGood) {
  auto w = open(Durability::group);
  ASSERT_NE(w, nullptr);
  auto s = w->stream("s");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(append_events(*w, *s, 10, 100));
  ASSERT_TRUE(w->wait_acknowledged(9, 30s).ok());
  ops_.fail_always(Call::kMsync);
  // Appends under group do not flush inline: they succeed, but are never acknowledged.
  ASSERT_TRUE(append_events(*w, *s, 5, 100));
  Status st = w->wait_acknowledged(14, 60s);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.code(), StatusCode::timeout) << "the flusher's failure must wake the waiter: " << st.to_string();
  EXPECT_NE(st.message().find("msync"), std::string::npos) << st.to_string();
  EXPECT_LT(w->acknowledged_position(), 15u);
  EXPECT_GE(w->acknowledged_position(), 10u);
  expect_refuses_appends_for_good(*w, *s);
  const uint64_t acked = w->acknowledged_position();
  w->close().ignore();
  w.reset();
  expect_acknowledged_survive(acked, 100);
}

TEST_F(LogFaultTest, SyncFdatasyncFailingWhilePreparingASegmentLosesNothing) {
  // fdatasync #1 flushes segment 0 at open; #2 is the maintenance thread preparing segment 1.
  ops_.fail_nth(Call::kFdatasync, 2);
  auto w = open(Durability::sync);
  ASSERT_NE(w, nullptr);
  auto s = w->stream("s");
  ASSERT_TRUE(s.ok());
  AppendCode code;
  const uint64_t acked = append_until_failure(*w, *s, kBig, 60, &code);
  // The preparation failed on a segment not yet in use: the roll makes the segment itself, and
  // appends go on.
  EXPECT_EQ(code, AppendCode::ok) << w->last_error().to_string();
  EXPECT_EQ(ops_.failures(Call::kFdatasync), 1u);
  EXPECT_GT(w->stats().segment_rolls, 2u);
  EXPECT_GT(w->stats().roll_waits, 0u);
  w->close().ignore();
  w.reset();
  expect_acknowledged_survive(acked, kBig);
}

// --- disk full ------------------------------------------------------------------------------------

TEST_F(LogFaultTest, DiskFullAtPreallocationOfTheFirstSegmentRefusesToOpen) {
  ops_.fail_always(Call::kFallocate, ENOSPC);
  auto w = LogWriter::open(dir(), options(Durability::none));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::io_error);
  EXPECT_NE(w.status().message().find("fallocate"), std::string::npos) << w.status().to_string();
  EXPECT_NE(w.status().message().find(std::strerror(ENOSPC)), std::string::npos) << w.status().to_string();
  EXPECT_FALSE(std::filesystem::exists(segment_file(dir(), 0))) << "a half-made segment was left behind";
}

class DiskFullWhenRolling : public LogFaultTest, public ::testing::WithParamInterface<Durability> {};

TEST_P(DiskFullWhenRolling, AppendThatNeedsANewSegmentFailsAndNothingAcknowledgedIsLost) {
  // The first fallocate makes segment 0 at open; every later one (the maintenance thread's
  // preparation, then the roll's own attempt) finds the disk full.
  ops_.arm(Call::kFallocate, 2, UINT64_MAX, ENOSPC);
  auto w = open(GetParam());
  ASSERT_NE(w, nullptr);
  auto s = w->stream("s");
  ASSERT_TRUE(s.ok());
  AppendCode code;
  const uint64_t acked = append_until_failure(*w, *s, kBig, 100, &code);
  ASSERT_EQ(code, AppendCode::io_error);
  EXPECT_EQ(w->stats().segment_rolls, 0u);
  EXPECT_GT(acked, 5u);
  EXPECT_NE(w->last_error().message().find(std::strerror(ENOSPC)), std::string::npos) << w->last_error().to_string();
  EXPECT_NE(w->last_error().message().find(segment_file(dir(), 1)), std::string::npos) << w->last_error().to_string();
  expect_refuses_appends_for_good(*w, *s);
  w->close().ignore();
  w.reset();
  expect_acknowledged_survive(acked, kBig);
}

INSTANTIATE_TEST_SUITE_P(Durability, DiskFullWhenRolling,
                         ::testing::Values(Durability::none, Durability::group, Durability::sync),
                         [](const ::testing::TestParamInfo<Durability>& i) { return std::string(to_string(i.param)); });

TEST_F(LogFaultTest, DiskFullOnceWhilePreparingIsRetriedByTheRoll) {
  ops_.fail_nth(Call::kFallocate, 2, ENOSPC);  // the maintenance thread's preparation
  auto w = open(Durability::none);
  ASSERT_NE(w, nullptr);
  auto s = w->stream("s");
  ASSERT_TRUE(s.ok());
  AppendCode code;
  const uint64_t acked = append_until_failure(*w, *s, kBig, 60, &code);
  EXPECT_EQ(code, AppendCode::ok) << w->last_error().to_string();
  EXPECT_EQ(ops_.failures(Call::kFallocate), 1u);
  EXPECT_GT(w->stats().segment_rolls, 2u);
  w->close().ignore();
  w.reset();
  expect_acknowledged_survive(acked, kBig);
}

TEST_F(LogFaultTest, MmapFailingAtARollIsAnErrorNotACrash) {
  ops_.arm(Call::kMmap, 2, UINT64_MAX, ENOMEM);  // #1: segment 0 at open
  auto w = open(Durability::none);
  ASSERT_NE(w, nullptr);
  auto s = w->stream("s");
  ASSERT_TRUE(s.ok());
  AppendCode code;
  const uint64_t acked = append_until_failure(*w, *s, kBig, 100, &code);
  ASSERT_EQ(code, AppendCode::io_error);
  EXPECT_NE(w->last_error().message().find("mmap"), std::string::npos) << w->last_error().to_string();
  ops_.heal();
  w->close().ignore();
  w.reset();
  expect_acknowledged_survive(acked, kBig);
}

}  // namespace
}  // namespace sluice
