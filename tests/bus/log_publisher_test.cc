// The log -> ring -> consumer path: zero-copy payloads across segment rolls, overrun and
// catch-up from the log, starting from a checkpoint, shutdown drain, and MPSC ingress.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "internal/segment.h"
#include "sluice/bus/agent.h"
#include "sluice/bus/file_ops.h"
#include "sluice/bus/ingress.h"
#include "sluice/bus/log_publisher.h"
#include "sluice/bus/log_writer.h"

namespace sluice {
namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

std::string fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice_bus_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

std::string payload_for(uint64_t i) { return "event-" + std::to_string(i) + std::string(i % 50, 'x'); }

// Checks positions arrive 0,1,2... exactly once and each payload is the one appended.
struct CheckingHandler : RecordHandler {
  uint64_t next = 0, errors = 0, batches = 0;
  uint64_t yield_every = 0;
  void on_record(const RecordView& v, bool eob) noexcept override {
    if (v.position() != next) ++errors;
    const auto p = v.payload();
    if (std::string_view(reinterpret_cast<const char*>(p.data()), p.size()) != payload_for(v.position())) ++errors;
    ++next;
    if (eob) ++batches;
    if (yield_every != 0 && next % yield_every == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
};

struct Log {
  std::string dir;
  std::unique_ptr<RecordRing> ring;
  std::unique_ptr<LogPublisher> publisher;
  std::unique_ptr<LogWriter> writer;
  StreamId stream = 0;

  Log(const std::string& name, size_t ring_capacity) : dir(fresh_dir(name)) {
    ring = std::make_unique<RecordRing>(ring_capacity, 0);
    publisher = std::make_unique<LogPublisher>(dir, *ring);
  }
  void open() {
    LogOptions o;
    o.segment_size = 64 * 1024;  // many rolls
    o.commit_listener = publisher.get();
    auto w = LogWriter::open(dir, o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    writer = std::move(w.value());
    auto s = writer->stream("s");
    ASSERT_TRUE(s.ok());
    stream = *s;
  }
  void append(uint64_t from, uint64_t to) {
    for (uint64_t i = from; i < to; ++i) {
      const std::string p = payload_for(i);
      EventData e;
      e.type = 1;
      e.payload = bytes(p);
      AppendResult r = writer->append(stream, ExpectedVersion::any(), e);
      ASSERT_TRUE(r.ok()) << writer->last_error().to_string();
      ASSERT_EQ(r.position, i);
    }
  }
};

// The log's clock for HandsOverOnlyABatchThatFollowsAPause (LogOptions::clock_ns takes a
// plain function). Relaxed: written and read by the test thread only (the writer's appends
// run on it).
std::atomic<int64_t> g_fake_now{1'000'000'000};
int64_t fake_now() { return g_fake_now.load(std::memory_order_relaxed); }

// The publisher hands a batch over through the shared cache (CLDEMOTE of its slot and record
// lines) only when it follows a pause of kQuietGapNs by the records' timestamps: appends 1 µs
// apart each count, appends 10 ns apart (a stream) do not, and a batch counts once.
TEST(LogPublisher, HandsOverOnlyABatchThatFollowsAPause) {
  const std::string dir = fresh_dir("handover");
  RecordRing ring(1024, 0);
  LogPublisher publisher(dir, ring);
  LogOptions o;
  o.segment_size = 64 * 1024;
  o.commit_listener = &publisher;
  o.clock_ns = &fake_now;
  auto w = LogWriter::open(dir, o);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  const StreamId s = (*w)->stream("s").value();
  const std::string p = "payload";
  EventData e;
  e.type = 1;
  e.payload = bytes(p);
  auto append_after = [&](int64_t gap_ns, size_t events) {
    g_fake_now.fetch_add(gap_ns, std::memory_order_relaxed);
    const std::vector<EventData> batch(events, e);
    ASSERT_TRUE((*w)->append(s, ExpectedVersion::any(), batch).ok());
  };
  const uint64_t before = publisher.handed_over();  // the stream definition's record, if any
  append_after(1'000, 1);
  EXPECT_EQ(publisher.handed_over(), before + 1) << "the first append after a pause";
  for (int i = 0; i < 5; ++i) append_after(10, 1);
  EXPECT_EQ(publisher.handed_over(), before + 1) << "a stream of appends 10 ns apart";
  append_after(1'000, 1);
  append_after(LogPublisher::kQuietGapNs, 1);
  EXPECT_EQ(publisher.handed_over(), before + 3) << "1 us and exactly kQuietGapNs after the last";
  append_after(1'000, 3);
  EXPECT_EQ(publisher.handed_over(), before + 4) << "a batch of 3 after a pause counts once";
  append_after(100, 3);
  EXPECT_EQ(publisher.handed_over(), before + 4) << "a batch 100 ns after the last";
  ASSERT_TRUE((*w)->close().ok());
}

// 5000 events through a block-policy consumer of a 64-slot ring, across several rolls: every
// position once, with its own payload, never overrun; the publisher keeps at most the
// current segment and the one before it mapped. `release_through`: the publisher hands its
// passed mappings to the writer.
//
// 64 slots, under the block policy: the consumer is never more than 64 events behind, far
// less than a segment (~680 events here), so at every roll every segment but the current
// and the one before it has been passed, whatever the scheduling. (With 1024 slots a
// consumer slowed by a busy machine could still be in the segment before that, and the
// bound below failed under load.)
void pass_through_a_blocking_consumer(Log& log, bool release_through) {
  CheckingHandler h;
  ProcessorOptions o;
  o.name = "projection";
  o.overrun = OverrunPolicy::block;  // never overrun: everything through the ring
  RecordConsumer c(*log.ring, log.dir, h, o);
  ASSERT_TRUE(c.status().ok());
  log.open();
  if (release_through) log.publisher->release_through(log.writer.get());
  AgentRunner r(c);
  ASSERT_TRUE(r.start().ok());
  log.append(0, 5000);
  EXPECT_GT(log.writer->stats().segment_rolls, 3u);
  AgentRunner* runners[] = {&r};
  ASSERT_TRUE(drain_and_stop(runners, std::chrono::seconds(60)).ok());
  EXPECT_EQ(h.next, 5000u);
  EXPECT_EQ(h.errors, 0u);
  EXPECT_EQ(c.stats().overruns, 0u);
  EXPECT_TRUE(log.publisher->status().ok());
  EXPECT_LE(log.publisher->mapped_segments(), 2u) << "passed segments are let go at each roll";
}

TEST(LogPublisher, ConsumersReadPayloadsZeroCopyAcrossSegmentRolls) {
  Log log("zero_copy", 64);
  ASSERT_NO_FATAL_FAILURE(pass_through_a_blocking_consumer(log, false));
  EXPECT_EQ(log.publisher->mappings_retired(), 0u) << "no writer to hand them to: unmapped inline";
  ASSERT_TRUE(log.writer->close().ok());
}

// The same path with the publisher's passed mappings handed to the writer's maintenance
// thread (release_through): every payload still arrives intact, and the mappings are
// unmapped there instead of on the appending thread.
TEST(LogPublisher, PassedSegmentsAreUnmappedByTheWritersMaintenanceThread) {
  Log log("retire", 64);
  ASSERT_NO_FATAL_FAILURE(pass_through_a_blocking_consumer(log, true));
  // Passed segments went to the writer (the first at the second roll, when its queue holds
  // two entries at most; later ones may be refused and unmapped inline if the maintenance
  // thread lags kMaxRetiredMappings behind), and the maintenance thread unmaps every one it
  // accepted: wait for it, before close() would clear its queue.
  const uint64_t handed = log.publisher->mappings_retired();
  EXPECT_GT(handed, 0u);
  for (int i = 0; i < 5000 && log.writer->mappings_unmapped() < handed; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(log.writer->mappings_unmapped(), handed);
  // A closed writer takes no more: the mapping stays with the caller, who unmaps it.
  ASSERT_TRUE(log.writer->close().ok());
  auto seg = log_internal::MappedSegment::open_read(FileOps::system(), log_internal::segment_path(log.dir, 0), 0);
  ASSERT_TRUE(seg.ok()) << seg.status().to_string();
  auto owned = std::make_unique<log_internal::MappedSegment>(std::move(seg.value()));
  EXPECT_FALSE(log.writer->retire_mapping(owned));
  EXPECT_NE(owned, nullptr);
}

// retire_mapping() refuses past kMaxRetiredMappings waiting entries (so that a roll never
// reallocates the queue) and the caller keeps the mapping. Whether a given call is refused
// depends on how fast the maintenance thread empties the queue, so the test checks that every
// mapping is either accepted (and then unmapped by that thread) or left with the caller.
TEST(LogPublisher, RetireMappingAcceptsOrLeavesTheMappingWithTheCaller) {
  Log log("retire_cap", 64);
  log.open();
  log.append(0, 2000);  // a few segments to map
  ASSERT_GT(log.writer->stats().segment_rolls, 1u);
  uint64_t accepted = 0;
  for (int i = 0; i < 3 * static_cast<int>(LogWriter::kMaxRetiredMappings); ++i) {
    auto seg = log_internal::MappedSegment::open_read(FileOps::system(), log_internal::segment_path(log.dir, 0), 0);
    ASSERT_TRUE(seg.ok()) << seg.status().to_string();
    auto owned = std::make_unique<log_internal::MappedSegment>(std::move(seg.value()));
    if (log.writer->retire_mapping(owned)) {
      EXPECT_EQ(owned, nullptr);
      ++accepted;
    } else {
      EXPECT_NE(owned, nullptr) << "refused: still the caller's";
    }
  }
  for (int i = 0; i < 5000 && log.writer->mappings_unmapped() < accepted; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(log.writer->mappings_unmapped(), accepted);
  ASSERT_TRUE(log.writer->close().ok());
}

TEST(LogPublisher, OverrunConsumerCatchesUpFromTheLogAndRejoins) {
  // The consumer starts after 3000 events went through a 16-slot ring: it must be overrun,
  // read from the log; a slow handler while appending continues may overrun it again. Once
  // it has reached the head it rejoins the ring (it then sees its next slot not newer than
  // itself) and takes the last events from the ring.
  // Allowed outcome: positions 0..N-1 each exactly once, in order; overruns >= 1,
  // caught_up >= 2984, rejoins >= 1 (more of each depending on scheduling).
  Log log("catch_up", 16);
  CheckingHandler h;
  h.yield_every = 97;
  ProcessorOptions o;
  o.name = "slow-projection";
  o.overrun = OverrunPolicy::catch_up;
  o.max_batch = 64;
  RecordConsumer c(*log.ring, log.dir, h, o);
  ASSERT_TRUE(c.status().ok());
  log.open();
  log.append(0, 3000);
  AgentRunner r(c);
  ASSERT_TRUE(r.start().ok());
  log.append(3000, 8000);
  while (c.sequence().get() < 7999 || c.lag_estimate() != 0 || c.stats().rejoins == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  log.append(8000, 8100);
  AgentRunner* runners[] = {&r};
  ASSERT_TRUE(drain_and_stop(runners, std::chrono::seconds(60)).ok());
  EXPECT_EQ(h.next, 8100u);
  EXPECT_EQ(h.errors, 0u);
  const ProcessorStats st = c.stats();
  EXPECT_GE(st.overruns, 1u);
  EXPECT_GE(st.caught_up, 2984u);
  EXPECT_GE(st.rejoins, 1u);
  EXPECT_EQ(st.events, 8100u);
  EXPECT_TRUE(c.source_status().ok()) << c.source_status().to_string();
  ASSERT_TRUE(log.writer->close().ok());
}

TEST(LogPublisher, ConsumerStartingFromACheckpointReplaysTheLogFirst) {
  // A ring created on an existing log starts at its next position; a consumer resuming from
  // checkpoint 99 reads 100.. from the log, then follows the ring.
  Log log("checkpoint", 64);
  log.open();
  log.append(0, 500);
  ASSERT_TRUE(log.writer->close().ok());
  log.writer.reset();
  // Reopen with a ring that starts where the log ends.
  log.ring = std::make_unique<RecordRing>(64, 500);
  log.publisher = std::make_unique<LogPublisher>(log.dir, *log.ring);
  CheckingHandler h;
  h.next = 100;
  ProcessorOptions o;
  o.name = "resumed";
  o.overrun = OverrunPolicy::catch_up;
  o.start_after = 99;
  RecordConsumer c(*log.ring, log.dir, h, o);
  ASSERT_TRUE(c.status().ok()) << c.status().to_string();
  log.open();
  AgentRunner r(c);
  ASSERT_TRUE(r.start().ok());
  log.append(500, 1500);
  AgentRunner* runners[] = {&r};
  Status drained = drain_and_stop(runners, std::chrono::seconds(60));
  ASSERT_TRUE(drained.ok()) << drained.to_string() << "; at " << c.sequence().get() << ", source: "
                            << c.source_status().to_string() << ", overruns " << c.stats().overruns
                            << ", caught up " << c.stats().caught_up << ", rejoins " << c.stats().rejoins;
  EXPECT_EQ(h.next, 1500u);
  EXPECT_EQ(h.errors, 0u);
  EXPECT_GE(c.stats().caught_up, 400u);
  ASSERT_TRUE(log.writer->close().ok());
}

TEST(LogPublisher, ThreeProjectionsOnOneWorkerDrainOnShutdown) {
  // 2 cores, 3 projections: one worker thread runs them all (CompositeAgent).
  Log log("three", 256);
  CheckingHandler h[3];
  std::vector<std::unique_ptr<RecordConsumer>> cs;
  for (int i = 0; i < 3; ++i) {
    ProcessorOptions o;
    o.name = "projection-" + std::to_string(i);
    o.overrun = OverrunPolicy::catch_up;
    cs.push_back(std::make_unique<RecordConsumer>(*log.ring, log.dir, h[i], o));
  }
  CompositeAgent worker({cs[0].get(), cs[1].get(), cs[2].get()}, "worker-0");
  log.open();
  AgentRunner r(worker);
  ASSERT_TRUE(r.start().ok());
  log.append(0, 4000);
  AgentRunner* runners[] = {&r};
  Status drained = drain_and_stop(runners, std::chrono::seconds(60));
  for (auto& c : cs)
    EXPECT_TRUE(drained.ok()) << drained.to_string() << "; at " << c->sequence().get() << " head " << log.ring->head()
                              << ", source: " << c->source_status().to_string() << ", overruns " << c->stats().overruns
                              << ", caught up " << c->stats().caught_up << ", rejoins " << c->stats().rejoins;
  for (auto& hh : h) {
    EXPECT_EQ(hh.next, 4000u);
    EXPECT_EQ(hh.errors, 0u);
  }
  ASSERT_TRUE(log.writer->close().ok());
}

TEST(Ingress, ManySubmittersOneWriterEveryAppendOnceInOrderPerSubmitter) {
  // Allowed outcome: every request appended exactly once; each submitter's stream has
  // versions 1..N in its submission order (checked with expected versions).
  Log log("ingress", 1024);
  log.open();
  constexpr int kSubmitters = 3;
  constexpr uint64_t kPer = 2000;
  std::vector<StreamId> streams;
  for (int i = 0; i < kSubmitters; ++i) {
    auto s = log.writer->stream("submitter-" + std::to_string(i));
    ASSERT_TRUE(s.ok());
    streams.push_back(*s);
  }
  IngressOptions io;
  io.max_producers = kSubmitters;
  io.max_in_flight = 64;
  Ingress ingress(io);
  ingress.attach(log.writer.get());
  std::atomic<bool> stop{false};
  // The writer thread: here the test thread hands the writer to one agent thread.
  IngressAgent agent(ingress, *log.writer);
  std::thread writer([&] {
    IdleStrategy idle;
    while (!stop.load(std::memory_order_acquire)) idle.idle(agent.do_work());
    while (agent.do_work() > 0) {
    }
  });
  std::atomic<uint64_t> failures{0};
  std::vector<std::thread> subs;
  for (int i = 0; i < kSubmitters; ++i) {
    subs.emplace_back([&, i] {
      auto producer = ingress.acquire_producer();
      ASSERT_TRUE(producer.ok()) << producer.status().to_string();
      IngressProducer& p = *producer.value();
      const std::string pl = payload_for(0);
      EventData e;
      e.payload = bytes(pl);
      for (uint64_t v = 0; v < kPer; ++v) {
        AppendResult r;
        // Waiting form; back-pressure cannot happen with one request in flight per producer.
        do {
          r = p.submit(streams[static_cast<size_t>(i)], ExpectedVersion::exact(v), std::span<const EventData>(&e, 1));
        } while (r.code == AppendCode::back_pressured);
        if (!r.ok()) failures.fetch_add(1);
      }
      ingress.release_producer(&p);
    });
  }
  for (auto& t : subs) t.join();
  stop.store(true, std::memory_order_release);
  writer.join();
  EXPECT_EQ(failures.load(), 0u);
  for (StreamId s : streams) EXPECT_EQ(log.writer->stream_version(s), kPer);
  EXPECT_EQ(log.writer->next_position(), kSubmitters * kPer);
  ASSERT_TRUE(log.writer->close().ok());
}

}  // namespace
}  // namespace sluice
