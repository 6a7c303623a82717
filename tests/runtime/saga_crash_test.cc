// kill -9 at random points across many concurrent sagas: a child process runs sagas against
// fake services whose effects are lines of a file-backed ledger keyed by the idempotency
// key; the parent SIGKILLs it, again and again, then a last run finishes the work. Every
// saga must end completed, compensated or compensation_failed, each key's effect must be in
// the ledger at most once, and each saga's effects must match its end (all steps done once,
// or every done step undone). Rounds: SLUICE_SAGA_ROUNDS (default 20; scripts/torture.sh
// runs hundreds).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <unordered_set>

#include "runtime/saga_test_util.h"

namespace sluice {
namespace {

constexpr uint32_t kSagasPerRound = 6;
constexpr uint32_t kSteps = 3;

uint64_t mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The fake services' ledger: one line per effect, "A|U <key.hi> <key.lo> <saga> <step>".
// An effect whose key is already in the ledger is not repeated (the service honours keys).
class Ledger {
 public:
  explicit Ledger(const std::string& path) {
    std::ifstream in(path);
    std::string op;
    uint64_t hi, lo;
    std::string saga;
    uint32_t step;
    while (in >> op >> hi >> lo >> saga >> step) seen_.insert(std::to_string(hi) + ":" + std::to_string(lo));
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  ~Ledger() { ::close(fd_); }
  void apply(char op, const SagaContext& c) {
    std::lock_guard lock(mu_);
    const std::string k = std::to_string(c.key.hi) + ":" + std::to_string(c.key.lo);
    if (!seen_.insert(k).second) return;
    std::string line = std::string(1, op) + " " + std::to_string(c.key.hi) + " " + std::to_string(c.key.lo) + " " +
                       std::string(c.saga_id) + " " + std::to_string(c.step) + "\n";
    if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::abort();
  }

 private:
  std::mutex mu_;
  std::unordered_set<std::string> seen_;
  int fd_ = -1;
};

uint64_t saga_number(const SagaContext& c) { return std::strtoull(std::string(c.saga_id).c_str(), nullptr, 10); }

SagaType crash_type(Ledger& ledger) {
  SagaStepOptions o;
  o.retry = SagaRetry{4, std::chrono::milliseconds(1), std::chrono::milliseconds(4), 2.0, 0.5};
  o.compensation_retry = SagaRetry{4, std::chrono::milliseconds(1), std::chrono::milliseconds(4), 2.0, 0.5};
  SagaType t("crash");
  for (uint32_t i = 0; i < kSteps; ++i) {
    t.step(
        "s" + std::to_string(i),
        [&ledger](const SagaContext& c) {
          std::this_thread::sleep_for(std::chrono::microseconds(mix(c.key.lo) % 2000));
          if (mix(c.key.lo) % 5 == 0) return StepResult::retry("transient");
          if (saga_number(c) % 7 == 3 && c.step == 2) return StepResult::fail("declined");
          ledger.apply('A', c);
          return StepResult::ok();
        },
        [&ledger](const SagaContext& c) {
          std::this_thread::sleep_for(std::chrono::microseconds(mix(c.key.lo) % 1000));
          if (saga_number(c) % 11 == 5 && c.step == 0) return StepResult::retry("refund service down");
          if (mix(c.key.lo) % 5 == 0) return StepResult::retry("transient");
          ledger.apply('U', c);
          return StepResult::ok();
        },
        o);
  }
  return t;
}

// One process's run: resumes what the log holds, starts this round's sagas, waits. Writes a
// byte to `ready_fd` once its agent runs (so that the parent's kill lands among the sagas
// however long the start takes, e.g. under a sanitizer).
void run_round(const std::string& dir, const std::string& ledger_path, uint32_t round, int ready_fd) {
  testing::SagaLog log;
  log.open(dir);
  Ledger ledger(ledger_path);
  SagaAgentOptions o;
  o.action_threads = 4;
  auto agent = log.agent({crash_type(ledger)}, o);
  if (!agent || !agent->start().ok()) std::abort();
  if (::write(ready_fd, "r", 1) != 1) std::abort();
  for (uint32_t i = 0; i < kSagasPerRound; ++i)
    (void)agent->start_saga("crash", std::to_string(round * kSagasPerRound + i), "");
  (void)agent->wait_idle(std::chrono::seconds(60));
  agent->stop();
}

TEST(SagaCrash, KillNineAtRandomPointsLosesNoSagaAndRepeatsNoEffect) {
  uint32_t rounds = 20;
  if (const char* e = std::getenv("SLUICE_SAGA_ROUNDS")) rounds = static_cast<uint32_t>(std::atoi(e));
  const std::string dir = testing::fresh_engine_dir("saga-crash", "log");
  const std::string ledger_path = dir + ".ledger";
  std::remove(ledger_path.c_str());
  std::mt19937_64 rng(std::random_device{}());
  uint32_t killed = 0;
  for (uint32_t r = 0; r < rounds; ++r) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(ready[0]);
      run_round(dir, ledger_path, r, ready[1]);
      ::_exit(0);
    }
    ::close(ready[1]);
    // One kill in four lands wherever the child is (maybe during recovery); the others
    // land 0-40 ms after its agent started.
    if (rng() % 4 == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 30000));
    } else {
      char c;
      (void)!::read(ready[0], &c, 1);
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 40000));
    }
    ::close(ready[0]);
    if (::kill(pid, SIGKILL) == 0) ++killed;
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) << "round " << r;
  }
  // The last run, in this process, without a kill: it finishes everything.
  {
    testing::SagaLog log;
    log.open(dir);
    Ledger ledger(ledger_path);
    auto agent = log.agent({crash_type(ledger)});
    ASSERT_TRUE(agent->start().ok());
    ASSERT_TRUE(agent->wait_idle(std::chrono::seconds(120)));
    agent->stop();
  }
  testing::SagaLog log;
  log.open(dir);
  const auto sagas = log.sagas();
  log.close();
  EXPECT_GT(killed, 0u);

  // The ledger: no key twice; effects per saga and step.
  std::ifstream in(ledger_path);
  std::string op, saga;
  uint64_t hi, lo;
  uint32_t step;
  std::set<std::pair<uint64_t, uint64_t>> keys;
  std::map<std::string, std::map<uint32_t, int>> done, undone;
  size_t lines = 0;
  while (in >> op >> hi >> lo >> saga >> step) {
    ++lines;
    EXPECT_TRUE(keys.insert({hi, lo}).second) << "effect of key " << hi << ":" << lo << " repeated (saga " << saga << ")";
    (op == "A" ? done : undone)[saga][step]++;
  }
  EXPECT_GT(lines, 0u);

  std::map<SagaStatus, int> ends;
  for (const SagaState& s : sagas) {
    SCOPED_TRACE("saga " + s.id + " " + std::string(to_string(s.status)) + " " + s.reason);
    ++ends[s.status];
    ASSERT_TRUE(s.status == SagaStatus::completed || s.status == SagaStatus::compensated ||
                s.status == SagaStatus::compensation_failed);
    for (auto& [st, n] : done[s.id]) EXPECT_EQ(n, 1) << "step " << st << " done more than once";
    for (auto& [st, n] : undone[s.id]) EXPECT_EQ(n, 1) << "step " << st << " undone more than once";
    if (s.status == SagaStatus::completed) {
      EXPECT_EQ(done[s.id].size(), kSteps);
      EXPECT_TRUE(undone[s.id].empty());
    } else if (s.status == SagaStatus::compensated) {
      for (auto& [st, n] : done[s.id]) EXPECT_EQ(undone[s.id][st], 1) << "step " << st << " not undone";
    } else {
      EXPECT_FALSE(s.reason.empty());
    }
  }
  std::printf("rounds %u (killed %u), sagas %zu: completed %d, compensated %d, compensation_failed %d\n", rounds,
              killed, sagas.size(), ends[SagaStatus::completed], ends[SagaStatus::compensated],
              ends[SagaStatus::compensation_failed]);
  std::filesystem::remove_all(dir);
  std::remove(ledger_path.c_str());
}

}  // namespace
}  // namespace sluice
