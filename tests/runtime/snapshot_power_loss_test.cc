// Aggregate snapshot files under power loss (issue 17, "files created safely"): the
// repository's snapshot writer runs over the power-loss simulator (tests/bus/crash_fs.h); at
// every crash point while a snapshot is written, and after it was acknowledged (returned
// OK), every crash image holds the old snapshot or the new one, whole -- never a torn or
// missing one, never an older one once the new one was acknowledged.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "bus/atomic_write_check.h"
#include "bus/crash_fs.h"
#include "bus/log_test_util.h"
#include "sluice/runtime/repository.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kFingerprint = 0x5EED;
constexpr StreamId kStream = 7;

// Snapshot k: version k, position 10k, a state whose size varies with k (up to ~5 pages).
std::string state(uint64_t k) {
  std::string s;
  const size_t size = 1 + (k * 4099) % 20000;
  for (size_t i = 0; i < size; ++i) s += static_cast<char>('a' + (k * 3 + i) % 26);
  return s;
}

class SnapshotPowerLoss : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w = LogWriter::open(tmp_.sub("log"), LogOptions{});
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    writer_ = std::move(w.value());
    port_ = make_writer_port(*writer_);
  }
  std::unique_ptr<RepositoryCore> core(const std::string& snapshot_dir, FileOps* ops) {
    RepositoryOptions o;
    o.snapshot_dir = snapshot_dir;
    o.file_ops = ops;
    o.idempotency.enabled = false;
    auto c = RepositoryCore::open(*port_, nullptr, "account", kFingerprint, o);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return c.ok() ? std::move(c.value()) : nullptr;
  }
  TempDir tmp_{"snap_power"};
  std::unique_ptr<LogWriter> writer_;
  std::unique_ptr<AppendPort> port_;
};

TEST_F(SnapshotPowerLoss, EveryCrashLeavesTheOldOrTheNewSnapshotWholeAndTheAcknowledgedOneIsKept) {
  const std::string snaps = tmp_.sub("snapshots"), images = tmp_.sub("images");
  fs::create_directories(snaps + "/account");  // the simulator watches it: it must exist
  CrashFs cfs(snaps + "/account");
  auto writer = core(snaps, &cfs);
  auto reader = core(images, nullptr);  // reads <images>/account/<stream>.snap
  ASSERT_TRUE(writer && reader);
  const AtomicWriteCrashReport r = check_atomic_writes(
      cfs, images + "/account", 12, 16, 21,
      [&](uint64_t k) { return writer->write_snapshot(kStream, k, 10 * k, state(k)); },
      [&](const std::string&) -> Result<std::optional<uint64_t>> {
        uint64_t version = 0, position = 0;
        std::string s;
        const Status st = reader->read_snapshot(kStream, &version, &position, &s);
        if (st.code() == StatusCode::not_found) return std::optional<uint64_t>();
        if (!st.ok()) return st;
        if (position != 10 * version || s != state(version))
          return Status(StatusCode::corruption, "snapshot of version " + std::to_string(version) + " is not the one written");
        return std::optional<uint64_t>(version);
      });
  std::cout << r.summary() << "\n";
  EXPECT_EQ(r.failures(), 0u) << r.summary();
  EXPECT_GE(r.images, 1000u) << r.summary();
  EXPECT_GT(r.old_kept, 0u) << r.summary();
  EXPECT_GT(r.new_seen, 0u) << r.summary();
}

TEST_F(SnapshotPowerLoss, SnapshotFilesAreCreatedOwnerReadWriteGroupRead) {
  auto c = core(tmp_.sub("snapshots"), nullptr);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->write_snapshot(kStream, 1, 10, state(1)).ok());
  struct stat st {};
  ASSERT_EQ(::stat(c->snapshot_path(kStream).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777 & ~0640u, 0u) << std::oct << (st.st_mode & 0777);
}

}  // namespace
}  // namespace sluice::testing
