// Ingress: many threads submit appends to the single log writer.
//
//   submitter threads ──try_submit(token, request)──► moodycamel::ConcurrentQueue ──► IngressAgent
//     (each with its own ProducerToken)                (one sub-queue per token)      on the writer
//                                                                                      thread: append,
//                                                                                      complete()
// Design
//   The queue is moodycamel's ConcurrentQueue with explicit producer tokens: each submitter
//   enqueues into its own sub-queue, so a submitter that is preempted mid-enqueue never holds
//   up the others or the writer (a multi-producer ring would: its consumer must wait for the
//   preempted producer's claimed slot — see docs/bus.md for the figures). The writer drains
//   it in bulk with a consumer token. Capacity is preallocated, try_submit() never allocates
//   and returns false when the submitter's share is full (back-pressure, not an error).
//
//   A request carries a span of events that the submitter keeps alive, and an
//   AppendCompletion that the writer fills: the submitter waits on it (spin, yield, park).
//
// Thread safety
//   try_submit(): any thread, each with its own ProducerToken. drain(): the writer thread
//   only. AppendCompletion: written once by the writer, read by its submitter.
//
// Invariants
//   - Requests from one token are appended in submission order.
//   - Every dequeued request is completed exactly once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "sluice/bus/agent.h"
#include "sluice/bus/log_types.h"

namespace sluice {

class LogWriter;

// Filled by the writer thread, waited on by the submitter.
class AppendCompletion {
 public:
  void complete(const AppendResult& r) noexcept {
    result_ = r;
    // Release: publishes result_ to the submitter that acquires done_.
    done_.store(1, std::memory_order_release);
  }
  [[nodiscard]] bool try_get(AppendResult* out) const noexcept {
    // Acquire: pairs with the release in complete().
    if (done_.load(std::memory_order_acquire) == 0) return false;
    *out = result_;
    return true;
  }
  // Waits with the given idle strategy (default: backoff then timed park).
  AppendResult wait(const IdleOptions& idle = {}) const noexcept;
  void reset() noexcept { done_.store(0, std::memory_order_relaxed); }  // before reuse; relaxed: single owner

 private:
  AppendResult result_{};
  std::atomic<uint32_t> done_{0};
};

struct AppendRequest {
  StreamId stream = 0;
  ExpectedVersion expected = ExpectedVersion::any();
  std::span<const EventData> events;   // kept alive by the submitter until completion
  AppendCompletion* completion = nullptr;  // nullptr: fire and forget
};

class Ingress {
 public:
  // A submitter's handle: its own sub-queue. One per submitting thread; movable.
  class ProducerToken {
   public:
    ProducerToken(ProducerToken&&) noexcept;
    ProducerToken& operator=(ProducerToken&&) noexcept;
    ~ProducerToken();

   private:
    friend class Ingress;
    struct Impl;
    explicit ProducerToken(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
  };
  // capacity: requests the queue holds without allocating (spread over max_producers).
  explicit Ingress(size_t capacity = 64 * 1024, size_t max_producers = 16);
  ~Ingress();
  Ingress(const Ingress&) = delete;
  Ingress& operator=(const Ingress&) = delete;

  // One per submitting thread (cold: allocates).
  ProducerToken make_token();
  // False: this token's sub-queue is full (back-pressure: retry later).
  [[nodiscard]] bool try_submit(ProducerToken& token, const AppendRequest& request) noexcept;
  // Writer thread: appends up to `max` requests, completes them; returns how many.
  size_t drain(LogWriter& writer, size_t max = 256) noexcept;
  size_t size_estimate() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The writer-thread agent that drains an Ingress into a LogWriter.
class IngressAgent final : public Agent {
 public:
  IngressAgent(Ingress& ingress, LogWriter& writer) : ingress_(ingress), writer_(writer) {}
  int do_work() noexcept override { return static_cast<int>(ingress_.drain(writer_)); }
  const char* role_name() const noexcept override { return "ingress"; }
  bool drained() const noexcept override { return ingress_.size_estimate() == 0; }

 private:
  Ingress& ingress_;
  LogWriter& writer_;
};

}  // namespace sluice
