// Ingress without a writer thread: the test thread plays the writer (drain()), so every
// outcome is deterministic — back-pressure as a value, tickets completed in order, the
// acknowledgement under group commit, close(), stream definitions and their errors.
#include "sluice/bus/ingress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "bus/log_test_util.h"
#include "sluice/bus/log_writer.h"

namespace sluice {
namespace {

using namespace sluice::testing;  // TempDir, small_log_options, event, payload_for

class IngressTest : public ::testing::Test {
 protected:
  void open(Durability d = Durability::none, uint32_t in_flight = 4) {
    auto w = LogWriter::open(dir_.sub("log"), small_log_options(d));
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    w_ = std::move(w.value());
    auto s = w_->stream("s");
    ASSERT_TRUE(s.ok());
    s_ = *s;
    IngressOptions io;
    io.max_producers = 2;
    io.max_in_flight = in_flight;
    in_ = std::make_unique<Ingress>(io);
    in_->attach(w_.get());
  }
  TempDir dir_{"ingress"};
  std::unique_ptr<LogWriter> w_;
  StreamId s_ = 0;
  std::unique_ptr<Ingress> in_;
  const std::string payload_ = payload_for(0);
  EventData e_ = event(payload_);
};

TEST_F(IngressTest, BackPressureIsAValueAndTicketsCompleteInOrder) {
  ASSERT_NO_FATAL_FAILURE(open());
  IngressProducer& p = *in_->acquire_producer().value();
  std::vector<Ticket> tickets;
  for (int i = 0; i < 4; ++i) {
    Ticket t = 0;
    ASSERT_EQ(p.try_submit(s_, ExpectedVersion::exact(static_cast<uint64_t>(i)), {&e_, 1}, &t), SubmitCode::ok);
    tickets.push_back(t);
  }
  Ticket t = 0;
  // A refused request (here of 5 events) must not disturb the unfinished one whose results
  // entry it would have used (its event count decides when it is acknowledged).
  const EventData five[5] = {e_, e_, e_, e_, e_};
  EXPECT_EQ(p.try_submit(s_, ExpectedVersion::any(), five, &t), SubmitCode::back_pressured)
      << "a fifth request with max_in_flight 4 must be refused, not queued";
  EXPECT_EQ(in_->back_pressured(), 1u);
  AppendResult r;
  EXPECT_FALSE(p.try_result(tickets[0], &r)) << "nothing was drained yet";
  EXPECT_EQ(p.in_flight(), 4u);
  EXPECT_EQ(in_->drain(*w_), 4u);
  for (size_t i = 0; i < tickets.size(); ++i) {
    ASSERT_TRUE(p.try_acknowledged(tickets[i], &r));
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.position, i) << "submission order is append order";
    EXPECT_EQ(r.stream_version, i + 1);
  }
  EXPECT_EQ(p.in_flight(), 0u);
  ASSERT_EQ(p.try_submit(s_, ExpectedVersion::exact(4), {&e_, 1}, &t), SubmitCode::ok) << "room again";
  EXPECT_EQ(in_->drain(*w_), 1u);
  EXPECT_TRUE(p.wait(t).ok());
}

TEST_F(IngressTest, ARefusedAppendCompletesWithItsCode) {
  ASSERT_NO_FATAL_FAILURE(open());
  IngressProducer& p = *in_->acquire_producer().value();
  Ticket t = 0;
  ASSERT_EQ(p.try_submit(s_, ExpectedVersion::exact(7), {&e_, 1}, &t), SubmitCode::ok);
  ASSERT_EQ(in_->drain(*w_), 1u);
  AppendResult r;
  ASSERT_TRUE(p.try_acknowledged(t, &r)) << "a refused append needs no acknowledgement";
  EXPECT_EQ(r.code, AppendCode::conflict);
}

TEST_F(IngressTest, UnderGroupCommitAResultIsAcknowledgedOnlyAfterTheFlush) {
  ASSERT_NO_FATAL_FAILURE(open(Durability::group));
  IngressProducer& p = *in_->acquire_producer().value();
  Ticket t = 0;
  ASSERT_EQ(p.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &t), SubmitCode::ok);
  ASSERT_EQ(in_->drain(*w_), 1u);
  AppendResult r;
  ASSERT_TRUE(p.try_result(t, &r));
  ASSERT_TRUE(r.ok());
  r = p.wait(t);  // the maintenance thread's group flush acknowledges it
  ASSERT_TRUE(r.ok());
  EXPECT_GT(w_->acknowledged_position(), r.position) << "wait() returned before the acknowledgement";
}

TEST_F(IngressTest, CloseRefusesNewSubmissionsAndDrainCompletesTheQueued) {
  ASSERT_NO_FATAL_FAILURE(open());
  IngressProducer& p = *in_->acquire_producer().value();
  Ticket queued = 0, t = 0;
  ASSERT_EQ(p.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &queued), SubmitCode::ok);
  in_->close();
  EXPECT_TRUE(in_->closed());
  EXPECT_EQ(p.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &t), SubmitCode::closed);
  EXPECT_EQ(p.submit(s_, ExpectedVersion::any(), {&e_, 1}).code, AppendCode::closed);
  EXPECT_EQ(p.define_stream("late").status().code(), StatusCode::closed);
  IngressAgent agent(*in_, *w_);
  EXPECT_FALSE(agent.drained());
  EXPECT_EQ(in_->drain(*w_), 1u);
  EXPECT_TRUE(agent.drained());
  EXPECT_TRUE(p.wait(queued).ok()) << "a request queued before close() is appended";
  EXPECT_EQ(w_->next_position(), 1u);
}

// One drain completes a producer's whole published run (one release of its completed
// counter), and each request still gets its own result: refusals among successes keep
// their codes, positions follow submission order.
TEST_F(IngressTest, OneDrainCompletesARunAndEachRequestKeepsItsResult) {
  ASSERT_NO_FATAL_FAILURE(open(Durability::none, 16));
  IngressProducer& p = *in_->acquire_producer().value();
  std::vector<Ticket> tickets(16);
  for (uint64_t i = 0; i < 16; ++i) {
    // Every fourth one names a wrong version: refused; the others append.
    const ExpectedVersion ev = i % 4 == 3 ? ExpectedVersion::exact(1000) : ExpectedVersion::any();
    ASSERT_EQ(p.try_submit(s_, ev, {&e_, 1}, &tickets[i]), SubmitCode::ok);
  }
  EXPECT_EQ(in_->size_estimate(), 16u);
  EXPECT_EQ(in_->drain(*w_), 16u) << "one drain takes the whole run";
  EXPECT_EQ(in_->size_estimate(), 0u);
  uint64_t position = 0;
  for (uint64_t i = 0; i < 16; ++i) {
    AppendResult r;
    ASSERT_TRUE(p.try_result(tickets[i], &r)) << i;
    if (i % 4 == 3) {
      EXPECT_EQ(r.code, AppendCode::conflict) << i;
    } else {
      ASSERT_TRUE(r.ok()) << i;
      EXPECT_EQ(r.position, position++) << i;
    }
  }
  EXPECT_EQ(w_->next_position(), 12u);
  EXPECT_EQ(p.in_flight(), 0u);
}

// The writer takes turns: with room for one request per drain, two busy producers alternate.
TEST_F(IngressTest, DrainsTakeTurnsAmongProducers) {
  ASSERT_NO_FATAL_FAILURE(open());
  IngressProducer& a = *in_->acquire_producer().value();
  IngressProducer& b = *in_->acquire_producer().value();
  Ticket ta[2], tb[2];
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(a.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &ta[i]), SubmitCode::ok);
    ASSERT_EQ(b.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &tb[i]), SubmitCode::ok);
  }
  for (int i = 0; i < 4; ++i) ASSERT_EQ(in_->drain(*w_, 1), 1u);
  AppendResult r0, r1, r2, r3;
  ASSERT_TRUE(a.try_result(ta[0], &r0) && b.try_result(tb[0], &r1) && a.try_result(ta[1], &r2) &&
              b.try_result(tb[1], &r3));
  // Whichever goes first, the other producer's first request comes before this one's second.
  EXPECT_EQ(std::max(r0.position, r1.position), 1u);
  EXPECT_EQ(std::min(r2.position, r3.position), 2u);
}

// A request published after the last drain (its submitter passed the closed check just
// before close()) is refused to whoever waits for it once the ingress is finished.
TEST_F(IngressTest, FinishRefusesWhatTheLastDrainDidNotTake) {
  ASSERT_NO_FATAL_FAILURE(open());
  IngressProducer& p = *in_->acquire_producer().value();
  Ticket drained = 0, late = 0;
  ASSERT_EQ(p.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &drained), SubmitCode::ok);
  ASSERT_EQ(in_->drain(*w_), 1u);
  ASSERT_EQ(p.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &late), SubmitCode::ok);
  in_->close();
  AppendResult r;
  EXPECT_FALSE(p.try_result(late, &r)) << "not finished yet: the writer may still take it";
  in_->finish();
  EXPECT_EQ(in_->drain(*w_), 0u) << "nothing is completed after finish()";
  ASSERT_TRUE(p.try_result(late, &r));
  EXPECT_EQ(r.code, AppendCode::closed);
  EXPECT_EQ(p.wait(late).code, AppendCode::closed);
  EXPECT_TRUE(p.wait(drained).ok()) << "a drained request keeps its result";
  EXPECT_EQ(p.in_flight(), 0u);
  EXPECT_EQ(w_->next_position(), 1u) << "the refused request is not in the log";
}

// A producer whose ring is full when the ingress closes hears `closed` from then on, not
// `back_pressured`: its unfinished requests are refused by finish(), so no result will ever
// make room, and a caller that retries on back-pressure would otherwise spin forever.
TEST_F(IngressTest, AFullProducerHearsClosedAfterClose) {
  ASSERT_NO_FATAL_FAILURE(open());
  IngressProducer& p = *in_->acquire_producer().value();
  Ticket t = 0;
  for (int i = 0; i < 4; ++i) ASSERT_EQ(p.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &t), SubmitCode::ok);
  ASSERT_EQ(p.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &t), SubmitCode::back_pressured);
  in_->close();
  EXPECT_EQ(p.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &t), SubmitCode::closed);
  in_->finish();
  EXPECT_EQ(p.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &t), SubmitCode::closed);
  EXPECT_EQ(p.submit(s_, ExpectedVersion::any(), {&e_, 1}).code, AppendCode::closed);
  EXPECT_EQ(p.wait(t).code, AppendCode::closed) << "the last accepted request was refused by finish()";
}

// Waiting for a ticket the producer never handed out is refused at once, not a hang.
TEST_F(IngressTest, WaitingForATicketNeverSubmittedIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(open());
  IngressProducer& p = *in_->acquire_producer().value();
  EXPECT_EQ(p.wait(0).code, AppendCode::invalid_argument);
  Ticket t = 0;
  ASSERT_EQ(p.try_submit(s_, ExpectedVersion::any(), {&e_, 1}, &t), SubmitCode::ok);
  EXPECT_EQ(p.wait_completed(t + 1).code, AppendCode::invalid_argument);
  ASSERT_EQ(in_->drain(*w_), 1u);
  EXPECT_TRUE(p.wait(t).ok());
}

// A waiting submitter whose request is still queued when the ingress finishes wakes with
// `closed` (parked or not), from another thread.
TEST_F(IngressTest, AWaiterWakesWithClosedWhenTheIngressFinishes) {
  ASSERT_NO_FATAL_FAILURE(open());
  IngressProducer& p = *in_->acquire_producer().value();
  std::atomic<int> code{-1};
  std::thread submitter([&] {
    code.store(static_cast<int>(p.submit(s_, ExpectedVersion::any(), {&e_, 1}).code), std::memory_order_release);
  });
  while (in_->size_estimate() == 0) std::this_thread::yield();
  in_->close();
  in_->finish();
  submitter.join();
  EXPECT_EQ(code.load(std::memory_order_acquire), static_cast<int>(AppendCode::closed));
}

// A StreamId past 32 bits travels as 0: the writer refuses it as unknown, never as another.
TEST_F(IngressTest, AStreamIdPast32BitsIsRefused) {
  ASSERT_NO_FATAL_FAILURE(open());
  IngressProducer& p = *in_->acquire_producer().value();
  Ticket t = 0;
  ASSERT_EQ(p.try_submit((StreamId{1} << 32) + s_, ExpectedVersion::any(), {&e_, 1}, &t), SubmitCode::ok);
  ASSERT_EQ(in_->drain(*w_), 1u);
  AppendResult r;
  ASSERT_TRUE(p.try_result(t, &r));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(w_->next_position(), 0u);
}

TEST_F(IngressTest, DefineStreamFindsOrCreatesAndNamesItsError) {
  ASSERT_NO_FATAL_FAILURE(open());
  IngressProducer& p = *in_->acquire_producer().value();
  // The test thread is also the writer: define_stream waits, so drain from a helper thread.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load(std::memory_order_acquire)) (void)in_->drain(*w_);
  });
  auto same = p.define_stream("s");
  ASSERT_TRUE(same.ok()) << same.status().to_string();
  EXPECT_EQ(*same, s_);
  auto fresh = p.define_stream("orders-1");
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(*fresh, s_);
  auto bad = p.define_stream(std::string(5000, 'x'));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::invalid_argument) << bad.status().to_string();
  EXPECT_EQ(p.define_stream("").status().code(), StatusCode::invalid_argument);
  stop.store(true, std::memory_order_release);
  writer.join();
}

TEST_F(IngressTest, ProducersArePooled) {
  ASSERT_NO_FATAL_FAILURE(open());
  auto a = in_->acquire_producer();
  auto b = in_->acquire_producer();
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = in_->acquire_producer();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::busy);
  EXPECT_NE(c.status().message().find("max_producers"), std::string::npos) << c.status().to_string();
  in_->release_producer(*a);
  auto d = in_->acquire_producer();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, *a) << "a released producer is reused";
}

}  // namespace
}  // namespace sluice
