// Checkpoint files under power loss (issue 17, "files created safely"): write_checkpoint runs
// over the power-loss simulator (tests/bus/crash_fs.h); at every crash point while a
// checkpoint is written, and after it was acknowledged (returned OK), every crash image holds
// the old checkpoint or the new one, whole -- never a torn or missing one, never an older one
// once the new one was acknowledged.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "bus/atomic_write_check.h"
#include "bus/crash_fs.h"
#include "bus/log_test_util.h"
#include "sluice/projections/checkpoint.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

// Checkpoint k: position k, a payload whose size varies with k (up to ~6 pages).
CheckpointData checkpoint(uint64_t k) {
  CheckpointData d;
  d.position = k;
  d.applied_address = k * 64;
  d.events_applied = k;
  d.digest = k * 0x9E3779B97F4A7C15ull;
  d.written_ns = static_cast<int64_t>(k);
  const size_t size = (k * 6151) % 24000;
  for (size_t i = 0; i < size; ++i) d.payload += static_cast<char>('A' + (k + i) % 23);
  return d;
}

Result<std::optional<uint64_t>> read_version(const std::string& log_dir) {
  auto r = read_checkpoint(log_dir, "balances");
  if (!r.ok()) return r.status();
  if (!r.value().has_value()) return std::optional<uint64_t>();
  const CheckpointData& d = *r.value();
  const CheckpointData want = checkpoint(d.position);
  if (d.payload != want.payload || d.digest != want.digest || d.applied_address != want.applied_address)
    return Status(StatusCode::corruption, "checkpoint at position " + std::to_string(d.position) + " is not the one written");
  return std::optional<uint64_t>(d.position);
}

TEST(CheckpointPowerLoss, EveryCrashLeavesTheOldOrTheNewCheckpointWholeAndTheAcknowledgedOneIsKept) {
  TempDir tmp("ckpt_power");
  const std::string log = tmp.sub("log"), image_log = tmp.sub("img");
  fs::create_directories(checkpoint_dir(log));  // the simulator watches it: it must exist
  CrashFs cfs(checkpoint_dir(log));
  CheckpointFileOptions o;
  o.file_ops = &cfs;
  const AtomicWriteCrashReport r = check_atomic_writes(
      cfs, checkpoint_dir(image_log), 12, 16, 11,
      [&](uint64_t k) { return write_checkpoint(log, "balances", checkpoint(k), o); },
      [&](const std::string&) { return read_version(image_log); });
  std::cout << r.summary() << "\n";
  EXPECT_EQ(r.failures(), 0u) << r.summary();
  EXPECT_GE(r.images, 1000u) << r.summary();
  EXPECT_GT(r.old_kept, 0u) << r.summary();
  EXPECT_GT(r.new_seen, 0u) << r.summary();
}

TEST(CheckpointPowerLoss, TheCheckpointsDirectoryAndFileAreCreatedOwnerReadWriteGroupRead) {
  TempDir tmp("ckpt_mode");
  const std::string log = tmp.sub("log");
  fs::create_directories(log);
  ASSERT_TRUE(write_checkpoint(log, "p", checkpoint(3)).ok());
  struct stat st {};
  ASSERT_EQ(::stat(checkpoint_path(log, "p").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777 & ~0640u, 0u) << std::oct << (st.st_mode & 0777);
  ASSERT_EQ(::stat(checkpoint_dir(log).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777 & ~0750u, 0u) << std::oct << (st.st_mode & 0777);
  CheckpointFileOptions o;
  o.file_mode = 0600;
  ASSERT_TRUE(write_checkpoint(log, "q", checkpoint(4), o).ok());
  ASSERT_EQ(::stat(checkpoint_path(log, "q").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777 & ~0600u, 0u) << std::oct << (st.st_mode & 0777);
}

}  // namespace
}  // namespace sluice::testing
