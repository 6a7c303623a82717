// Ingress: many threads submit appends (and stream definitions) to the single log writer.
//
//   submitter thread                                                writer thread
//   ────────────────                                                ─────────────
//   IngressProducer::try_submit(stream, expected, events)           IngressAgent::do_work()
//     requests[t % size] = request; its seq = t + 1 (release) ──►    Ingress::drain(): each producer in turn:
//     (no lock, no allocation, no syscall, no locked instruction)     the published run of its ring → append()
//   try_result(t) / wait(t)  ◄── results[t % size] + its done = t + 1 (release), per request
//                            ◄── completed = end of the run (release), once per drain (room)
//                            ◄── LogWriter::acknowledged_position() (group / sync)
//
// Design
//   Each submitting thread holds an IngressProducer (acquire_producer(): cold, pooled). The
//   producer owns two rings of max_in_flight slots: requests (submitter → writer) and results
//   (writer → submitter). A ring has one writer and one reader, so a submitter preempted
//   mid-submission never holds up the others or the writer (a multi-producer ring would: its
//   consumer must wait for the preempted producer's claimed slot — docs/bus.md). The writer
//   visits the producers in turn (starting one further each drain) and takes each one's whole
//   published run, up to `max`.
//
//   What crosses between the two cores is most of an ingress's cost, so each side writes
//   only lines the other reads once: a request slot is 32 bytes with its own publication word
//   (`seq`, ticket + 1: the writer's check and read cost one transfer, and no shared counter
//   line bounces on every submission); a result slot is 32 bytes with its own `done` word (the
//   submitter's check and read cost one transfer; a shared completed count read before each
//   result made the waiting round trip ~680 ns, this ~450 ns). The writer
//   finds the published run first (independent loads, so the lines' transfers overlap) and
//   prefetches each request's EventData as soon as its pointer is known. A drain ends with one
//   release store of the producer's `completed` count: the submitter reads it only to reuse a
//   request slot (back-pressure), not per result. Submitting has no seq_cst store or locked
//   instruction (the former Dekker handshake with close() drained the store buffer on every
//   submission behind a line the writer was reading; see Closing). Before this design the
//   ingress was a moodycamel ConcurrentQueue with one explicit-producer sub-queue per
//   submitter: its bulk dequeue and per-request completion cost the writer more than the
//   append itself (bench/results/e2e-2026-11-30-ingress.md).
//
//   Completion without a per-request object: a request is a ticket (the producer's running
//   count); slot t % size holds ticket t in both rings, so the rings are also the in-flight
//   bound. One thread keeps up to `max_in_flight` appends in flight (the pipelined form) and
//   waits for any of them later; the waiting form is try_submit() + wait(). A result is final
//   when it is committed (or refused); it is *acknowledged* when the log's durability policy
//   has covered its last event (none: at once; group: when a group flush passed it; sync: the
//   writer flushed before completing) — wait() waits for that.
//
//   Back-pressure is a value: try_submit() returns back_pressured when the producer already
//   has max_in_flight unfinished requests; nothing is dropped and nothing grows. Capacity is
//   preallocated per producer (max_in_flight request and result slots).
//
//   Waiting: a waiter far from its turn (kFar or more of its producer's earlier requests not
//   yet completed) yields the CPU — submitters may outnumber CPUs, and a spinning one keeps
//   the others from submitting; near its turn it spins, yields, then parks on the producer's
//   WakeSignal (the writer notifies after each drain: one relaxed load when nobody parks).
//   The writer parks on the ingress's WakeSignal, notified by try_submit() the same way.
//
//   Closing: close() stops new submissions (a relaxed check in try_submit()). A submitter that
//   passed the check just before close() may publish after the writer's last drain; so the
//   thread that drains last calls finish() after it, and from then on a waiter whose request
//   is not completed gets `closed` (it re-reads the result after acquiring `finished_`, which
//   is released after every completion the writer will ever make). Every request is either
//   appended with its result or refused with `closed`; no submitter waits forever.
//
// Thread safety
//   acquire_producer()/release_producer(): any thread (a mutex; cold). An IngressProducer is
//   used by one thread at a time. drain() / IngressAgent / finish(): the writer thread (the
//   thread that drains last calls finish()). close(): any thread.
//
// Invariants
//   - Requests of one producer are appended in submission (ticket) order.
//   - Every drained request is completed exactly once; a result slot's `done` never names a
//     ticket whose result is not written; nothing is completed after finish().
//   - A producer never has more than max_in_flight requests unfinished.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/bus/agent.h"
#include "sluice/bus/idle_strategy.h"
#include "sluice/bus/log_types.h"
#include "sluice/status.h"

namespace sluice {

class LogWriter;
class Ingress;

enum class SubmitCode : uint8_t {
  ok = 0,          // in the queue; the ticket identifies it
  back_pressured,  // max_in_flight unfinished, or the queue is full: retry after a result
  closed,          // the ingress no longer accepts (engine stopping)
};
std::string_view to_string(SubmitCode c) noexcept;

using Ticket = uint64_t;

struct IngressOptions {
  uint32_t max_producers = 64;    // submitting threads at once (acquire_producer fails past it)
  uint32_t max_in_flight = 1024;  // unfinished requests per producer (power of two)
};

// One request: 24 bytes, trivially copyable. The ticket is not carried (slot t % size holds
// ticket t); a stream definition carries its name in the producer's names_ array.
struct IngressRequest {
  const EventData* events = nullptr;  // kept alive by the submitter until completed
  ExpectedVersion expected = ExpectedVersion::any();
  // The StreamId; one past 32 bits (no writer has that many streams) travels as 0, which
  // the writer refuses as an unknown stream.
  uint32_t stream = 0;
  uint32_t count = 0;  // events; kDefineStream: define the stream named in names_ instead
  static constexpr uint32_t kDefineStream = ~uint32_t{0};
};
static_assert(sizeof(IngressRequest) == 24);

// One submitting thread's handle (see the file comment).
class IngressProducer {
 public:
  IngressProducer(const IngressProducer&) = delete;
  IngressProducer& operator=(const IngressProducer&) = delete;
  ~IngressProducer();

  // Pipelined: enqueues one append of `events` (all to `stream`, atomically) and returns at
  // once. The events (and their payloads) must stay alive until the ticket completes.
  [[nodiscard]] SubmitCode try_submit(StreamId stream, ExpectedVersion expected,
                                      std::span<const EventData> events, Ticket* ticket) noexcept;
  // The writer has handled `ticket` (committed or refused): *out is its result. A result is
  // kept until max_in_flight later tickets are submitted (then: invalid_argument).
  [[nodiscard]] bool try_result(Ticket ticket, AppendResult* out) const noexcept;
  // Handled and, if it succeeded, acknowledged under the log's durability policy.
  [[nodiscard]] bool try_acknowledged(Ticket ticket, AppendResult* out) const noexcept;
  // Waits (spin, yield, park) until try_acknowledged(); returns the result. A ticket not yet
  // handed out: invalid_argument at once.
  AppendResult wait(Ticket ticket) noexcept;
  // Waits until try_result() only: committed (or refused), maybe not yet acknowledged.
  AppendResult wait_completed(Ticket ticket) noexcept;
  // The waiting form: submit + wait. back_pressured/closed come back as AppendCode.
  AppendResult submit(StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept;
  // Finds or defines the stream `name` on the writer thread (cold; waits). Error: closed,
  // back-pressure, or the writer's reason (bad name).
  Result<StreamId> define_stream(std::string_view name);
  // Requests submitted and not yet completed (from the submitting thread).
  uint64_t in_flight() noexcept;

 private:
  friend class Ingress;
  // One request slot: 32 bytes, two to a cache line. The request and the word that
  // publishes it share the line, so the writer's check and read cost one transfer.
  struct alignas(32) RequestSlot {
    IngressRequest r;  // written by the submitter before `seq`
    // seq: ticket + 1 of the request held. Release store by the submitter after writing r;
    // acquire load by the writer before reading it.
    std::atomic<uint64_t> seq{0};
  };
  static_assert(sizeof(RequestSlot) == 32);
  // One result slot: 32 bytes, two to a cache line. The result and the word that completes
  // it share the line, so the submitter's check and read cost one transfer.
  struct alignas(32) ResultSlot {
    AppendResult result;  // written by the writer before `done`
    // done: ticket + 1 of the result held. Release store by the writer after `result`;
    // acquire load by the submitter before reading it.
    std::atomic<uint64_t> done{0};
  };
  static_assert(sizeof(ResultSlot) == 32);
  static_assert(sizeof(AppendResult) <= 24);
  IngressProducer(Ingress& ingress, uint32_t capacity);
  [[nodiscard]] SubmitCode enqueue(const IngressRequest& r, uint32_t count, Ticket* ticket,
                                   std::string_view name = {}) noexcept;
  bool acknowledged(Ticket t, const AppendResult& r) const noexcept;
  // Writer thread: appends this producer's published requests (at most `max`), then
  // completes them with one release store; returns how many.
  size_t drain(LogWriter& writer, size_t max) noexcept;
  // Published requests not yet completed, counted up to `limit` (any thread: an estimate).
  uint64_t pending(uint64_t limit) const noexcept;

  Ingress& ingress_;
  const uint64_t mask_;
  // ---- submitting thread only ----
  uint64_t next_ = 0;                  // the next ticket
  uint64_t oldest_ = 0;                // no ticket below it is unfinished (in_flight())
  uint64_t completed_seen_ = 0;        // the last value read from completed_
  std::vector<uint32_t> counts_;       // events per ticket (for the acknowledgement check)
  // ---- the submitter writes a slot and then its seq; the writer reads it after ----
  std::unique_ptr<RequestSlot[]> requests_;
  // Stream names of define_stream requests, by ticket slot.
  std::vector<std::string_view> names_;
  // ---- the writer writes a slot before completing it; the submitter reads it after ----
  std::unique_ptr<ResultSlot[]> results_;
  std::vector<StreamId> defined_;  // define_stream results
  Status define_error_;            // the last define_stream failure
  // completed_: tickets below it are completed. Release store by the writer once per drain,
  // after its reads of their request slots and its writes of their results; acquire load by
  // the submitter before reusing a request slot (back-pressure check) and after finish().
  alignas(64) std::atomic<uint64_t> completed_{0};
  WakeSignal signal_;  // the submitter parks here; the writer notifies after completing
  // ---- writer thread only, on its own cache line ----
  alignas(64) Ticket completing_ = 0;  // the ticket of this producer's next request to append
};

class Ingress {
 public:
  explicit Ingress(const IngressOptions& options = {});
  ~Ingress();
  Ingress(const Ingress&) = delete;
  Ingress& operator=(const Ingress&) = delete;

  // The writer whose acknowledged position completions wait for (set before use).
  void attach(LogWriter* writer) noexcept;
  // A producer for the calling thread (cold: may allocate its token once; pooled after).
  // Error: max_producers are in use.
  Result<IngressProducer*> acquire_producer();
  // Gives it back for another thread (its unfinished requests still complete).
  void release_producer(IngressProducer* p) noexcept;

  // Writer thread: appends up to `max` requests, completes them; returns how many.
  size_t drain(LogWriter& writer, size_t max = 256) noexcept;
  size_t size_estimate() const noexcept;
  bool has_pending() const noexcept;  // size_estimate() != 0, cheaper
  // Stops accepting submissions (see the file comment); drain() still completes what is in.
  void close() noexcept;
  // After the last drain(), on the thread that drained: nothing is completed any more, and
  // every request still unfinished is refused (`closed`) to whoever waits for it.
  void finish() noexcept;
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  WakeSignal& writer_signal() noexcept { return writer_signal_; }
  const IngressOptions& options() const noexcept { return o_; }

  // Counters (writer thread writes; any thread reads an estimate).
  uint64_t requests() const noexcept { return requests_.load(std::memory_order_relaxed); }
  uint64_t back_pressured() const noexcept { return back_pressured_.load(std::memory_order_relaxed); }

 private:
  friend class IngressProducer;
  const IngressOptions o_;
  LogWriter* writer_ = nullptr;
  // Durability none: a committed append is acknowledged (set by attach()). wait() then does
  // not read the writer's acknowledged position — a line the writer rewrites on every
  // append, i.e. one more transfer between the two cores per waiting submit.
  bool acknowledged_on_commit_ = false;
  std::mutex pool_mu_;
  // max_producers slots, filled in order under pool_mu_; the writer thread reads the first
  // producer_count_ of them without the lock.
  std::unique_ptr<std::unique_ptr<IngressProducer>[]> producers_;
  // producer_count_: release store (under pool_mu_) after producers_[i] is made; acquire
  // load by the writer before it reads producers_[0, count).
  std::atomic<uint32_t> producer_count_{0};
  std::vector<IngressProducer*> free_;  // under pool_mu_
  uint32_t next_drain_ = 0;             // writer thread: the producer its next drain starts at
  // closed_: release store in close(); relaxed load in enqueue (a request that passes the
  // check just before close() is still completed or refused: see finished_).
  alignas(64) std::atomic<bool> closed_{false};
  // finished_: release store in finish(), after the last drain stored every completed_;
  // acquire load by a submitter whose ticket is not completed, before its last read of
  // completed_: if that still does not cover the ticket, it never will (refused).
  std::atomic<bool> finished_{false};
  WakeSignal writer_signal_;
  // Relaxed: statistics for display, one writer each (requests_: the writer thread;
  // back_pressured_: any submitter, so an RMW).
  alignas(64) std::atomic<uint64_t> requests_{0};
  alignas(64) std::atomic<uint64_t> back_pressured_{0};
};

// The writer-thread agent that drains an Ingress into a LogWriter.
class IngressAgent final : public Agent {
 public:
  IngressAgent(Ingress& ingress, LogWriter& writer) : ingress_(ingress), writer_(writer) {}
  int do_work() noexcept override { return static_cast<int>(ingress_.drain(writer_)); }
  const char* role_name() const noexcept override { return "ingress"; }
  // Drained once the ingress is closed and empty (a drain before close() would race
  // submitters still arriving).
  bool drained() const noexcept override { return ingress_.closed() && !ingress_.has_pending(); }
  bool has_work() const noexcept override { return ingress_.has_pending(); }
  WakeSignal* wake_signal() noexcept override { return &ingress_.writer_signal(); }

 private:
  Ingress& ingress_;
  LogWriter& writer_;
};

}  // namespace sluice
