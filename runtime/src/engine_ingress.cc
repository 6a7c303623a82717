// Submissions from any thread (WriterMode::ingress): Submitter handles and the per-thread
// producer behind Engine::submit(). The queue, tickets and completions are the bus's Ingress.
#include "sluice/runtime/engine.h"

namespace sluice {

// ---- Submitter ------------------------------------------------------------------------------

Submitter& Submitter::operator=(Submitter&& o) noexcept {
  if (this != &o) {
    if (in_) in_->release_producer(p_);
    in_ = o.in_;
    p_ = o.p_;
    o.in_ = nullptr;
    o.p_ = nullptr;
  }
  return *this;
}

Submitter::~Submitter() {
  if (in_) in_->release_producer(p_);
}

Result<Submitter> Engine::submitter() {
  if (!ingress_) return Status(StatusCode::invalid_argument, "engine " + dir_ + ": submit needs WriterMode::ingress and start()");
  auto p = ingress_->acquire_producer();
  if (!p.ok()) return Status(p.status().code(), "engine " + dir_ + ": " + p.status().message());
  return Submitter(ingress_.get(), p.value());
}

// The calling thread's producer for this engine: a small per-thread cache keyed by the
// engine's serial number (never reused), so no entry can name a destroyed engine's producer
// as this one's. A miss takes a producer from the pool (cold: allocates once per thread).
IngressProducer* Engine::thread_producer() noexcept {
  struct Entry {
    uint64_t serial = 0;
    IngressProducer* producer = nullptr;
  };
  constexpr size_t kEntries = 4;
  thread_local Entry cache[kEntries];
  thread_local size_t victim = 0;
  for (Entry& e : cache)
    if (e.serial == serial_) return e.producer;
  if (!ingress_) return nullptr;
  try {
    auto p = ingress_->acquire_producer();
    if (!p.ok()) return nullptr;
    Entry& e = cache[victim++ % kEntries];
    e.serial = serial_;
    e.producer = p.value();
    return e.producer;
  } catch (...) {  // out of memory on the cold path: refused below
    return nullptr;
  }
}

Result<StreamId> Engine::submit_stream(std::string_view name) {
  if (!ingress_) return Status(StatusCode::invalid_argument, "engine " + dir_ + ": submit needs WriterMode::ingress and start()");
  IngressProducer* p = thread_producer();
  if (p == nullptr)
    return Status(StatusCode::busy, "engine " + dir_ + ": every ingress producer is taken (EngineOptions::ingress.max_producers)");
  return p->define_stream(name);
}

AppendResult Engine::submit(StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept {
  if (!ingress_) return AppendResult{AppendCode::closed, 0, 0};
  IngressProducer* p = thread_producer();
  if (p == nullptr) return AppendResult{AppendCode::back_pressured, 0, 0};
  return p->submit(stream, expected, events);
}

}  // namespace sluice
