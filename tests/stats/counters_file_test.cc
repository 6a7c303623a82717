// The stats file: layout round trip, and another process reading it live while this one
// updates it (the child is forked before any thread exists, and only maps and reads).
#include "sluice/stats/counters_file.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

namespace sluice {
namespace {

std::string fresh_path(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("sluice-ctr-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return (p / counters::kFileName).string();
}

TEST(CountersFile, SlotsRoundTripThroughAReader) {
  const std::string path = fresh_path("roundtrip");
  auto f = counters::CountersFile::create(path, {.log_dir = "/x/log", .segment_size = 1 << 20, .slot_count = 4}).value();
  counters::Slot* s = f->allocate(counters::SlotKind::projection, "balances").value();
  counters::put(f->header().head_position, uint64_t{100});
  counters::put(s->counters.applied_position, uint64_t{60});
  for (uint64_t v = 1; v <= 1000; ++v) counters::record(s->histogram, v * 1000);
  auto r = counters::CountersFile::open_read(path).value();
  counters::EngineStat st = counters::read_stats(*r);
  EXPECT_EQ(st.log_dir, "/x/log");
  ASSERT_EQ(st.projections.size(), 1u);
  EXPECT_EQ(st.projections[0].name, "balances");
  EXPECT_EQ(st.projections[0].events_behind, 40u);
  EXPECT_NEAR(static_cast<double>(st.projections[0].latency.p50), 500000.0, 5000.0);
  EXPECT_NEAR(static_cast<double>(st.projections[0].latency.p999), 999000.0, 9990.0);
  EXPECT_EQ(st.projections[0].latency.max, 1000000u);
  EXPECT_EQ(f->allocate(counters::SlotKind::projection, "b").ok(), true);
  EXPECT_TRUE(f->allocate(counters::SlotKind::projection, "c").ok());
  EXPECT_TRUE(f->allocate(counters::SlotKind::projection, "d").ok());
  auto full = f->allocate(counters::SlotKind::projection, "e");
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.status().message().find("'e'"), std::string::npos);
}

TEST(CountersFile, CreatedOwnerReadWriteGroupReadAndTheModeIsConfigurable) {
  const std::string path = fresh_path("mode");
  struct stat st {};
  {
    auto f = counters::CountersFile::create(path, {.log_dir = "/x/log", .slot_count = 2}).value();
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777 & ~0640u, 0u) << std::oct << (st.st_mode & 0777);
  }
  auto g = counters::CountersFile::create(path, {.log_dir = "/x/log", .slot_count = 2, .file_mode = 0600}).value();
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777 & ~0600u, 0u) << std::oct << (st.st_mode & 0777);
}

TEST(CountersFile, BadFilesAreRefusedWithTheirPath) {
  const std::string path = fresh_path("bad");
  FILE* fp = std::fopen(path.c_str(), "wb");
  std::string junk(8192, 'x');
  std::fwrite(junk.data(), 1, junk.size(), fp);
  std::fclose(fp);
  auto r = counters::CountersFile::open_read(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(path), std::string::npos);
  EXPECT_EQ(counters::CountersFile::open_read(path + ".none").status().code(), StatusCode::not_found);
}

// The child maps the file and watches the applied position while the parent moves it: it
// must only grow, the child must see it *between* 0 and the final value (a reader that only
// ever saw the final value — a file written once at the end — would not count as live), and
// it must reach the final value. The parent stops half-way until the child has seen a value
// in flight (a pipe), so the check does not depend on scheduling. Exit code 0 = all good.
TEST(CountersFileConcurrency, AnotherProcessReadsTheCountersLive) {
  const std::string path = fresh_path("live");
  constexpr uint64_t kFinal = 200000, kHalf = kFinal / 2;
  int seen_pipe[2];
  ASSERT_EQ(::pipe(seen_pipe), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(seen_pipe[0]);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::unique_ptr<counters::CountersFile> r;
    while (!r && std::chrono::steady_clock::now() < deadline) {
      auto o = counters::CountersFile::open_read(path);
      if (o.ok()) r = std::move(o.value());
      else std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!r) ::_exit(2);
    uint64_t last = 0;
    bool saw_in_flight = false;
    while (std::chrono::steady_clock::now() < deadline) {
      const counters::Slot& s = r->slot(0);
      if (counters::CountersFile::state(s) == counters::SlotState::free) continue;
      const uint64_t v = counters::get(s.counters.applied_position);
      if (v < last) ::_exit(3);  // went backwards
      last = v;
      if (!saw_in_flight && v > 0 && v < kFinal) {
        saw_in_flight = true;
        const char c = 1;
        if (::write(seen_pipe[1], &c, 1) != 1) ::_exit(6);
      }
      if (v == kFinal) ::_exit(saw_in_flight ? 0 : 4);
    }
    ::_exit(5);
  }
  ::close(seen_pipe[1]);
  auto f = counters::CountersFile::create(path, {.log_dir = "d", .segment_size = 1, .slot_count = 2}).value();
  counters::Slot* s = f->allocate(counters::SlotKind::projection, "p").value();
  for (uint64_t v = 1; v <= kFinal; ++v) {
    counters::put(s->counters.applied_position, v);
    if (v == kHalf) {  // wait (60 s at most) until the child has seen a value in flight
      pollfd p{seen_pipe[0], POLLIN, 0};
      ASSERT_EQ(::poll(&p, 1, 60'000), 1) << "the other process never saw the counter move";
      char c;
      ASSERT_EQ(::read(seen_pipe[0], &c, 1), 1);
    }
    if (v % 1000 == 0) std::this_thread::yield();
  }
  ::close(seen_pipe[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace sluice
