#include "sluice/bus/ingress.h"

#include <concurrentqueue/concurrentqueue.h>

#include <algorithm>
#include <array>
#include <thread>

#include "sluice/bus/log_writer.h"

namespace sluice {

std::string_view to_string(SubmitCode c) noexcept {
  switch (c) {
    case SubmitCode::ok: return "ok";
    case SubmitCode::back_pressured: return "back_pressured";
    case SubmitCode::closed: return "closed";
  }
  return "?";
}

namespace {

AppendCode append_code(SubmitCode c) noexcept {
  return c == SubmitCode::closed ? AppendCode::closed : AppendCode::back_pressured;
}

}  // namespace

struct Ingress::Queue {
  Queue(size_t capacity, size_t producers) : queue(capacity, producers, 0), consumer(queue) {}
  moodycamel::ConcurrentQueue<IngressRequest> queue;
  moodycamel::ConsumerToken consumer;  // the writer thread's
};

struct IngressProducer::Token {
  explicit Token(moodycamel::ConcurrentQueue<IngressRequest>& q) : token(q) {}
  moodycamel::ProducerToken token;
};

IngressProducer::IngressProducer(Ingress& ingress, uint32_t index, uint32_t capacity)
    : ingress_(ingress),
      token_(std::make_unique<Token>(ingress.q_->queue)),
      mask_(capacity - 1),
      index_(index),
      counts_(capacity),
      names_(capacity),
      entries_(new Entry[capacity]),
      defined_(capacity) {}

IngressProducer::~IngressProducer() = default;

SubmitCode IngressProducer::enqueue(IngressRequest& r, uint32_t count, Ticket* ticket,
                                    std::string_view name) noexcept {
  // The entry is free once it holds the result of the ticket one ring ago (or never held
  // one). Acquire: pairs with the writer's release in complete(); nothing is read through it
  // here, but the entry's next result must not be overtaken by the old one's write.
  if (next_ > mask_ && entries_[next_ & mask_].done.load(std::memory_order_acquire) != next_ - mask_) {
    ingress_.back_pressured_.fetch_add(1, std::memory_order_relaxed);  // statistics only
    return SubmitCode::back_pressured;
  }
  // seq_cst store, then seq_cst load of closed_: close() does the mirror image (see
  // submitting_ in the header), so either we see closed_ or close() sees us and waits.
  submitting_.store(1, std::memory_order_seq_cst);
  if (ingress_.closed_.load(std::memory_order_seq_cst)) {
    submitting_.store(0, std::memory_order_release);  // pairs with close()'s acquire
    return SubmitCode::closed;
  }
  r.producer = index_;
  // Only now: the entry's previous ticket is finished, so its count is no longer needed.
  counts_[next_ & mask_] = count;
  if (r.count == IngressRequest::kDefineStream) names_[next_ & mask_] = name;  // same: its slot is free
  // try_enqueue never allocates: it fails when the preallocated blocks are used up.
  const bool ok = ingress_.q_->queue.try_enqueue(token_->token, r);
  // Release: the enqueue above happens before close() stops waiting for us.
  submitting_.store(0, std::memory_order_release);
  if (!ok) {
    ingress_.back_pressured_.fetch_add(1, std::memory_order_relaxed);  // statistics only
    return SubmitCode::back_pressured;
  }
  *ticket = next_++;
  ingress_.writer_signal_.notify();
  return SubmitCode::ok;
}

SubmitCode IngressProducer::try_submit(StreamId stream, ExpectedVersion expected,
                                       std::span<const EventData> events, Ticket* ticket) noexcept {
  IngressRequest r;
  r.stream = stream;
  r.expected = expected;
  r.events = events.data();
  // A span this long cannot be appended anyway; keep it from reading as a definition.
  r.count = static_cast<uint32_t>(std::min<size_t>(events.size(), IngressRequest::kDefineStream - 1));
  return enqueue(r, r.count, ticket);
}

bool IngressProducer::try_result(Ticket ticket, AppendResult* out) const noexcept {
  const Entry& e = entries_[ticket & mask_];
  // Acquire: pairs with the writer's release in complete(); e.result is then written.
  const uint64_t d = e.done.load(std::memory_order_acquire);
  if (d <= ticket) return false;
  if (d == ticket + 1) {
    *out = e.result;
    return true;
  }
  // A later ticket's result is in the entry: this one finished and its result was reused
  // (the caller submitted max_in_flight more before reading it). Not an append failure.
  *out = AppendResult{AppendCode::invalid_argument, 0, 0};
  return true;
}

void IngressProducer::complete(Ticket t, const AppendResult& r) noexcept {
  Entry& e = entries_[t & mask_];
  e.result = r;
  // Release: publishes e.result to the submitter's acquire in try_result()/enqueue().
  e.done.store(t + 1, std::memory_order_release);
}

uint64_t IngressProducer::in_flight() noexcept {
  AppendResult r;
  while (oldest_ < next_ && try_result(oldest_, &r)) ++oldest_;
  return next_ - oldest_;
}

bool IngressProducer::acknowledged(Ticket t, const AppendResult& r) const noexcept {
  if (!r.ok() || ingress_.writer_ == nullptr || ingress_.acknowledged_on_commit_) return true;
  const uint32_t n = counts_[t & mask_];
  return ingress_.writer_->acknowledged_position() >= r.position + n || ingress_.writer_->failed();
}

bool IngressProducer::try_acknowledged(Ticket ticket, AppendResult* out) const noexcept {
  return try_result(ticket, out) && acknowledged(ticket, *out);
}

namespace {

struct WaitCtx {
  const IngressProducer* p;
  Ticket t;
};

bool completed_fn(const void* ctx) noexcept {
  const auto& c = *static_cast<const WaitCtx*>(ctx);
  AppendResult r;
  return c.p->try_result(c.t, &r);
}

}  // namespace

AppendResult IngressProducer::wait_completed(Ticket ticket) noexcept {
  AppendResult r;
  if (!try_result(ticket, &r)) {
    WaitCtx ctx{this, ticket};
    IdleStrategy idle(IdleOptions{}, &signal_, &completed_fn, &ctx);
    while (!try_result(ticket, &r)) idle.idle();
  }
  return r;
}

AppendResult IngressProducer::wait(Ticket ticket) noexcept {
  AppendResult r = wait_completed(ticket);
  if (acknowledged(ticket, r)) return r;
  // Group commit: the flusher acknowledges within its interval; spin briefly, then block on
  // the writer's acknowledgement (a condition variable the flusher signals).
  for (int i = 0; i < 64 && !acknowledged(ticket, r); ++i) cpu_relax();
  while (!acknowledged(ticket, r)) {
    const uint64_t last = r.position + counts_[ticket & mask_] - 1;
    if (!ingress_.writer_->wait_acknowledged(last, std::chrono::milliseconds(10)).ok() && ingress_.writer_->failed())
      return AppendResult{AppendCode::io_error, r.position, r.stream_version};
  }
  return r;
}

AppendResult IngressProducer::submit(StreamId stream, ExpectedVersion expected,
                                     std::span<const EventData> events) noexcept {
  Ticket t = 0;
  const SubmitCode c = try_submit(stream, expected, events, &t);
  if (c != SubmitCode::ok) return AppendResult{append_code(c), 0, 0};
  return wait(t);
}

Result<StreamId> IngressProducer::define_stream(std::string_view name) {
  if (name.empty()) return Status(StatusCode::invalid_argument, "stream name is empty");
  IngressRequest r;
  r.count = IngressRequest::kDefineStream;
  Ticket t = 0;
  const SubmitCode c = enqueue(r, 0, &t, name);
  if (c != SubmitCode::ok)
    return Status(c == SubmitCode::closed ? StatusCode::closed : StatusCode::busy,
                  "define stream '" + std::string(name) + "': the ingress " +
                      (c == SubmitCode::closed ? "is closed" : "is full (back-pressure)"));
  const AppendResult res = wait(t);
  if (!res.ok()) return define_error_;  // written by the writer before the entry's done (acquired in wait)
  return defined_[t & mask_];
}

Ingress::Ingress(const IngressOptions& options) : o_(options) {
  uint32_t cap = 1;
  while (cap < o_.max_in_flight) cap <<= 1;
  const_cast<IngressOptions&>(o_).max_in_flight = cap;
  // Explicit producers keep the blocks they took: each needs its in-flight bound plus a
  // partly used block at either end.
  const size_t capacity = size_t{o_.max_producers} * (cap + 2 * moodycamel::ConcurrentQueueDefaultTraits::BLOCK_SIZE);
  q_ = std::make_unique<Queue>(capacity, o_.max_producers);
  producers_.reserve(o_.max_producers);
}

Ingress::~Ingress() = default;

void Ingress::attach(LogWriter* writer) noexcept {
  writer_ = writer;
  acknowledged_on_commit_ = writer != nullptr && writer->options().durability == Durability::none;
}

Result<IngressProducer*> Ingress::acquire_producer() {
  std::lock_guard lock(pool_mu_);
  if (!free_.empty()) {
    IngressProducer* p = free_.back();
    free_.pop_back();
    return p;
  }
  if (producers_.size() >= o_.max_producers)
    return Status(StatusCode::busy, "ingress: all " + std::to_string(o_.max_producers) +
                                        " producers are in use (IngressOptions::max_producers)");
  const auto index = static_cast<uint32_t>(producers_.size());
  // No reallocation (capacity reserved in the constructor): the writer reads producers_[i]
  // without the lock.
  producers_.push_back(std::unique_ptr<IngressProducer>(new IngressProducer(*this, index, o_.max_in_flight)));
  return producers_.back().get();
}

void Ingress::release_producer(IngressProducer* p) noexcept {
  if (p == nullptr) return;
  std::lock_guard lock(pool_mu_);
  free_.push_back(p);  // cold path: may allocate
}

void Ingress::close() noexcept {
  // seq_cst: see IngressProducer::submitting_.
  closed_.store(true, std::memory_order_seq_cst);
  std::lock_guard lock(pool_mu_);
  for (auto& p : producers_)
    // Acquire: pairs with the producer's release after its enqueue.
    while (p->submitting_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  writer_signal_.notify();
}

size_t Ingress::drain(LogWriter& writer, size_t max) noexcept {
  std::array<IngressRequest, 64> batch;
  size_t total = 0;
  while (total < max) {
    const size_t n = q_->queue.try_dequeue_bulk(q_->consumer, batch.begin(), std::min(batch.size(), max - total));
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) {
      const IngressRequest& r = batch[i];
      IngressProducer& p = *producers_[r.producer];
      const Ticket ticket = p.completing_++;  // per-producer FIFO: its requests come in order
      const uint64_t slot = ticket & p.mask_;
      if (r.count == IngressRequest::kDefineStream) {
        auto s = writer.stream(p.names_[slot]);  // cold: may allocate
        if (s.ok()) {
          p.defined_[slot] = s.value();  // published by complete()'s release
          p.complete(ticket, AppendResult{AppendCode::ok, 0, 0});
        } else {
          p.define_error_ = s.status();  // published by complete()'s release
          p.complete(ticket, AppendResult{AppendCode::invalid_argument, 0, 0});
        }
      } else {
        p.complete(ticket, writer.append(r.stream, r.expected, {r.events, r.count}));
      }
      // One wake check per run of a producer's requests (the queue hands them out in runs).
      if (i + 1 == n || batch[i + 1].producer != r.producer) p.signal_.notify();
    }
    total += n;
  }
  // Relaxed: a statistic with this thread as its only writer.
  if (total != 0) requests_.store(requests_.load(std::memory_order_relaxed) + total, std::memory_order_relaxed);
  return total;
}

size_t Ingress::size_estimate() const noexcept { return q_->queue.size_approx(); }

}  // namespace sluice
