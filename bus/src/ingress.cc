#include "sluice/bus/ingress.h"

#include <concurrentqueue/concurrentqueue.h>

#include <array>

#include "sluice/bus/log_writer.h"

namespace sluice {

AppendResult AppendCompletion::wait(const IdleOptions& idle) const noexcept {
  IdleStrategy s(idle);
  AppendResult r;
  while (!try_get(&r)) s.idle();
  return r;
}

struct Ingress::ProducerToken::Impl {
  explicit Impl(moodycamel::ConcurrentQueue<AppendRequest>& q) : token(q) {}
  moodycamel::ProducerToken token;
};
Ingress::ProducerToken::ProducerToken(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ingress::ProducerToken::ProducerToken(ProducerToken&&) noexcept = default;
Ingress::ProducerToken& Ingress::ProducerToken::operator=(ProducerToken&&) noexcept = default;
Ingress::ProducerToken::~ProducerToken() = default;

struct Ingress::Impl {
  Impl(size_t capacity, size_t producers) : queue(capacity, producers, 0), consumer(queue) {}
  moodycamel::ConcurrentQueue<AppendRequest> queue;
  moodycamel::ConsumerToken consumer;
};

Ingress::Ingress(size_t capacity, size_t max_producers)
    : impl_(std::make_unique<Impl>(capacity, max_producers)) {}
Ingress::~Ingress() = default;

Ingress::ProducerToken Ingress::make_token() {
  return ProducerToken(std::make_unique<ProducerToken::Impl>(impl_->queue));
}

bool Ingress::try_submit(ProducerToken& token, const AppendRequest& request) noexcept {
  // try_enqueue never allocates: it fails when the preallocated blocks are used up.
  return impl_->queue.try_enqueue(token.impl_->token, request);
}

size_t Ingress::drain(LogWriter& writer, size_t max) noexcept {
  std::array<AppendRequest, 64> batch;
  size_t total = 0;
  while (total < max) {
    const size_t n = impl_->queue.try_dequeue_bulk(impl_->consumer, batch.begin(),
                                                   std::min(batch.size(), max - total));
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) {
      const AppendRequest& r = batch[i];
      AppendResult res = writer.append(r.stream, r.expected, r.events);
      if (r.completion != nullptr) r.completion->complete(res);
    }
    total += n;
  }
  return total;
}

size_t Ingress::size_estimate() const noexcept { return impl_->queue.size_approx(); }

}  // namespace sluice
