// kill -9 while appending. A child runs `sluice gen --durability sync`, printing each
// acknowledged position; the parent kills it at a random moment (during its start and
// recovery, mid-append, mid-roll) and reopens the log. Allowed outcomes: every acknowledged
// position is present with exactly gen_payload's bytes; positions are contiguous from 0; what
// is present beyond the acknowledged ones is whole events with their bytes; `sluice verify`
// exits 0 (a torn tail is consistent). Nothing else.
//
// SLUICE_CRASH_ROUNDS sets the number of rounds (default 200; 1000+ is the long mode),
// SLUICE_CRASH_SEED the random seed (printed, to replay a failure).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bus/log_test_util.h"
#include "sluice/bus/log_reader.h"
#include "sluice/gen_payload.h"
#include "tools/subprocess.h"

namespace sluice {
namespace {

using namespace sluice::testing;
using namespace std::chrono_literals;

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

// Checks the log against what was acknowledged: position -> payload size.
void check_log(const std::string& dir, const std::map<uint64_t, size_t>& acked, uint64_t round,
               uint64_t* end_out) {
  *end_out = 0;
  auto r = LogReader::open(dir);
  if (!r.ok() && r.status().code() == StatusCode::not_found && acked.empty()) return;  // killed before it began
  ASSERT_TRUE(r.ok()) << "round " << round << ": " << r.status().to_string();
  ASSERT_EQ((*r)->begin_position(), 0u);
  const uint64_t end = (*r)->end_position();
  *end_out = end;
  if (!acked.empty()) {
    ASSERT_GT(end, acked.rbegin()->first) << "round " << round << ": acknowledged position "
                                          << acked.rbegin()->first << " is missing";
  }
  RecordView v;
  std::vector<std::byte> expect;
  for (uint64_t p = 0; p < end; ++p) {
    ASSERT_TRUE((*r)->read(p, &v)) << "round " << round << ": position " << p << " unreadable";
    ASSERT_EQ(v.position(), p);
    const auto payload = v.payload();
    if (auto it = acked.find(p); it != acked.end()) {
      ASSERT_EQ(payload.size(), it->second) << "round " << round << ": position " << p;
    }
    expect.resize(payload.size());
    tools::gen_payload(p, expect.data(), expect.size());
    ASSERT_TRUE(std::equal(payload.begin(), payload.end(), expect.begin()))
        << "round " << round << ": position " << p << " does not hold its bytes";
  }
}

uint64_t count_segments(const std::string& dir) {
  if (dir.empty()) return 0;
  auto r = LogReader::open(dir);
  return r.ok() ? (*r)->info().segments.size() : 0;
}

TEST(CrashTest, KillDashNineNeverLosesAnAcknowledgedEvent) {
  const uint64_t rounds = env_or("SLUICE_CRASH_ROUNDS", 200);
  const uint64_t seed = env_or("SLUICE_CRASH_SEED", std::random_device{}());
  std::printf("crash test: %llu rounds, SLUICE_CRASH_SEED=%llu\n", static_cast<unsigned long long>(rounds),
              static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  TempDir tmp("crash");
  constexpr uint64_t kRoundsPerLog = 25;  // then start a fresh log, to keep each check short
  const size_t kPayloads[] = {0, 5, 64, 300, 2000};

  std::string dir;
  std::map<uint64_t, size_t> acked;
  uint64_t log_end = 0;  // the log's end after the previous round: where this round's gen starts
  uint64_t kills_after_ack = 0, total_acked = 0, segments = 0;
  for (uint64_t round = 0; round < rounds; ++round) {
    if (round % kRoundsPerLog == 0) {
      segments += count_segments(dir);
      dir = tmp.sub("log" + std::to_string(round / kRoundsPerLog));
      acked.clear();
      log_end = 0;
    }
    const size_t payload = kPayloads[rng() % std::size(kPayloads)];
    const uint64_t batch = 1 + rng() % 8;
    const uint64_t streams = 1 + rng() % 3;
    Subprocess child;
    ASSERT_TRUE(child.start({SLUICE_CLI, "gen", dir, "--count", "1000000", "--payload-bytes",
                             std::to_string(payload), "--streams", std::to_string(streams), "--durability",
                             "sync", "--segment-size", "65536", "--batch", std::to_string(batch)}));
    // Half the rounds kill at a random moment from the start (often during open and
    // recovery), half at a random moment after the first acknowledgement.
    const auto start = std::chrono::steady_clock::now();
    const bool after_ack = rng() % 2 == 1;
    const auto delay = std::chrono::microseconds(rng() % (after_ack ? 40000 : 60000));
    if (after_ack) {
      while (child.out().find('\n') == std::string::npos && std::chrono::steady_clock::now() - start < 30s)
        child.read_until(std::chrono::steady_clock::now() + 1ms);
    }
    child.read_until(std::chrono::steady_clock::now() + delay);
    child.kill(SIGKILL);
    const int status = child.finish();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "round " << round << ": gen ended by itself (status " << status << "): " << child.err();

    // Only complete lines were acknowledged: a line cut by the kill is not.
    const std::string& out = child.out();
    size_t line_start = 0;
    uint64_t expect_next = acked.empty() ? 0 : acked.rbegin()->first + 1;
    for (size_t nl; (nl = out.find('\n', line_start)) != std::string::npos; line_start = nl + 1) {
      const uint64_t p = std::stoull(out.substr(line_start, nl - line_start));
      // gen prints from its start position, which may be past unacknowledged survivors.
      ASSERT_GE(p, expect_next) << "round " << round << ": positions acknowledged out of order";
      acked[p] = payload;
      expect_next = p + 1;
      ++total_acked;
    }
    if (after_ack) ++kills_after_ack;

    uint64_t end = 0;
    check_log(dir, acked, round, &end);
    if (::testing::Test::HasFailure()) return;
    // Batches are whole: gen started at the previous end and appended batches of `batch`
    // events, so what survived is a whole number of them (a torn batch is dropped whole).
    ASSERT_GE(end, log_end) << "round " << round << ": the log shrank below a previous round's end";
    ASSERT_EQ((end - log_end) % batch, 0u) << "round " << round << ": " << (end - log_end)
                                           << " events survived, not a whole number of batches of " << batch;
    log_end = end;
    RunResult verify = run({SLUICE_CLI, "verify", dir});
    if (acked.empty() && verify.exit_code == 2 &&
        (verify.err.find("not a Sluice log") != std::string::npos ||
         verify.err.find("no such directory") != std::string::npos))
      continue;  // killed before its first segment was activated
    ASSERT_EQ(verify.exit_code, 0) << "round " << round << ": sluice verify: " << verify.out << verify.err;
  }
  segments += count_segments(dir);
  std::printf("crash test: %llu acknowledged events checked, %llu kills after an acknowledgement, %llu segments\n",
              static_cast<unsigned long long>(total_acked), static_cast<unsigned long long>(kills_after_ack),
              static_cast<unsigned long long>(segments));
  EXPECT_GT(total_acked, 0u);
  EXPECT_GT(segments, rounds / kRoundsPerLog) << "the kills must also hit logs that roll segments";
}

}  // namespace
}  // namespace sluice
