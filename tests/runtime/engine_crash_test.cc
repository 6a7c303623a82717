// kill -9 at random moments while an engine appends and checkpoints: after a restart, every
// projection's state equals a full replay of the log (exactly-once effect), whatever moment
// the kill hit — mid-append, mid-checkpoint (temp file written, not yet renamed), mid-batch.
//
// The child is forked while the test process has no other thread; it runs an engine with
// the three bank projections checkpointing every few hundred events and appends until
// killed. Overdrafts are appended now and then, so parked keys and dead letters are part of
// the state that must survive.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <thread>

#include "bank_model.h"
#include "sluice/runtime/engine.h"

namespace sluice {
namespace {

EngineOptions crash_options() {
  EngineOptions o;
  o.log.segment_size = 1 << 20;  // rolls often
  o.worker_cpus = {-1, -1};
  o.stats_file = true;
  return o;
}

ProjectionOptions crash_projection_options() {
  ProjectionOptions po;
  po.checkpoint_every = 300;
  po.checkpoint_interval = std::chrono::milliseconds(2);
  return po;
}

void add_all(Engine& e) {
  for (std::string_view n : bank::kProjectionNames)
    if (!e.add_projection<Projection>(std::string(n), crash_projection_options(), [n] { return bank::factory_for(n)(); }).ok())
      ::_exit(10);
}

[[noreturn]] void child_main(const std::string& dir, uint32_t seed) {
  auto e = Engine::open(dir, crash_options());
  if (!e.ok()) ::_exit(11);
  add_all(*e.value());
  if (!e.value()->start().ok()) ::_exit(12);
  std::mt19937_64 rng(seed);
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 40; ++a) ids.push_back(e.value()->stream(bank::stream_name(a)).value());
  for (uint64_t i = 0;; ++i) {
    const uint64_t a = rng() % ids.size();
    const int64_t amount = static_cast<int64_t>(rng() % 900) + 1;
    AppendResult r;
    if (rng() % 4 == 0) {
      bank::Withdrawn w{a, amount * (rng() % 50 == 0 ? 1000 : 1), static_cast<int64_t>(i / 500)};
      r = e.value()->append(ids[a], ExpectedVersion::any(), encode_raw(w));
    } else {
      bank::Deposited d{a, amount, static_cast<int64_t>(i / 500)};
      r = e.value()->append(ids[a], ExpectedVersion::any(), encode_raw(d));
    }
    if (!r.ok()) ::_exit(13);
    if (i % 64 == 0) std::this_thread::yield();
  }
}

TEST(EngineCrash, KillNineAtRandomMomentsStateAfterRestartEqualsFullReplay) {
  const std::string dir = (std::filesystem::temp_directory_path() / ("sluice-crash-" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(dir);
  std::mt19937 rng(12345);
  constexpr int kIterations = 8;
  int restored_from_checkpoint = 0;
  int restarts_that_skipped_replay = 0;
  for (int it = 0; it < kIterations; ++it) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) child_main(dir, static_cast<uint32_t>(it + 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(60 + rng() % 250));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status) << " in iteration " << it;

    uint64_t lowest_checkpoint = UINT64_MAX;  // over all projections (0: one has none)
    for (std::string_view n : bank::kProjectionNames) {
      auto ck = read_checkpoint(dir, n);
      ASSERT_TRUE(ck.ok()) << ck.status().to_string();
      if (ck.value() && ck.value()->position > 0) ++restored_from_checkpoint;
      lowest_checkpoint = std::min<uint64_t>(lowest_checkpoint, ck.value() ? ck.value()->position : 0);
    }
    // Restart: restore checkpoints, catch up to the end, compare with full replays.
    auto e = Engine::open(dir, crash_options());
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    add_all(*e.value());
    ASSERT_TRUE(e.value()->start().ok());
    const uint64_t end = e.value()->committed_position();
    ASSERT_GT(end, 0u);
    for (ProjectionRunner* r : e.value()->runners())
      ASSERT_TRUE(r->wait_for(end - 1, std::chrono::seconds(60)).ok()) << r->name();
    for (ProjectionRunner* r : e.value()->runners()) {
      RebuildOptions ro;
      ro.up_to = end;
      auto full = rebuild_projection(dir, r->name(), r->factory(), r->options(), ro);
      ASSERT_TRUE(full.ok()) << full.status().to_string();
      ASSERT_EQ(full->events, end);
      EXPECT_EQ(r->model()->digest(), full->digest) << r->name() << " iteration " << it << " at " << end;
      EXPECT_EQ(r->dead_letters().size(), full->dead_letters) << r->name();
    }
    ASSERT_TRUE(e.value()->stop().ok());
    // The restart really started from the checkpoints: each worker's ring consumer handed
    // over no more than the records after the lowest one (ignoring the checkpoints would
    // replay all `end` of them, and the digests above would still agree).
    const counters::EngineStat st = counters::read_stats(*e.value()->stats());
    ASSERT_FALSE(st.consumers.empty());
    for (const counters::ConsumerStat& c : st.consumers)
      EXPECT_LE(c.events, end - lowest_checkpoint) << c.name << " replayed past its projections' checkpoints";
    if (lowest_checkpoint > 0) ++restarts_that_skipped_replay;
  }
  EXPECT_GT(restored_from_checkpoint, 0) << "no kill left a checkpoint behind: the test proved nothing";
  EXPECT_GT(restarts_that_skipped_replay, 0) << "no restart began past position 0: the test proved nothing";
}

}  // namespace
}  // namespace sluice
