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
namespace lf = log_format;

// Large payloads: a 64 KiB segment holds ~15 events, so rolls come quickly even under sync.
constexpr size_t kBig = 4000;

class LogFaultTest : public ::testing::Test {
 protected:
  LogOptions options(Durability d) {
    LogOptions o = small_log_options(d);
    o.file_ops = &ops_;
    o.prefault = true;  // the default segment preparation path, fault-injected too
    return o;
  }
  std::unique_ptr<LogWriter> open(Durability d) {
    auto w = LogWriter::open(dir(), options(d));
    EXPECT_TRUE(w.ok()) << w.status().to_string();
    return w.ok() ? std::move(w.value()) : nullptr;
  }
  std::string dir() const { return tmp_.sub(log_name_); }

  // Opens w_ with the faulty FileOps, and its stream "s" as s_.
  void open_with_stream(Durability d) {
    w_ = open(d);
    ASSERT_NE(w_, nullptr);
    auto s = w_->stream("s");
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    s_ = *s;
  }
  // Closes w_, whatever state it is in, and checks the log after a restart with healthy
  // FileOps (expect_acknowledged_survive).
  void restart_and_expect_acknowledged(uint64_t acknowledged, size_t payload_size) {
    w_->close().ignore();
    w_.reset();
    expect_acknowledged_survive(acknowledged, payload_size);
  }

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
  std::unique_ptr<LogWriter> w_;
  StreamId s_ = 0;
};

// --- failed flushes -------------------------------------------------------------------------

TEST_F(LogFaultTest, SyncNthMsyncFailsOnceTheAppendIsNotAcknowledgedAndTheWriterFailsForGood) {
  for (uint64_t n : {1u, 2u, 7u, 20u, 45u}) {  // 45: after several rolls
    SCOPED_TRACE("msync #" + std::to_string(n) + " fails");
    log_name_ = "log_" + std::to_string(n);
    ops_.heal();
    ASSERT_NO_FATAL_FAILURE(open_with_stream(Durability::sync));
    ops_.fail_nth(Call::kMsync, n);
    AppendCode code;
    const uint64_t acked = append_until_failure(*w_, s_, kBig, 1000, &code);
    ASSERT_EQ(code, AppendCode::io_error) << "no append failed";
    EXPECT_EQ(ops_.failures(Call::kMsync), 1u);
    EXPECT_NE(w_->last_error().message().find("msync"), std::string::npos) << w_->last_error().to_string();
    EXPECT_NE(w_->failure().message().find("msync"), std::string::npos) << w_->failure().to_string();
    expect_refuses_appends_for_good(*w_, s_);
    restart_and_expect_acknowledged(acked, kBig);
  }
}

TEST_F(LogFaultTest, SyncMsyncAlwaysFailingOnAnExistingLogFailsTheOpen) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream(Durability::sync));
  ASSERT_TRUE(append_events(*w_, s_, 4, kBig));
  ASSERT_TRUE(w_->close().ok());
  w_.reset();
  // Open flushes what it recovered before it moves the durable watermark: that flush fails.
  ops_.fail_always(Call::kMsync);
  auto w = LogWriter::open(dir(), options(Durability::sync));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::io_error);
  EXPECT_NE(w.status().message().find("msync"), std::string::npos) << w.status().to_string();
  ops_.heal();
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
  ASSERT_NO_FATAL_FAILURE(open_with_stream(Durability::group));
  ASSERT_TRUE(append_events(*w_, s_, 10, 100));
  ASSERT_TRUE(w_->wait_acknowledged(9, 30s).ok());
  ops_.fail_always(Call::kMsync);
  // Appends under group do not flush inline: they succeed, but are never acknowledged.
  ASSERT_TRUE(append_events(*w_, s_, 5, 100));
  Status st = w_->wait_acknowledged(14, 60s);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.code(), StatusCode::timeout) << "the flusher's failure must wake the waiter: " << st.to_string();
  EXPECT_NE(st.message().find("msync"), std::string::npos) << st.to_string();
  EXPECT_LT(w_->acknowledged_position(), 15u);
  EXPECT_GE(w_->acknowledged_position(), 10u);
  expect_refuses_appends_for_good(*w_, s_);
  restart_and_expect_acknowledged(w_->acknowledged_position(), 100);
}

// --- a segment that cannot be prepared ------------------------------------------------------

struct PrepareFault {
  const char* name;
  Call call;
  uint64_t nth;  // the call, counted from open, that prepares segment 1
  int err;
  Durability durability;
};

class PrepareFailsOnce : public LogFaultTest, public ::testing::WithParamInterface<PrepareFault> {};

// The maintenance thread fails to prepare segment 1, a segment not yet in use: the roll makes
// it itself, and appends go on.
TEST_P(PrepareFailsOnce, TheRollMakesTheSegmentAndAppendsGoOn) {
  // fallocate: #1 is segment 0 at open, #2 the maintenance thread preparing segment 1.
  // fsync (group and sync make a new segment's allocation durable): at open #1 segment 0,
  // #2 the directory, #3 sluice.meta, #4 the directory again; #5 prepares segment 1.
  ops_.fail_nth(GetParam().call, GetParam().nth, GetParam().err);
  ASSERT_NO_FATAL_FAILURE(open_with_stream(GetParam().durability));
  AppendCode code;
  const uint64_t acked = append_until_failure(*w_, s_, kBig, 60, &code);
  EXPECT_EQ(code, AppendCode::ok) << w_->last_error().to_string();
  EXPECT_EQ(ops_.failures(GetParam().call), 1u);
  EXPECT_GT(w_->stats().segment_rolls, 2u);
  EXPECT_GT(w_->stats().roll_waits, 0u);
  restart_and_expect_acknowledged(acked, kBig);
}

INSTANTIATE_TEST_SUITE_P(Faults, PrepareFailsOnce,
                         // pwrite under none with prefault (64 KiB segments, zeros written
                         // 32 KiB at a time): #1-#2 zeros segment 0, #3 sluice.meta, #4 the
                         // first zeros of segment 1 (the maintenance thread). open: #1 LOCK, #2
                         // segment 0, #3 the directory, #4 sluice.meta.tmp, #5 the directory,
                         // #6 segment 1.
                         ::testing::Values(PrepareFault{"fsync_eio_sync", Call::kFsync, 5, EIO, Durability::sync},
                                           PrepareFault{"pwrite_eio_none", Call::kPwrite, 4, EIO, Durability::none},
                                           PrepareFault{"open_emfile_group", Call::kOpen, 6, EMFILE, Durability::group},
                                           PrepareFault{"fallocate_enospc_none", Call::kFallocate, 2, ENOSPC, Durability::none},
                                           PrepareFault{"fallocate_enospc_sync", Call::kFallocate, 2, ENOSPC, Durability::sync}),
                         [](const ::testing::TestParamInfo<PrepareFault>& i) { return std::string(i.param.name); });

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
  ASSERT_NO_FATAL_FAILURE(open_with_stream(GetParam()));
  AppendCode code;
  const uint64_t acked = append_until_failure(*w_, s_, kBig, 100, &code);
  ASSERT_EQ(code, AppendCode::io_error);
  EXPECT_EQ(w_->stats().segment_rolls, 0u);
  EXPECT_GT(acked, 5u);
  EXPECT_NE(w_->last_error().message().find(std::strerror(ENOSPC)), std::string::npos) << w_->last_error().to_string();
  EXPECT_NE(w_->last_error().message().find(segment_file(dir(), 1)), std::string::npos) << w_->last_error().to_string();
  expect_refuses_appends_for_good(*w_, s_);
  restart_and_expect_acknowledged(acked, kBig);
}

INSTANTIATE_TEST_SUITE_P(Durability, DiskFullWhenRolling,
                         ::testing::Values(Durability::none, Durability::group, Durability::sync),
                         [](const ::testing::TestParamInfo<Durability>& i) { return std::string(to_string(i.param)); });

TEST_F(LogFaultTest, MmapFailingAtARollIsAnErrorNotACrash) {
  ops_.arm(Call::kMmap, 2, UINT64_MAX, ENOMEM);  // #1: segment 0 at open
  ASSERT_NO_FATAL_FAILURE(open_with_stream(Durability::none));
  AppendCode code;
  const uint64_t acked = append_until_failure(*w_, s_, kBig, 100, &code);
  ASSERT_EQ(code, AppendCode::io_error);
  EXPECT_NE(w_->last_error().message().find("mmap"), std::string::npos) << w_->last_error().to_string();
  ops_.heal();
  restart_and_expect_acknowledged(acked, kBig);
}

// --- rename, open, pwrite, fdatasync at open and close ---------------------------------------

TEST_F(LogFaultTest, RenameFailingWhenWritingTheMetaFileRefusesTheOpen) {
  ops_.fail_always(Call::kRename, EIO);
  auto w = LogWriter::open(dir(), options(Durability::sync));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::io_error);
  EXPECT_NE(w.status().message().find("rename"), std::string::npos) << w.status().to_string();
  EXPECT_NE(w.status().message().find(lf::kMetaFileName), std::string::npos) << w.status().to_string();
  ops_.heal();
  auto again = LogWriter::open(dir(), options(Durability::sync));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
}

TEST_F(LogFaultTest, RenameFailingAtCloseIsReportedAndNothingAcknowledgedIsLost) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream(Durability::sync));
  ASSERT_TRUE(append_events(*w_, s_, 20, kBig));
  ops_.fail_always(Call::kRename, EIO);
  Status st = w_->close();
  EXPECT_EQ(st.code(), StatusCode::io_error);
  EXPECT_NE(st.message().find("rename"), std::string::npos) << st.to_string();
  ops_.heal();
  w_.reset();
  expect_acknowledged_survive(20, kBig);
}

TEST_F(LogFaultTest, OpenFailingForTheMetaFileRefusesTheOpen) {
  // open: #1 LOCK, #2 segment 0, #3 the directory, #4 sluice.meta.tmp.
  ops_.fail_nth(Call::kOpen, 4, EMFILE);
  auto w = LogWriter::open(dir(), options(Durability::none));
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("sluice.meta.tmp"), std::string::npos) << w.status().to_string();
  EXPECT_NE(w.status().message().find(std::strerror(EMFILE)), std::string::npos) << w.status().to_string();
}

TEST_F(LogFaultTest, PwriteFailingForTheMetaFileRefusesTheOpen) {
  ops_.fail_always(Call::kPwrite, ENOSPC);
  auto w = LogWriter::open(dir(), options(Durability::sync));  // sync: no zeros written
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("sluice.meta.tmp"), std::string::npos) << w.status().to_string();
  EXPECT_NE(w.status().message().find(std::strerror(ENOSPC)), std::string::npos) << w.status().to_string();
}

TEST_F(LogFaultTest, FdatasyncOfRolledSegmentsFailingAtCloseUnderNoneIsReported) {
  ASSERT_NO_FATAL_FAILURE(open_with_stream(Durability::none));
  ASSERT_TRUE(append_events(*w_, s_, 40, kBig));  // several rolls
  ASSERT_GT(w_->stats().segment_rolls, 1u);
  ops_.fail_always(Call::kFdatasync, EIO);
  Status st = w_->close();
  EXPECT_EQ(st.code(), StatusCode::io_error);
  EXPECT_NE(st.message().find("fdatasync"), std::string::npos) << st.to_string();
  EXPECT_GE(ops_.failures(Call::kFdatasync), 1u);
  ops_.heal();
  w_.reset();
  expect_acknowledged_survive(40, kBig);  // the page cache still holds them
}

}  // namespace
}  // namespace sluice
