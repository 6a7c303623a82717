// Projection: handlers per event type + a read model + (through its runner) a checkpoint.
//
//   class Balances : public sluice::Projection {
//    public:
//     Balances() {
//       on<Deposited>([this](const Deposited& d, const sluice::Event&) {
//         balances_.update(d.account, 0, [&](int64_t& b) { b += d.amount; });
//         return sluice::ApplyResult::ok;
//       });
//     }
//     std::optional<int64_t> balance(uint64_t account) const { return balances_.get(account); }
//     void save(sluice::SnapshotWriter& w) const override { balances_.save(w); }
//     sluice::Status load(sluice::SnapshotReader& r) override { return balances_.load(r, "balances"); }
//     uint64_t digest() const noexcept override { return balances_.digest(); }
//    private:
//     sluice::KeyedStore<int64_t> balances_;
//   };
//
// Contract for handlers
//   - Deterministic: the read model after events [0, P) must depend on those events only
//     (no clock, no randomness), so that a rebuild equals live processing (digest checked).
//   - Atomic per event: a handler that throws or returns retry/reject must not have changed
//     the read model (it is retried, then parked).
//   - Non-blocking: it runs on the projection's worker thread; it must not wait.
//
// Thread safety
//   apply(), on_batch_end(), save(), load() run on the projection's worker (one thread at a
//   time). Query methods of the subclass run on any thread; they must read the model only
//   through concurrent stores (KeyedStore) or their own synchronisation.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/projections/event.h"
#include "sluice/projections/snapshot.h"
#include "sluice/status.h"

namespace sluice {

enum class ApplyResult : uint8_t {
  ok = 0,    // applied
  skip,      // not for this projection (no handler for the type)
  retry,     // transient failure: try again per the retry policy, then park
  reject,    // permanent failure: park at once (or stop, per the failure policy)
};

class Projection {
 public:
  virtual ~Projection() = default;

  // Applies one event. Default: the handler registered with on<T>() for its type, or skip.
  // May throw: counted as a failure and retried (see ProjectionOptions).
  virtual ApplyResult apply(const Event& e) {
    for (const Handler& h : handlers_)
      if (h.type == e.type()) return h.fn(e);
    return ApplyResult::skip;
  }
  // Called after the last event of a batch (end_of_batch): commit point of the read model.
  virtual void on_batch_end() noexcept {}
  // Key by which failed events are parked (later events of a parked key are parked too, so
  // per-key order holds; other keys go on). Default: the event's stream.
  virtual uint64_t key_of(const Event& e) const noexcept { return e.stream_id(); }

  // Snapshot of the read model (the checkpoint stores it), its restore, and an
  // order-independent digest of its contents (rebuild == live check).
  virtual void save(SnapshotWriter& out) const = 0;
  virtual Status load(SnapshotReader& in) = 0;
  virtual uint64_t digest() const noexcept = 0;

  // Type ids this projection handles (for documentation and the CLI).
  std::vector<uint32_t> handled_types() const {
    std::vector<uint32_t> t;
    for (const Handler& h : handlers_) t.push_back(h.type);
    return t;
  }

 protected:
  // Registers a handler for typed event T (raw codec). Call in the constructor.
  template <TypedEvent T, class F>
  void on(F&& f) {
    handlers_.push_back(Handler{T::kEventType, [fn = std::forward<F>(f)](const Event& e) -> ApplyResult {
                                  T value;
                                  if (!e.decode(&value)) return ApplyResult::reject;  // wrong size
                                  return fn(value, e);
                                }});
  }
  // Registers a handler for an event type id, given the raw event.
  void on_type(uint32_t type, std::function<ApplyResult(const Event&)> fn) {
    handlers_.push_back(Handler{type, std::move(fn)});
  }

 private:
  struct Handler {
    uint32_t type;
    std::function<ApplyResult(const Event&)> fn;
  };
  std::vector<Handler> handlers_;
};

}  // namespace sluice
