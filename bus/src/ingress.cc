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
      requests_(new IngressRequest[capacity]),
      names_(capacity),
      results_(new ResultSlot[capacity]),
      defined_(capacity) {}

IngressProducer::~IngressProducer() = default;

SubmitCode IngressProducer::enqueue(const IngressRequest& r, uint32_t count, Ticket* ticket,
                                    std::string_view name) noexcept {
  // Room: the slot of ticket next_ is free once the ticket one ring ago is completed.
  // Acquire: pairs with the writer's release of completed_; the writer's reads of the
  // request slot we are about to overwrite happen before it.
  if (next_ - completed_seen_ > mask_ &&
      next_ - (completed_seen_ = completed_.load(std::memory_order_acquire)) > mask_) {
    ingress_.back_pressured_.fetch_add(1, std::memory_order_relaxed);  // statistics only
    return SubmitCode::back_pressured;
  }
  // Relaxed: nothing is read through it. A request published just after close() is either
  // drained or refused to its waiter after finish() (see finished_).
  if (ingress_.closed_.load(std::memory_order_relaxed)) return SubmitCode::closed;
  const uint64_t slot = next_ & mask_;
  counts_[slot] = count;
  if (r.count == IngressRequest::kDefineStream) names_[slot] = name;
  requests_[slot] = r;
  // Release: the slot (and its name) written above is visible to the writer that acquires
  // published_ in drain().
  published_.store(next_ + 1, std::memory_order_release);
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
  if (ticket >= next_) return false;  // not submitted (yet)
  if (next_ - ticket > mask_ + 1) {
    // A later ticket took this one's slot: it finished and its result was reused (the
    // caller submitted max_in_flight more before reading it). Not an append failure.
    *out = AppendResult{AppendCode::invalid_argument, 0, 0};
    return true;
  }
  // Acquire: pairs with the writer's release of completed_; results_[ticket] is written.
  if (ticket >= completed_seen_ && ticket >= (completed_seen_ = completed_.load(std::memory_order_acquire))) {
    // Acquire: pairs with the release in finish(); every completed_ the writer will ever
    // store is then visible.
    if (!ingress_.finished_.load(std::memory_order_acquire)) return false;
    if (ticket >= (completed_seen_ = completed_.load(std::memory_order_acquire))) {
      *out = AppendResult{AppendCode::closed, 0, 0};  // never appended: the ingress finished first
      return true;
    }
  }
  *out = results_[ticket & mask_].result;
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
  // Acquire: pairs with the submitter's release of published_; the slots below it are written.
  const uint64_t end = std::min<uint64_t>(published_.load(std::memory_order_acquire), completing_ + max);
  const uint64_t first = completing_;
  if (first == end) return 0;
  // The request lines were just written on the submitter's core and the result lines were
  // last read there: ask for them a few requests ahead, so that their transfers overlap the
  // appends instead of each stalling the next request.
  constexpr uint64_t kAhead = 8;
  for (uint64_t t = first; t < end && t < first + kAhead; ++t) {
    __builtin_prefetch(&requests_[t & mask_], 0);
    __builtin_prefetch(&results_[t & mask_], 1);
  }
  for (uint64_t t = first; t < end; ++t) {
    if (t + kAhead < end) {
      __builtin_prefetch(&requests_[(t + kAhead) & mask_], 0);
      __builtin_prefetch(&results_[(t + kAhead) & mask_], 1);
    }
    const uint64_t slot = t & mask_;
    const IngressRequest& r = requests_[slot];
    if (r.count == IngressRequest::kDefineStream) [[unlikely]] {
      auto s = writer.stream(names_[slot]);  // cold: may allocate
      if (s.ok()) {
        defined_[slot] = s.value();  // published by the release of completed_ below
        results_[slot].result = AppendResult{AppendCode::ok, 0, 0};
      } else {
        define_error_ = s.status();  // published by the release of completed_ below
        results_[slot].result = AppendResult{AppendCode::invalid_argument, 0, 0};
      }
    } else {
      results_[slot].result = writer.append(r.stream, r.expected, {r.events, r.count});
    }
  }
  completing_ = end;
  // Release: every result written above (and the reads of their request slots) happen
  // before a submitter that acquires completed_ reads a result or reuses a slot. One store
  // per drain, however many requests it completed.
  completed_.store(end, std::memory_order_release);
  signal_.notify();
  return static_cast<size_t>(end - first);
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
  for (uint32_t i = 0; i < n; ++i) {
    const IngressProducer& p = *producers_[i];
    // Acquire: pairs with the writer's release of completed_, which it stored after reading
    // published_ at least that far; the relaxed load of published_ below (an estimate) then
    // reads at least that much, so the difference is never negative.
    const uint64_t c = p.completed_.load(std::memory_order_acquire);
    total += p.published_.load(std::memory_order_relaxed) - c;
  }
  return total;
}

}  // namespace sluice
