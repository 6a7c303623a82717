// Single-threaded tests of the ring's protocol: stamps, gating, overrun detection, barriers.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "sluice/bus/event_processor.h"
#include "sluice/bus/ring_buffer.h"

namespace sluice {
namespace {

ProcessorOptions named(std::string name, std::vector<const Sequence*> deps = {}, uint32_t max_batch = 256) {
  ProcessorOptions o;
  o.name = std::move(name);
  o.depends_on = std::move(deps);
  o.max_batch = max_batch;
  return o;
}

struct Collect {
  std::vector<std::pair<uint64_t, bool>> seen;  // value, end_of_batch
  void on_event(const uint64_t& v, int64_t, bool eob) { seen.emplace_back(v, eob); }
};

TEST(RingBuffer, PublishedSlotIsAvailableAndReadsBack) {
  RingBuffer<uint64_t> ring(8);
  uint64_t stamp;
  EXPECT_EQ(ring.probe(0, &stamp), RingBuffer<uint64_t>::SlotState::not_yet);
  ASSERT_TRUE(ring.try_publish(42));
  ASSERT_EQ(ring.probe(0, &stamp), RingBuffer<uint64_t>::SlotState::available);
  uint64_t v = 0;
  ring.read(0, &v);
  EXPECT_TRUE(ring.still_published(0));
  EXPECT_EQ(v, 42u);
  EXPECT_EQ(ring.head(), 0);
}

TEST(RingBuffer, ClaimedButUnpublishedSlotIsNotYetAvailable) {
  RingBuffer<uint64_t> ring(8);
  int64_t hi;
  ASSERT_TRUE(ring.try_claim(1, &hi));
  ring.write(hi, 7);
  uint64_t stamp;
  EXPECT_EQ(ring.probe(hi, &stamp), RingBuffer<uint64_t>::SlotState::not_yet);
  ring.publish(hi, hi);
  EXPECT_EQ(ring.probe(hi, &stamp), RingBuffer<uint64_t>::SlotState::available);
}

TEST(RingBuffer, GatingConsumerBackPressuresProducerWhenFull) {
  RingBuffer<uint64_t> ring(4);
  Sequence consumer;  // at -1: has handled nothing
  ASSERT_TRUE(ring.add_consumer(&consumer, OverrunPolicy::block));
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(ring.try_publish(i));
  EXPECT_FALSE(ring.try_publish(4)) << "a fifth event would overwrite sequence 0";
  consumer.set(0);
  EXPECT_TRUE(ring.try_publish(4));
  EXPECT_FALSE(ring.try_publish(5));
}

TEST(RingBuffer, CatchUpConsumerNeverBackPressures) {
  RingBuffer<uint64_t> ring(4);
  Sequence consumer;
  ASSERT_TRUE(ring.add_consumer(&consumer, OverrunPolicy::catch_up));
  for (uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(ring.try_publish(i));
  uint64_t stamp;
  EXPECT_EQ(ring.probe(0, &stamp), RingBuffer<uint64_t>::SlotState::overrun);
  EXPECT_EQ(ring.probe(99, &stamp), RingBuffer<uint64_t>::SlotState::available);
  EXPECT_EQ(ring.probe(100, &stamp), RingBuffer<uint64_t>::SlotState::not_yet);
}

TEST(RingBuffer, ValidationFailsWhenSlotRewrittenAfterRead) {
  RingBuffer<uint64_t> ring(4);
  Sequence reader;  // a catch-up reader: the producer then marks slots it rewrites
  ASSERT_TRUE(ring.add_consumer(&reader, OverrunPolicy::catch_up));
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(ring.try_publish(i));
  uint64_t stamp, v;
  ASSERT_EQ(ring.probe(1, &stamp), RingBuffer<uint64_t>::SlotState::available);
  ring.read(1, &v);
  int64_t hi;
  ASSERT_TRUE(ring.try_claim(2, &hi));  // sequences 4, 5: 5 rewrites slot 1
  ring.write(hi, 555);                  // mid-write: stamp says "writing"
  EXPECT_FALSE(ring.still_published(1));
}

TEST(RingBuffer, MultiProducerSequencerClaimsContiguousRanges) {
  RingBuffer<uint64_t, MultiProducerSequencer> ring(16);
  int64_t a, b;
  ASSERT_TRUE(ring.try_claim(3, &a));
  ASSERT_TRUE(ring.try_claim(2, &b));
  EXPECT_EQ(a, 2);
  EXPECT_EQ(b, 4);
  // Publishing out of order: 3..4 first; 0..2 stay unavailable until published.
  for (int64_t s = 3; s <= 4; ++s) ring.write(s, static_cast<uint64_t>(s));
  ring.publish(3, 4);
  uint64_t stamp;
  EXPECT_EQ(ring.probe(0, &stamp), (RingBuffer<uint64_t, MultiProducerSequencer>::SlotState::not_yet));
  EXPECT_EQ(ring.probe(3, &stamp), (RingBuffer<uint64_t, MultiProducerSequencer>::SlotState::available));
}

// published_run finds the end of the published prefix exactly, for runs of every length
// from every start (crossing cache lines and the ring's wrap), and never goes past `limit`.
TEST(RingBuffer, PublishedRunStopsAtTheFirstUnpublishedSlot) {
  RingBuffer<uint64_t> ring(64);
  IdleStrategy idle{IdleOptions{}};
  int64_t next = 0;
  for (int64_t len = 1; len <= 40; ++len) {
    const int64_t hi = ring.claim(len, idle);
    ASSERT_EQ(hi, next + len - 1);
    for (int64_t q = next; q <= hi; ++q) ring.write(q, static_cast<uint64_t>(q));
    EXPECT_EQ(ring.published_run(next, next + 63), next - 1) << "claimed, not published";
    ring.publish(next, hi);
    EXPECT_EQ(ring.published_run(next, next + 63), hi) << "run of " << len << " from " << next;
    EXPECT_EQ(ring.published_run(next, next), next);
    if (len > 2) {
      EXPECT_EQ(ring.published_run(next + 1, hi - 1), hi - 1) << "limit";
    }
    EXPECT_EQ(ring.published_run(hi + 1, hi + 10), hi) << "nothing after the run";
    next = hi + 1;
  }
}

TEST(RingBuffer, PublishNWritesAndPublishesEveryEventInOrder) {
  RingBuffer<uint64_t> ring(16);
  IdleStrategy idle{IdleOptions{}};
  EXPECT_EQ(ring.publish_n(5, idle, [](int64_t i) { return static_cast<uint64_t>(100 + i); }), 4);
  EXPECT_EQ(ring.head(), 4);
  EXPECT_EQ(ring.published_run(0, 15), 4);
  for (int64_t q = 0; q <= 4; ++q) {
    uint64_t v = 0;
    ring.read(q, &v);
    EXPECT_EQ(v, static_cast<uint64_t>(100 + q));
  }
  const uint64_t more[3] = {7, 8, 9};
  EXPECT_EQ(ring.publish_batch(std::span<const uint64_t>(more, 3), idle), 7);
  uint64_t v = 0;
  ring.read(7, &v);
  EXPECT_EQ(v, 9u);
}

TEST(RingBuffer, MultiProducerPublishedRunStopsAtAGap) {
  RingBuffer<uint64_t, MultiProducerSequencer> ring(16);
  int64_t a, b;
  ASSERT_TRUE(ring.try_claim(3, &a));  // 0..2
  ASSERT_TRUE(ring.try_claim(3, &b));  // 3..5
  for (int64_t q = 3; q <= b; ++q) ring.write(q, 1);
  ring.publish(3, b);  // published out of order: 0..2 are not yet
  EXPECT_EQ(ring.published_run(0, 15), -1);
  for (int64_t q = 0; q <= a; ++q) ring.write(q, 1);
  ring.publish(0, a);
  EXPECT_EQ(ring.published_run(0, 15), b);
}

TEST(EventProcessor, EndOfBatchOnLastEventOfEachPoll) {
  RingBuffer<uint64_t> ring(16);
  Collect c;
  ProcessorOptions o;
  o.max_batch = 3;
  EventProcessor<uint64_t, Collect> p(ring, c, o);
  ASSERT_TRUE(p.status().ok());
  for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(ring.try_publish(i));
  EXPECT_EQ(p.do_work(), 3);
  EXPECT_EQ(p.do_work(), 2);
  EXPECT_EQ(p.do_work(), 0);
  ASSERT_EQ(c.seen.size(), 5u);
  std::vector<bool> eob;
  for (auto& [v, e] : c.seen) eob.push_back(e);
  EXPECT_EQ(eob, (std::vector<bool>{false, false, true, false, true}));
  EXPECT_EQ(p.sequence().get(), 4);
  EXPECT_TRUE(p.drained());
}

TEST(EventProcessor, DependentConsumerWaitsForItsBarrier) {
  RingBuffer<uint64_t> ring(16);
  Collect ca, cb;
  EventProcessor<uint64_t, Collect> a(ring, ca, named("a"));
  ProcessorOptions ob;
  ob.name = "b";
  ob.depends_on = {&a.sequence()};
  EventProcessor<uint64_t, Collect> b(ring, cb, ob);
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(ring.try_publish(i));
  EXPECT_EQ(b.do_work(), 0) << "b must not pass a";
  EXPECT_EQ(a.do_work(), 4);
  EXPECT_EQ(b.do_work(), 4);
}

TEST(EventProcessor, ShardsSplitKeysAndTogetherSeeEverything) {
  RingBuffer<uint64_t> ring(64);
  Collect c0, c1, c2;
  auto opts = [](uint32_t i) {
    ProcessorOptions o;
    o.shard_index = i;
    o.shard_count = 3;
    return o;
  };
  EventProcessor<uint64_t, Collect> p0(ring, c0, opts(0)), p1(ring, c1, opts(1)), p2(ring, c2, opts(2));
  for (uint64_t i = 0; i < 60; ++i) ASSERT_TRUE(ring.try_publish(i % 7));  // 7 keys
  p0.do_work();
  p1.do_work();
  p2.do_work();
  EXPECT_EQ(c0.seen.size() + c1.seen.size() + c2.seen.size(), 60u);
  for (auto* c : {&c0, &c1, &c2}) {
    if (!c->seen.empty()) {
      EXPECT_TRUE(c->seen.back().second) << "last handled event ends the batch";
    }
    for (auto& [v, e] : c->seen) EXPECT_EQ(mix_key(v) % 3, mix_key(c->seen[0].first) % 3);
  }
  EXPECT_EQ(p0.sequence().get(), 59);
  EXPECT_EQ(p2.sequence().get(), 59);
}

TEST(EventProcessor, CatchUpWithoutSourceIsASetupError) {
  RingBuffer<uint64_t> ring(8);
  Collect c;
  ProcessorOptions o;
  o.overrun = OverrunPolicy::catch_up;
  EventProcessor<uint64_t, Collect> p(ring, c, o);
  EXPECT_EQ(p.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(p.status().message().find("catch-up source"), std::string::npos);
}

// A source that serves sequences below `end`: value = sequence.
struct CountingSource : CatchUpSource<uint64_t> {
  explicit CountingSource(int64_t e) : end(e) {}
  ReadResult read(int64_t s, uint64_t* out) noexcept override {
    if (s >= end) return ReadResult::not_yet;
    *out = static_cast<uint64_t>(s);
    ++reads;
    return ReadResult::ok;
  }
  Status status() const override { return Status::OK(); }
  int64_t end;
  int reads = 0;
};

TEST(EventProcessor, OverrunCatchesUpFromSourceAndRejoins) {
  RingBuffer<uint64_t> ring(4);
  Collect c;
  CountingSource src(10);
  ProcessorOptions o;
  o.overrun = OverrunPolicy::catch_up;
  o.max_batch = 4;
  EventProcessor<uint64_t, Collect> p(ring, c, o, &src);
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(ring.try_publish(i));  // ring holds 6..9
  while (p.sequence().get() < 9) ASSERT_GT(p.do_work(), 0);
  ASSERT_EQ(c.seen.size(), 10u);
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(c.seen[i].first, i);
  EXPECT_EQ(p.stats().overruns, 1u);
  // Batches of 4 from the source: 0..3, 4..7 (the ring still held 6 and 7: harmless),
  // then the ring holds 8 and the consumer rejoins.
  EXPECT_EQ(p.stats().caught_up, 8u);
  EXPECT_EQ(p.stats().rejoins, 1u);
  EXPECT_FALSE(p.catching_up());
  EXPECT_EQ(p.stats().events, 10u);
}

}  // namespace
}  // namespace sluice
