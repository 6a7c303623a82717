// Engine submissions through the ingress from many threads (more than this machine's CPUs):
// every acknowledged event in the log exactly once and in each submitter's order, every
// ticket completed, back-pressure as a value, stop() with submitters still running, stream
// definitions from any thread, and no allocation on the submitting thread once warm.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "common/alloc_counter.h"
#include "runtime/engine_test_util.h"
#include "sluice/bus/log_reader.h"

namespace sluice {
namespace {

struct Mark {
  uint64_t submitter;
  uint64_t seq;
};

EventData mark_event(const Mark& m) {
  EventData e;
  e.type = 7;
  e.payload = std::span<const std::byte>(reinterpret_cast<const std::byte*>(&m), sizeof m);
  return e;
}

// Counts what it applies (any type).
class Counting final : public Projection {
 public:
  ApplyResult apply(const Event&) override {
    ++n_;
    return ApplyResult::ok;
  }
  void save(SnapshotWriter&) const override {}
  Status load(SnapshotReader&) override { return Status::OK(); }
  uint64_t digest() const noexcept override { return n_; }

 private:
  uint64_t n_ = 0;
};

EngineOptions ingress_options(Durability d = Durability::none) {
  EngineOptions o = testing::small_engine_options();
  o.writer = WriterMode::ingress;
  o.log.durability = d;
  o.worker_cpus = {-1};
  return o;
}

// Reads every event of the log: per submitter, the sequence numbers in log order.
std::map<uint64_t, std::vector<uint64_t>> read_marks(const std::string& dir) {
  std::map<uint64_t, std::vector<uint64_t>> out;
  auto r = LogReader::open(dir);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (!r.ok()) return out;
  RecordView v;
  for (uint64_t p = 0; p < (*r)->end_position(); ++p) {
    EXPECT_TRUE((*r)->read(p, &v));
    Mark m{};
    EXPECT_EQ(v.payload().size(), sizeof m);
    std::memcpy(&m, v.payload().data(), sizeof m);
    out[m.submitter].push_back(m.seq);
  }
  return out;
}

TEST(EngineIngress, ManySubmittersEveryAcknowledgedEventOnceInOrder) {
  // Allowed outcome: each submitter's events appear exactly once, in submission order
  // (checked twice: by expected versions at append time and by reading the log back).
  for (Durability d : {Durability::none, Durability::group}) {
    const std::string dir = testing::fresh_engine_dir("ingress", std::string("many-") + std::string(to_string(d)));
    auto e = Engine::open(dir, ingress_options(d)).value();
    ASSERT_TRUE(e->start().ok());
    constexpr uint64_t kThreads = 6, kEach = 1500, kWindow = 32;
    std::atomic<uint64_t> failures{0}, acked{0};
    std::vector<std::thread> ts;
    for (uint64_t t = 0; t < kThreads; ++t)
      ts.emplace_back([&, t] {
        if (t % 3 == 2) {  // the convenience path: no handle, waiting submits
          const StreamId s = e->submit_stream("sub-" + std::to_string(t)).value();
          for (uint64_t i = 0; i < kEach; ++i) {
            const Mark m{t, i};
            const AppendResult r = e->submit(s, ExpectedVersion::exact(i), {std::array{mark_event(m)}});
            if (r.ok()) acked.fetch_add(1);
            else failures.fetch_add(1);
          }
          return;
        }
        Submitter sub = e->submitter().value();
        const StreamId s = sub.stream("sub-" + std::to_string(t)).value();
        std::vector<Mark> marks(kEach);
        std::vector<EventData> events(kEach);
        std::vector<Ticket> tickets(kEach);
        uint64_t done = 0;
        for (uint64_t i = 0; i < kEach; ++i) {
          marks[i] = Mark{t, i};
          events[i] = mark_event(marks[i]);
          while (i - done >= kWindow) {  // keep kWindow in flight: pipelined
            if (sub.wait(tickets[done]).ok()) acked.fetch_add(1);
            else failures.fetch_add(1);
            ++done;
          }
          SubmitCode c;
          while ((c = sub.try_submit(s, ExpectedVersion::exact(i), {&events[i], 1}, &tickets[i])) ==
                 SubmitCode::back_pressured) {
            if (sub.wait(tickets[done]).ok()) acked.fetch_add(1);
            else failures.fetch_add(1);
            ++done;
          }
          if (c != SubmitCode::ok) failures.fetch_add(1);
        }
        for (; done < kEach; ++done) {
          if (sub.wait(tickets[done]).ok()) acked.fetch_add(1);
          else failures.fetch_add(1);
        }
      });
    for (auto& t : ts) t.join();
    ASSERT_TRUE(e->stop().ok());
    EXPECT_EQ(failures.load(), 0u);
    EXPECT_EQ(acked.load(), kThreads * kEach);
    auto marks = read_marks(dir);
    ASSERT_EQ(marks.size(), kThreads);
    for (auto& [t, seqs] : marks) {
      ASSERT_EQ(seqs.size(), kEach) << "submitter " << t;
      for (uint64_t i = 0; i < kEach; ++i) ASSERT_EQ(seqs[i], i) << "submitter " << t << " out of order";
    }
  }
}

TEST(EngineIngress, StopWithSubmittersRunningCompletesOrRefusesEveryRequest) {
  const std::string dir = testing::fresh_engine_dir("ingress", "stop");
  auto e = Engine::open(dir, ingress_options()).value();
  ASSERT_TRUE(e->start().ok());
  constexpr uint64_t kThreads = 4;
  std::atomic<uint64_t> ok{0}, closed{0}, other{0};
  std::atomic<int> started{0};
  std::vector<std::thread> ts;
  for (uint64_t t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      Submitter sub = e->submitter().value();
      const StreamId s = sub.stream("stop-" + std::to_string(t)).value();
      started.fetch_add(1);
      for (uint64_t i = 0;; ++i) {
        const Mark m{t, i};
        const EventData ev = mark_event(m);
        const AppendResult r = sub.submit(s, ExpectedVersion::exact(i), ev);
        if (r.ok()) {
          ok.fetch_add(1);
        } else if (r.code == AppendCode::closed) {
          closed.fetch_add(1);
          return;  // every later one is refused too
        } else {
          other.fetch_add(1);
          return;
        }
      }
    });
  while (started.load() < static_cast<int>(kThreads) || ok.load() < 2000) std::this_thread::yield();
  ASSERT_TRUE(e->stop().ok());  // never hangs: each submitter gets a result
  for (auto& t : ts) t.join();
  EXPECT_EQ(other.load(), 0u);
  EXPECT_EQ(closed.load(), kThreads) << "every submitter saw its refusal";
  uint64_t in_log = 0;
  for (auto& [t, seqs] : read_marks(dir)) {
    for (uint64_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i);
    in_log += seqs.size();
  }
  EXPECT_EQ(in_log, ok.load()) << "every acknowledged event is in the log, and nothing else";
}

TEST(EngineIngress, BackPressureIsReportedInTheStatsFile) {
  const std::string dir = testing::fresh_engine_dir("ingress", "bp");
  EngineOptions o = ingress_options();
  o.ingress.max_in_flight = 2;
  auto e = Engine::open(dir, o).value();
  ASSERT_TRUE(e->add_projection<Counting>("counting").ok());
  ASSERT_TRUE(e->start().ok());
  Submitter sub = e->submitter().value();
  const StreamId s = sub.stream("bp").value();
  const Mark m{0, 0};
  const EventData ev = mark_event(m);
  uint64_t refused = 0, accepted = 0;
  std::vector<Ticket> tickets;
  // Submit without waiting until the window is full: the third unfinished one is refused
  // (unless the writer already finished the first two, which then frees room: keep going).
  for (int i = 0; i < 100000 && refused == 0; ++i) {
    Ticket t = 0;
    const SubmitCode c = sub.try_submit(s, ExpectedVersion::any(), {&ev, 1}, &t);
    if (c == SubmitCode::ok) {
      ++accepted;
      tickets.push_back(t);
    } else {
      ASSERT_EQ(c, SubmitCode::back_pressured);
      ++refused;
    }
  }
  ASSERT_GT(refused, 0u) << "never back-pressured with max_in_flight = 2";
  for (Ticket t : tickets) EXPECT_TRUE(sub.wait(t).ok());
  ASSERT_TRUE(e->stop().ok());
  const counters::EngineStat st = counters::read_stats(*e->stats());
  ASSERT_TRUE(st.ingress.present);
  EXPECT_EQ(st.ingress.back_pressured, refused);
  EXPECT_EQ(st.ingress.requests, accepted + 1) << "the appends and the stream definition";
  ASSERT_EQ(st.consumers.size(), 1u);
  EXPECT_EQ(st.consumers[0].position, accepted) << "the worker's consumer reached the head";
}

TEST(EngineIngress, SubmittersAreLimitedAndReused) {
  const std::string dir = testing::fresh_engine_dir("ingress", "pool");
  EngineOptions o = ingress_options();
  o.ingress.max_producers = 2;
  auto e = Engine::open(dir, o).value();
  EXPECT_FALSE(e->submitter().ok()) << "before start()";
  ASSERT_TRUE(e->start().ok());
  {
    auto a = e->submitter();
    auto b = e->submitter();
    ASSERT_TRUE(a.ok() && b.ok());
    auto c = e->submitter();
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), StatusCode::busy);
    EXPECT_NE(c.status().message().find("max_producers"), std::string::npos) << c.status().to_string();
  }
  EXPECT_TRUE(e->submitter().ok()) << "handles give their producer back";
  ASSERT_TRUE(e->stop().ok());
}

TEST(EngineIngress, CallerModeHasNoIngress) {
  const std::string dir = testing::fresh_engine_dir("ingress", "caller");
  auto e = Engine::open(dir, testing::small_engine_options()).value();
  ASSERT_TRUE(e->start().ok());
  EXPECT_EQ(e->submitter().status().code(), StatusCode::invalid_argument);
  const Mark m{0, 0};
  EXPECT_EQ(e->submit(1, ExpectedVersion::any(), {std::array{mark_event(m)}}).code, AppendCode::closed);
  ASSERT_TRUE(e->stop().ok());
}

TEST(EngineIngress, SubmittingDoesNotAllocateOnceWarm) {
  const std::string dir = testing::fresh_engine_dir("ingress", "alloc");
  auto e = Engine::open(dir, ingress_options()).value();
  ASSERT_TRUE(e->start().ok());
  Submitter sub = e->submitter().value();
  const StreamId s = sub.stream("alloc").value();
  const StreamId s2 = e->submit_stream("alloc-2").value();
  const Mark m{0, 0};
  const EventData ev = mark_event(m);
  ASSERT_TRUE(sub.submit(s, ExpectedVersion::any(), ev).ok());  // warm up
  ASSERT_TRUE(e->submit(s2, ExpectedVersion::any(), {&ev, 1}).ok());
  uint64_t failures = 0;
  g_allocations = 0;
  t_counting = true;  // this thread only: the writer and workers are not counted
  for (int i = 0; i < 2000; ++i) {
    if (!sub.submit(s, ExpectedVersion::any(), ev).ok()) ++failures;  // waiting form
    Ticket t[8];
    for (Ticket& k : t)  // pipelined form
      if (sub.try_submit(s, ExpectedVersion::any(), {&ev, 1}, &k) != SubmitCode::ok) ++failures;
    for (Ticket k : t)
      if (!sub.wait(k).ok()) ++failures;
    if (!e->submit(s2, ExpectedVersion::any(), {&ev, 1}).ok()) ++failures;  // convenience form
  }
  t_counting = false;
  EXPECT_EQ(failures, 0u);
  EXPECT_EQ(g_allocations.load(), 0u) << "heap allocations on the submitting thread";
  ASSERT_TRUE(e->stop().ok());
}

}  // namespace
}  // namespace sluice
