#include "sluice/bus/ingress.h"

#include <algorithm>
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

IngressProducer::IngressProducer(Ingress& ingress, uint32_t capacity)
    : ingress_(ingress),
      mask_(capacity - 1),
      counts_(capacity),
      requests_(new RequestSlot[capacity]),
      names_(capacity),
      results_(new ResultSlot[capacity]),
      defined_(capacity) {}

IngressProducer::~IngressProducer() = default;

SubmitCode IngressProducer::enqueue(const IngressRequest& r, uint32_t count, Ticket* ticket,
                                    std::string_view name) noexcept {
  // Closed is checked first: a producer whose ring is full when the ingress closes (its
  // unfinished requests then refused by finish(), so completed_ never moves again) must hear
  // `closed`, not `back_pressured` forever — a caller retrying on back-pressure would spin.
  // Relaxed: nothing is read through it. A request published just after close() is either
  // drained or refused to its waiter after finish() (see finished_).
  if (ingress_.closed_.load(std::memory_order_relaxed)) return SubmitCode::closed;
  // Room: the slot of ticket next_ is free once the ticket one ring ago is completed.
  // Acquire: pairs with the writer's release of completed_; the writer's reads of the
  // request slot we are about to overwrite happen before it.
  if (next_ - completed_seen_ > mask_ &&
      next_ - (completed_seen_ = completed_.load(std::memory_order_acquire)) > mask_) {
    ingress_.back_pressured_.fetch_add(1, std::memory_order_relaxed);  // statistics only
    return SubmitCode::back_pressured;
  }
  const uint64_t slot = next_ & mask_;
  counts_[slot] = count;
  if (r.count == IngressRequest::kDefineStream) names_[slot] = name;
  requests_[slot].r = r;
  // Release: the request (and its name) written above is visible to the writer that
  // acquires the slot's seq in drain().
  requests_[slot].seq.store(next_ + 1, std::memory_order_release);
  *ticket = next_++;
  ingress_.writer_signal_.notify();
  return SubmitCode::ok;
}

SubmitCode IngressProducer::try_submit(StreamId stream, ExpectedVersion expected,
                                       std::span<const EventData> events, Ticket* ticket) noexcept {
  IngressRequest r;
  r.stream = stream <= UINT32_MAX ? static_cast<uint32_t>(stream) : 0;  // 0: refused as unknown
  r.expected = expected;
  r.events = events.data();
  // A span this long cannot be appended anyway; keep it from reading as a definition.
  r.count = static_cast<uint32_t>(std::min<size_t>(events.size(), IngressRequest::kDefineStream - 1));
  return enqueue(r, r.count, ticket);
}

bool IngressProducer::try_result(Ticket ticket, AppendResult* out) const noexcept {
  if (ticket >= next_) return false;  // not submitted (yet)
  if (next_ - ticket > mask_ + 1) {
    // A later ticket took this one's slot: it finished and its result was reused (the
    // caller submitted max_in_flight more before reading it). Not an append failure.
    *out = AppendResult{AppendCode::invalid_argument, 0, 0};
    return true;
  }
  const ResultSlot& e = results_[ticket & mask_];
  // Acquire: pairs with the writer's release of e.done; e.result is then written.
  if (e.done.load(std::memory_order_acquire) != ticket + 1) {
    // Acquire: pairs with the release in finish(); every result the writer will ever write
    // is then visible.
    if (!ingress_.finished_.load(std::memory_order_acquire)) return false;
    if (e.done.load(std::memory_order_acquire) != ticket + 1) {
      *out = AppendResult{AppendCode::closed, 0, 0};  // never appended: the ingress finished first
      return true;
    }
  }
  *out = e.result;
  return true;
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
  // A ticket this producer never handed out would never complete: refuse it instead of
  // waiting forever (wait() and define_stream() come through here too).
  if (ticket >= next_) return AppendResult{AppendCode::invalid_argument, 0, 0};
  AppendResult r;
  if (!try_result(ticket, &r)) {
    // Far from its turn (the writer has kFar or more of this producer's earlier requests to
    // append first): give the CPU to another thread instead of spinning — submitters may
    // outnumber CPUs, and a spinning one keeps the others from submitting. Not bounded by a
    // park: the writer is busy with those requests (a writer that stopped has finish()ed,
    // which try_result() sees), and a parked submitter would make each of its drains pay a
    // futex wake. Acquire: pairs with the writer's release of completed_ (only a distance
    // here; try_result reads).
    constexpr uint64_t kFar = 32;
    while (ticket >= completed_.load(std::memory_order_acquire) + kFar) {
      if (try_result(ticket, &r)) return r;  // also: refused after finish()
      std::this_thread::yield();
    }
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
  if (res.code == AppendCode::closed)
    return Status(StatusCode::closed, "define stream '" + std::string(name) + "': the ingress is closed");
  if (!res.ok()) return define_error_;  // written by the writer before the entry's done (acquired in wait)
  return defined_[t & mask_];
}

Ingress::Ingress(const IngressOptions& options) : o_(options) {
  uint32_t cap = 1;
  while (cap < o_.max_in_flight) cap <<= 1;
  const_cast<IngressOptions&>(o_).max_in_flight = cap;
  producers_ = std::make_unique<std::unique_ptr<IngressProducer>[]>(o_.max_producers);
  free_.reserve(o_.max_producers);
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
  const uint32_t n = producer_count_.load(std::memory_order_relaxed);  // written under pool_mu_ only
  if (n >= o_.max_producers)
    return Status(StatusCode::busy, "ingress: all " + std::to_string(o_.max_producers) +
                                        " producers are in use (IngressOptions::max_producers)");
  producers_[n].reset(new IngressProducer(*this, o_.max_in_flight));
  // Release: the producer made above is visible to the writer that acquires the count.
  producer_count_.store(n + 1, std::memory_order_release);
  return producers_[n].get();
}

void Ingress::release_producer(IngressProducer* p) noexcept {
  if (p == nullptr) return;
  std::lock_guard lock(pool_mu_);
  free_.push_back(p);  // cold path: may allocate
}

void Ingress::close() noexcept {
  // Release: pairs with nothing in particular (enqueue's load is relaxed); the flag only
  // stops new submissions.
  closed_.store(true, std::memory_order_release);
  writer_signal_.notify();
}

void Ingress::finish() noexcept {
  // Release: the completed_ stores of every drain (this thread's) happen before a waiter
  // that acquires finished_ re-reads completed_.
  finished_.store(true, std::memory_order_release);
  std::lock_guard lock(pool_mu_);
  const uint32_t n = producer_count_.load(std::memory_order_relaxed);  // written under pool_mu_ only
  for (uint32_t i = 0; i < n; ++i) producers_[i]->signal_.notify();  // parked waiters re-check
}

size_t IngressProducer::drain(LogWriter& writer, size_t max) noexcept {
  const uint64_t first = completing_;
  // Find the published run first: the checks are independent loads, so the request lines'
  // transfers from the submitter's core overlap; ask for each request's events (read in
  // append) as soon as its pointer is known. Acquire: pairs with the submitter's release of
  // the slot's seq; its request is then written.
  uint64_t end = first;
  const uint64_t last = first + std::min<uint64_t>(max, mask_ + 1);
  while (end < last && requests_[end & mask_].seq.load(std::memory_order_acquire) == end + 1) {
    const IngressRequest& r = requests_[end & mask_].r;
    __builtin_prefetch(r.events, 0);
    __builtin_prefetch(reinterpret_cast<const char*>(r.events) + 64, 0);
    // Its result slot for writing: the submitter read that line a ring ago, so storing the
    // result needs the line back exclusively; asked for now, the transfers overlap. A small
    // gain, near the noise: ratio_submit_2p_vs_append higher in 4 of the 5 interleaved pairs
    // committed (bench/results/quiet-2026-11-30d/ab-ingress/, 3 more pairs in its README),
    // and no change to the waiting round trip (one in flight), whose submitter spins on the
    // very line prefetched here.
    __builtin_prefetch(&results_[end & mask_], 1);
    ++end;
  }
  if (first == end) return 0;
  for (uint64_t t = first; t < end; ++t) {
    const uint64_t slot = t & mask_;
    const IngressRequest& r = requests_[slot].r;
    if (r.count == IngressRequest::kDefineStream) [[unlikely]] {
      auto s = writer.stream(names_[slot]);  // cold: may allocate
      if (s.ok()) {
        defined_[slot] = s.value();  // published by the release of done below
        results_[slot].result = AppendResult{AppendCode::ok, 0, 0};
      } else {
        define_error_ = s.status();  // published by the release of done below
        results_[slot].result = AppendResult{AppendCode::invalid_argument, 0, 0};
      }
    } else {
      results_[slot].result = writer.append(r.stream, r.expected, {r.events, r.count});
    }
    // Release: publishes the result to the submitter's acquire in try_result().
    results_[slot].done.store(t + 1, std::memory_order_release);
  }
  completing_ = end;
  // Release: the reads of the request slots above happen before a submitter that acquires
  // completed_ reuses a slot. One store per drain, however many requests it completed.
  completed_.store(end, std::memory_order_release);
  signal_.notify();
  return static_cast<size_t>(end - first);
}

uint64_t IngressProducer::pending(uint64_t limit) const noexcept {
  // Acquire: pairs with the writer's release; slots below it are completed.
  const uint64_t c = completed_.load(std::memory_order_acquire);
  uint64_t n = 0;
  // Relaxed: only counted, nothing read through them.
  while (n < limit && n <= mask_ && requests_[(c + n) & mask_].seq.load(std::memory_order_relaxed) == c + n + 1) ++n;
  return n;
}

size_t Ingress::drain(LogWriter& writer, size_t max) noexcept {
  // Relaxed: written by finish() on this thread; after it nothing is completed any more.
  if (finished_.load(std::memory_order_relaxed)) return 0;
  // Acquire: pairs with the release in acquire_producer(); producers_[0, n) are made.
  const uint32_t n = producer_count_.load(std::memory_order_acquire);
  if (n == 0) return 0;
  // Round robin over the producers, starting one further each drain, so that a producer
  // that always has work cannot starve the ones after it.
  size_t total = 0;
  uint32_t i = next_drain_ < n ? next_drain_ : 0;
  next_drain_ = i + 1 < n ? i + 1 : 0;
  for (uint32_t k = 0; k < n && total < max; ++k) {
    total += producers_[i]->drain(writer, max - total);
    i = i + 1 < n ? i + 1 : 0;
  }
  // Relaxed: a statistic with this thread as its only writer.
  if (total != 0) requests_.store(requests_.load(std::memory_order_relaxed) + total, std::memory_order_relaxed);
  return total;
}

size_t Ingress::size_estimate() const noexcept {
  // Acquire: pairs with the release in acquire_producer().
  const uint32_t n = producer_count_.load(std::memory_order_acquire);
  size_t total = 0;
  for (uint32_t i = 0; i < n; ++i) total += producers_[i]->pending(~uint64_t{0});
  return total;
}

bool Ingress::has_pending() const noexcept {
  // Acquire: pairs with the release in acquire_producer().
  const uint32_t n = producer_count_.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < n; ++i)
    if (producers_[i]->pending(1) != 0) return true;
  return false;
}

}  // namespace sluice
