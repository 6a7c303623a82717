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
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/projections/event.h"
#include "sluice/projections/snapshot.h"
#include "sluice/serialization/event_traits.h"
#include "sluice/serialization/schema_registry.h"
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
      if (h.type == e.type() && h.fn) return h.fn(e);
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

  // Type ids this projection handles (for documentation and the CLI); after
  // resolve_types(), the ids the registry gave the typed events.
  std::vector<uint32_t> handled_types() const {
    std::vector<uint32_t> t;
    for (const Handler& h : handlers_)
      if (h.fn) t.push_back(h.type);
    return t;
  }

  // Ties the typed handlers to their decoders (the runner calls it once, after the factory
  // made the projection, before any apply()):
  //   - with a registry that holds schemas, each on<T>() handler of a type with EventTraits
  //     decodes through registry->binding<T>(): the type id is the registry's, and every
  //     record is decoded with the codec it names (raw, FlatBuffers or JSON);
  //   - with nullptr, or a registry with no schemas (a log written without one), handlers
  //     use the raw convention (T::kEventType, the struct's bytes).
  // Error (naming the projection and the type): a handler's type is not bound in the
  // registry, or has no raw convention and no registry was given.
  Status resolve_types(const serialization::SchemaRegistry* registry, std::string_view projection) {
    const bool use_registry = registry != nullptr && registry->size() > 0;
    for (Handler& h : handlers_)
      if (Status st = h.resolve(use_registry ? registry : nullptr, h); !st.ok())
        return Status(st.code(), "projection '" + std::string(projection) + "': " + st.message());
    return Status::OK();
  }

  // Why the last apply() rejected its event (set with reject(reason), or by a typed handler
  // whose event did not decode), then cleared. Worker thread; the runner records it in the
  // dead letter.
  std::string take_reject_reason() { return std::exchange(reject_reason_, std::string()); }

 protected:
  // Registers a handler for the typed event T; call in the constructor. The handler gets
  // `const T&` whichever codec the event was written with (see resolve_types()):
  //   T with EventTraits (serialization/event_traits.h): decoded through the registry's
  //     binding — raw and FlatBuffers decodes of the current version allocate nothing, JSON
  //     allocates, older versions are upcast;
  //   T with kEventType (TypedEvent): the raw convention when no registry is configured.
  // An event that does not decode is rejected (parked) with the decoder's message.
  template <class T, class F>
    requires(serialization::Event<T> || TypedEvent<T>)
  void on(F&& f) {
    auto fn = std::make_shared<std::decay_t<F>>(std::forward<F>(f));
    Handler h;
    h.resolve = [fn, this](const serialization::SchemaRegistry* registry, Handler& self) -> Status {
      if constexpr (serialization::Event<T>) {
        if (registry != nullptr) {
          serialization::EventBinding<T> b = registry->binding<T>();
          if (!b.valid())
            return Status(StatusCode::invalid_argument,
                          "event type " + std::string(serialization::EventTraits<T>::name) +
                              " is not registered in the schema registry (before starting: "
                              "SchemaRegistry::register_for_reading<T>() to read, or "
                              "Engine::bind<T>(codec) / SchemaRegistry::bind<T>(codec, writer) to write)");
          self.type = b.type_id();
          self.fn = [fn, b, this](const Event& e) -> ApplyResult {
            T value{};
            if (Status st = b.decode(e.record(), &value); !st.ok()) {
              reject_reason_ = st.message();
              return ApplyResult::reject;
            }
            return (*fn)(static_cast<const T&>(value), e);
          };
          return Status::OK();
        }
      }
      if constexpr (TypedEvent<T>) {
        self.type = T::kEventType;
        self.fn = [fn, this](const Event& e) -> ApplyResult {
          T value;
          if (!e.decode(&value))
            return reject("raw payload of " + std::to_string(e.payload().size()) + " bytes for " +
                          std::string(T::kEventName) + ", expected " + std::to_string(sizeof(T)));
          return (*fn)(static_cast<const T&>(value), e);
        };
        return Status::OK();
      } else {
        return Status(StatusCode::invalid_argument,
                      "event type " + std::string(serialization::EventTraits<T>::name) +
                          " needs a schema registry (it has no kEventType for the raw convention)");
      }
    };
    if (Status st = h.resolve(nullptr, h); !st.ok()) h.fn = nullptr;  // until resolve_types()
    handlers_.push_back(std::move(h));
  }
  // Registers a handler for an event type id, given the raw event.
  void on_type(uint32_t type, std::function<ApplyResult(const Event&)> fn) {
    Handler h;
    h.type = type;
    h.fn = std::move(fn);
    h.resolve = [](const serialization::SchemaRegistry*, Handler&) { return Status::OK(); };
    handlers_.push_back(std::move(h));
  }
  // A reject with its reason (recorded in the dead letter).
  ApplyResult reject(std::string reason) {
    reject_reason_ = std::move(reason);
    return ApplyResult::reject;
  }

 private:
  struct Handler {
    uint32_t type = 0;
    std::function<ApplyResult(const Event&)> fn;  // empty: not resolved (ignored by apply)
    std::function<Status(const serialization::SchemaRegistry*, Handler&)> resolve;
  };
  std::vector<Handler> handlers_;
  std::string reject_reason_;  // worker thread
};

}  // namespace sluice
