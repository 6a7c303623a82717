// Multi-threaded tests of rings, processors, runners and shutdown. Run under TSan in CI
// (label "concurrency"). No test asserts on timing; each states the outcomes it allows.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "sluice/bus/agent.h"
#include "sluice/bus/event_processor.h"
#include "sluice/bus/ring_buffer.h"

namespace sluice {

// In this test binary a uint64_t event is stream << 32 | version: shard by stream.
template <>
struct ShardKey<uint64_t> {
  static uint64_t of(const uint64_t& v) noexcept { return v >> 32; }
};

namespace {

ProcessorOptions named(std::string name, std::vector<const Sequence*> deps = {}, uint32_t max_batch = 256) {
  ProcessorOptions o;
  o.name = std::move(name);
  o.depends_on = std::move(deps);
  o.max_batch = max_batch;
  return o;
}

constexpr uint64_t event_of(uint64_t producer, uint64_t i) { return producer << 40 | i; }

// Checks, per producer, that values arrive exactly once and in order.
struct OrderChecker {
  std::map<uint64_t, uint64_t> next;  // producer -> next expected index
  uint64_t count = 0;
  uint64_t errors = 0;
  int64_t last_seq = -1;
  void on_event(const uint64_t& v, int64_t seq, bool) {
    if (seq != last_seq + 1 && last_seq != -1) ++errors;  // sequences are contiguous
    last_seq = seq;
    uint64_t& n = next[v >> 40];
    if ((v & ((uint64_t{1} << 40) - 1)) != n) ++errors;
    ++n;
    ++count;
  }
};

TEST(BusConcurrency, MultiProducerEveryConsumerSeesEveryEventOnceInProducerOrder) {
  // Allowed outcome: each consumer sees exactly kProducers * kPerProducer events, each
  // producer's in its own order; the interleaving between producers is free.
  constexpr uint64_t kProducers = 3, kPerProducer = 20'000;
  RingBuffer<uint64_t, MultiProducerSequencer> ring(256);
  OrderChecker c1, c2;
  EventProcessor<uint64_t, OrderChecker, MultiProducerSequencer> p1(ring, c1, named("c1"));
  EventProcessor<uint64_t, OrderChecker, MultiProducerSequencer> p2(ring, c2, named("c2", {}, 7));
  AgentRunner r1(p1), r2(p2);
  ASSERT_TRUE(r1.start().ok());
  ASSERT_TRUE(r2.start().ok());
  std::vector<std::thread> producers;
  for (uint64_t p = 0; p < kProducers; ++p) {
    producers.emplace_back([&ring, p] {
      IdleStrategy idle;
      for (uint64_t i = 0; i < kPerProducer; ++i) {
        if (i % 5 == 4 && i + 2 < kPerProducer) {  // mix single publishes and batches
          uint64_t batch[3] = {event_of(p, i), event_of(p, i + 1), event_of(p, i + 2)};
          ring.publish_batch(std::span<const uint64_t>(batch, 3), idle);
          i += 2;
        } else {
          ring.publish(event_of(p, i), idle);
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  AgentRunner* runners[] = {&r1, &r2};
  ASSERT_TRUE(drain_and_stop(runners, std::chrono::seconds(60)).ok());
  for (OrderChecker* c : {&c1, &c2}) {
    EXPECT_EQ(c->count, kProducers * kPerProducer);
    EXPECT_EQ(c->errors, 0u);
    for (uint64_t p = 0; p < kProducers; ++p) EXPECT_GE(c->next[p], kPerProducer);
  }
}

// Event = stream << 32 | version-in-stream (1-based).
struct StreamOrder {
  std::map<uint64_t, uint64_t> version;
  uint64_t count = 0, errors = 0;
  void on_event(const uint64_t& v, int64_t, bool) {
    uint64_t& last = version[v >> 32];
    if ((v & 0xffffffffu) != last + 1) ++errors;
    last = v & 0xffffffffu;
    ++count;
  }
};

TEST(BusConcurrency, ShardingKeepsPerStreamOrderAndSplitsStreams) {
  // Allowed outcome: every event handled by exactly one shard; each stream's versions seen
  // 1, 2, 3... by a single shard.
  constexpr int kShards = 3;
  constexpr uint64_t kStreams = 50, kEvents = 30'000;
  RingBuffer<uint64_t> ring(128);
  StreamOrder h[kShards];
  std::vector<std::unique_ptr<EventProcessor<uint64_t, StreamOrder>>> ps;
  std::vector<std::unique_ptr<AgentRunner>> rs;
  for (int i = 0; i < kShards; ++i) {
    ProcessorOptions o;
    o.name = "shard" + std::to_string(i);
    o.shard_index = static_cast<uint32_t>(i);
    o.shard_count = kShards;
    ps.push_back(std::make_unique<EventProcessor<uint64_t, StreamOrder>>(ring, h[i], o));
  }
  for (auto& p : ps) {
    rs.push_back(std::make_unique<AgentRunner>(*p));
    ASSERT_TRUE(rs.back()->start().ok());
  }
  std::vector<uint64_t> versions(kStreams, 0);
  IdleStrategy idle;
  for (uint64_t i = 0; i < kEvents; ++i) {
    const uint64_t s = (i * 7919) % kStreams;
    ring.publish(s << 32 | ++versions[s], idle);
  }
  std::vector<AgentRunner*> runners;
  for (auto& r : rs) runners.push_back(r.get());
  ASSERT_TRUE(drain_and_stop(runners, std::chrono::seconds(60)).ok());
  uint64_t total = 0;
  std::map<uint64_t, int> owner;
  for (int i = 0; i < kShards; ++i) {
    EXPECT_EQ(h[i].errors, 0u) << "shard " << i;
    total += h[i].count;
    for (auto& [stream, v] : h[i].version) {
      EXPECT_EQ(owner.count(stream), 0u) << "stream " << stream << " on two shards";
      owner[stream] = i;
      EXPECT_EQ(v, versions[stream]);
    }
  }
  EXPECT_EQ(total, kEvents);
  EXPECT_EQ(owner.size(), kStreams);
}

// Pipeline / diamond: stages write marks into plain (non-atomic) arrays; later stages read
// them. Correct barriers make this race-free (TSan would report a missing happens-before).
struct Stage {
  std::vector<uint64_t>* write_to = nullptr;
  std::vector<const std::vector<uint64_t>*> read_from;
  uint64_t errors = 0, count = 0;
  void on_event(const uint64_t& v, int64_t seq, bool) {
    for (const auto* r : read_from)
      if ((*r)[static_cast<size_t>(seq)] != v + 1) ++errors;
    if (write_to) (*write_to)[static_cast<size_t>(seq)] = v + 1;
    ++count;
  }
};

TEST(BusConcurrency, ThreeStepPipelineRespectsDependencies) {
  // Allowed outcome: B sees A's mark for every event, C sees B's; no errors.
  constexpr uint64_t kEvents = 20'000;
  RingBuffer<uint64_t> ring(64);
  std::vector<uint64_t> ma(kEvents), mb(kEvents);
  Stage a{&ma, {}}, b{&mb, {&ma}}, c{nullptr, {&mb}};
  EventProcessor<uint64_t, Stage> pa(ring, a, named("a"));
  EventProcessor<uint64_t, Stage> pb(ring, b, named("b", {&pa.sequence()}));
  EventProcessor<uint64_t, Stage> pc(ring, c, named("c", {&pb.sequence()}));
  AgentRunner ra(pa), rb(pb), rc(pc);
  for (auto* r : {&ra, &rb, &rc}) ASSERT_TRUE(r->start().ok());
  IdleStrategy idle;
  for (uint64_t i = 0; i < kEvents; ++i) ring.publish(i * 3, idle);
  AgentRunner* runners[] = {&ra, &rb, &rc};
  ASSERT_TRUE(drain_and_stop(runners, std::chrono::seconds(60)).ok());
  EXPECT_EQ(a.count, kEvents);
  EXPECT_EQ(b.count, kEvents);
  EXPECT_EQ(c.count, kEvents);
  EXPECT_EQ(b.errors + c.errors, 0u);
}

TEST(BusConcurrency, DiamondJoinsBothBranches) {
  // A and B in parallel, C after both: C sees both marks for every event.
  constexpr uint64_t kEvents = 20'000;
  RingBuffer<uint64_t> ring(64);
  std::vector<uint64_t> ma(kEvents), mb(kEvents);
  Stage a{&ma, {}}, b{&mb, {}}, c{nullptr, {&ma, &mb}};
  EventProcessor<uint64_t, Stage> pa(ring, a, named("a"));
  EventProcessor<uint64_t, Stage> pb(ring, b, named("b"));
  EventProcessor<uint64_t, Stage> pc(ring, c, named("c", {&pa.sequence(), &pb.sequence()}));
  // A and B share one worker (composite), C has its own.
  CompositeAgent ab({&pa, &pb}, "a+b");
  AgentRunner rab(ab), rc(pc);
  ASSERT_TRUE(rab.start().ok());
  ASSERT_TRUE(rc.start().ok());
  IdleStrategy idle;
  for (uint64_t i = 0; i < kEvents; ++i) ring.publish(i, idle);
  AgentRunner* runners[] = {&rab, &rc};
  ASSERT_TRUE(drain_and_stop(runners, std::chrono::seconds(60)).ok());
  EXPECT_EQ(c.count, kEvents);
  EXPECT_EQ(c.errors, 0u);
}

TEST(BusConcurrency, ShutdownDrainsEveryConsumerToTheHead) {
  // Events published right before shutdown are all handled: nothing lost (the Disruptor
  // halt() loses them). Allowed outcome: every consumer's count == published.
  for (int round = 0; round < 5; ++round) {
    RingBuffer<uint64_t> ring(32);
    OrderChecker c1, c2, c3;
    EventProcessor<uint64_t, OrderChecker> p1(ring, c1, named("p1"));
    EventProcessor<uint64_t, OrderChecker> p2(ring, c2, named("p2"));
    EventProcessor<uint64_t, OrderChecker> p3(ring, c3, named("p3", {&p1.sequence()}));
    CompositeAgent both({&p2, &p3});
    AgentRunner r1(p1), r23(both);
    ASSERT_TRUE(r1.start().ok());
    ASSERT_TRUE(r23.start().ok());
    IdleStrategy idle;
    const uint64_t n = 1000 + 777 * static_cast<uint64_t>(round);
    for (uint64_t i = 0; i < n; ++i) ring.publish(event_of(0, i), idle);
    AgentRunner* runners[] = {&r1, &r23};
    ASSERT_TRUE(drain_and_stop(runners, std::chrono::seconds(60)).ok());
    EXPECT_EQ(c1.count, n);
    EXPECT_EQ(c2.count, n);
    EXPECT_EQ(c3.count, n);
  }
}

struct Never {
  void on_event(const uint64_t&, int64_t, bool) {}
};

TEST(BusConcurrency, DrainThatCannotFinishReportsTheAgent) {
  // A consumer that depends on a sequence that never moves cannot drain: the Status names it.
  RingBuffer<uint64_t> ring(8);
  Sequence stuck;  // stays at -1
  Never h;
  EventProcessor<uint64_t, Never> p(ring, h, named("stuck-projection", {&stuck}));
  AgentRunner r(p);
  ASSERT_TRUE(r.start().ok());
  IdleStrategy idle;
  ring.publish(1, idle);
  AgentRunner* runners[] = {&r};
  Status st = drain_and_stop(runners, std::chrono::milliseconds(50));
  EXPECT_EQ(st.code(), StatusCode::timeout);
  EXPECT_NE(st.message().find("stuck-projection"), std::string::npos);
}

TEST(BusConcurrency, ParkedConsumerIsWokenByPublish) {
  // A consumer with backoff-park idles into a park; publishing must wake it. The park bound
  // is 90 s, so that only the publisher's notify() can deliver an event in time: with a no-op
  // notify() (the 1 ms default bound used to deliver anyway) the consumer sleeps through
  // the one-minute liveness guard below and the test fails (then ends once the park times
  // out). No timing is asserted: the guard is far beyond any wake-up.
  RingBuffer<uint64_t> ring(16);
  OrderChecker c;
  std::atomic<uint64_t> handled{0};
  struct Counting {
    OrderChecker* c;
    std::atomic<uint64_t>* handled;
    void on_event(const uint64_t& v, int64_t seq, bool end) {
      c->on_event(v, seq, end);
      // Release: publishes the checker's state to the test thread that acquires `handled`.
      handled->fetch_add(1, std::memory_order_release);
    }
  } counting{&c, &handled};
  EventProcessor<uint64_t, Counting> p(ring, counting, named("parker"));
  RunnerOptions ro;
  ro.idle.spins = 1;
  ro.idle.yields = 1;
  ro.idle.min_park = std::chrono::seconds(90);
  ro.idle.max_park = std::chrono::seconds(90);
  AgentRunner r(p, ro);
  ASSERT_TRUE(r.start().ok());
  IdleStrategy idle;
  bool woken = true;
  for (uint64_t i = 0; i < 20 && woken; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(500));  // let it park
    ring.publish(event_of(0, i), idle);
    const auto guard = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    // Acquire: pairs with the release in Counting::on_event.
    while (handled.load(std::memory_order_acquire) < i + 1 && std::chrono::steady_clock::now() < guard)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    woken = handled.load(std::memory_order_acquire) == i + 1;
    EXPECT_TRUE(woken) << "event " << i << " was published, and the parked consumer never woke";
  }
  AgentRunner* runners[] = {&r};
  ASSERT_TRUE(drain_and_stop(runners, std::chrono::seconds(woken ? 30 : 120)).ok());
  if (woken) {
    EXPECT_EQ(c.count, 20u);
  }
  EXPECT_EQ(c.errors, 0u);
}

TEST(BusConcurrency, PinningFailureIsReportedNotFatal) {
  RingBuffer<uint64_t> ring(8);
  OrderChecker c;
  EventProcessor<uint64_t, OrderChecker> p(ring, c, named("pinned"));
  RunnerOptions ro;
  ro.cpu = 100000;  // no such CPU
  AgentRunner r(p, ro);
  ASSERT_TRUE(r.start().ok());
  EXPECT_FALSE(r.pin_status().ok());
  EXPECT_NE(r.pin_status().message().find("100000"), std::string::npos);
  IdleStrategy idle;
  ring.publish(1, idle);
  AgentRunner* runners[] = {&r};
  ASSERT_TRUE(drain_and_stop(runners, std::chrono::seconds(30)).ok());
  EXPECT_EQ(c.count, 1u);
}

// Stress: random topologies (1-3 producers, 1-3 consumers of either policy with a source
// that can serve anything, random ring sizes and batch sizes).
// Allowed outcomes, per consumer: exactly the published events, each once, per-producer
// order kept; block consumers never overrun.
struct SeqSource : CatchUpSource<uint64_t> {
  // Serves the events the test recorded by sequence (filled before publish).
  const std::vector<std::atomic<uint64_t>>* by_seq = nullptr;
  ReadResult read(int64_t s, uint64_t* out) noexcept override {
    // A catch-up may ask past the last event (up to the ring's claimed cursor): like the log,
    // answer "not yet" there.
    if (s < 0 || static_cast<size_t>(s) >= by_seq->size()) return ReadResult::not_yet;
    const uint64_t v = (*by_seq)[static_cast<size_t>(s)].load(std::memory_order_acquire);
    if (v == 0) return ReadResult::not_yet;
    *out = v - 1;
    return ReadResult::ok;
  }
  Status status() const override { return Status::OK(); }
};

struct SlowChecker : OrderChecker {
  uint64_t slow_every = 0;
  void on_event(const uint64_t& v, int64_t seq, bool eob) {
    OrderChecker::on_event(v, seq, eob);
    if (slow_every != 0 && count % slow_every == 0) std::this_thread::yield();
  }
};

TEST(BusConcurrency, StressSingleProducerMixedPolicies) {
  uint64_t seed = 12345;
  auto rnd = [&seed](uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  for (int round = 0; round < 6; ++round) {
    const uint64_t kEvents = 10'000;
    const size_t cap = size_t{4} << rnd(5);  // 4..64
    RingBuffer<uint64_t> ring(cap);
    // The "log": the value of each sequence, stored (release) before it is published.
    std::vector<std::atomic<uint64_t>> log(kEvents);
    SeqSource src;
    src.by_seq = &log;
    const int nc = 1 + static_cast<int>(rnd(3));
    std::vector<std::unique_ptr<SlowChecker>> hs;
    std::vector<std::unique_ptr<EventProcessor<uint64_t, SlowChecker>>> ps;
    std::vector<std::unique_ptr<SeqSource>> sources;
    std::vector<std::unique_ptr<AgentRunner>> rs;
    for (int i = 0; i < nc; ++i) {
      hs.push_back(std::make_unique<SlowChecker>());
      hs.back()->slow_every = rnd(2) ? 3 : 0;
      sources.push_back(std::make_unique<SeqSource>(src));
      ProcessorOptions o;
      o.name = "c" + std::to_string(i);
      o.overrun = rnd(2) ? OverrunPolicy::catch_up : OverrunPolicy::block;
      o.max_batch = 1 + static_cast<uint32_t>(rnd(40));
      ps.push_back(std::make_unique<EventProcessor<uint64_t, SlowChecker>>(ring, *hs.back(), o, sources.back().get()));
      ASSERT_TRUE(ps.back()->status().ok());
    }
    for (auto& p : ps) {
      RunnerOptions ro;
      ro.idle.kind = rnd(2) ? IdleKind::yield : IdleKind::backoff_park;
      rs.push_back(std::make_unique<AgentRunner>(*p, ro));
      ASSERT_TRUE(rs.back()->start().ok());
    }
    IdleStrategy idle;
    for (uint64_t i = 0; i < kEvents; ++i) {
      const uint64_t v = event_of(0, i);
      log[i].store(v + 1, std::memory_order_release);
      ring.publish(v, idle);
    }
    std::vector<AgentRunner*> runners;
    for (auto& r : rs) runners.push_back(r.get());
    ASSERT_TRUE(drain_and_stop(runners, std::chrono::seconds(60)).ok());
    for (int i = 0; i < nc; ++i) {
      EXPECT_EQ(hs[static_cast<size_t>(i)]->count, kEvents) << "round " << round << " consumer " << i;
      EXPECT_EQ(hs[static_cast<size_t>(i)]->errors, 0u);
    }
  }
}

}  // namespace
}  // namespace sluice
