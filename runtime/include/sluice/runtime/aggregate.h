// Aggregates: state + typed apply(event) + command handlers that decide which events to emit
// or reject with a typed error. An aggregate instance is one stream of the log; its state is
// what replaying that stream through apply() gives. Repository<S> (repository.h) runs
// commands against it; this header holds the type description and the replay helpers that
// need no engine (temporal loads, the invariant finder), usable on any log with a LogReader.
//
//   struct BankAccount {
//     int64_t balance = 0;
//     void apply(const Deposited& e) { balance += e.amount; }
//     void apply(const Withdrawn& e) { balance -= e.amount; }
//     sluice::Decision decide(const Withdraw& c, sluice::Emitter& out) const {
//       if (c.amount > balance) return sluice::Decision::reject(BankError::overdraft, "...");
//       out.emit(Withdrawn{c.account, c.amount, c.day});
//       return sluice::Decision::accept();
//     }
//   };
//   sluice::AggregateType<BankAccount> t("bank.Account", /*fingerprint=*/1);
//   t.apply<Deposited>().apply<Withdrawn>().handle<Withdraw>();   // member functions above
//   // or lambdas: t.apply<Deposited>([](BankAccount& a, const Deposited& e) { ... });
//
// Events are declared with serialization::EventTraits and bound to a codec in the schema
// registry (Engine::bind<T>); apply() receives `const E&` whichever codec a record was written
// with, as a projection's on<T>() handler does.
//
// Contract
//   - apply() is deterministic and must not fail: the state after version v depends on the
//     stream's first v events only (so a snapshot load equals a full replay).
//   - decide() reads the state and emits; it must not change the state (the repository
//     applies the committed events afterwards) and should not have side effects: it may run
//     again after a conflict. It may throw: the command fails with handler_failed and
//     nothing is written. It must not execute commands itself (the emitted events live in
//     a per-thread scratch until the append).
//   - The fingerprint names the state layout and apply logic: change it whenever either
//     changes, so that older snapshots are ignored instead of loaded as wrong state.
//
// Thread safety: an AggregateType is configured on one thread, bound once
// (resolve()), then read-only: any number of threads may use it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_types.h"
#include "sluice/serialization/binding.h"
#include "sluice/serialization/codec.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/status.h"

namespace sluice {

// ---- what a handler returns -----------------------------------------------------------------

// accept(): the emitted events are appended (none emitted: nothing is written).
// reject(code, reason): nothing is written; the caller gets CommandCode::rejected with the
// application's code (an enum of the aggregate) and the reason.
class [[nodiscard]] Decision {
 public:
  static Decision accept() noexcept { return Decision(); }
  template <class Code>
    requires(std::is_enum_v<Code> || std::is_integral_v<Code>)
  static Decision reject(Code code, std::string reason) {
    Decision d;
    d.rejected_ = true;
    d.code_ = static_cast<uint32_t>(code);
    d.reason_ = std::move(reason);
    return d;
  }
  bool rejected() const noexcept { return rejected_; }
  uint32_t code() const noexcept { return code_; }
  std::string& reason() noexcept { return reason_; }

 private:
  bool rejected_ = false;
  uint32_t code_ = 0;
  std::string reason_;
};

namespace aggregate_detail {

// A distinct address per C++ type.
template <class T>
const void* tag() noexcept {
  static const char t = 0;
  return &t;
}

// One event type the aggregate applies: its binding (type id, encoder, decoder) and a thunk
// that decodes a payload and applies it to a State (type-erased as void*).
struct EventEntry {
  const void* tag = nullptr;
  std::string_view name;
  uint32_t type_id = 0;                      // after resolve()
  std::shared_ptr<const void> binding;       // EventBinding<E>, after resolve()
  // Decodes (any codec, upcasting older versions) and applies; error: the decoder's.
  std::function<Status(void* state, const void* binding, uint32_t type, uint16_t version,
                       serialization::CodecId codec, std::span<const std::byte> payload)>
      apply;
  std::function<Status(const serialization::SchemaRegistry&, EventEntry&)> resolve;
};

// Scratch for the events of one command: an encode buffer and an EventData per event.
// Grows to the largest command seen, then allocates no more.
struct EmitScratch {
  std::vector<std::unique_ptr<serialization::EncodeBuffer>> buffers;
  std::vector<EventData> events;
  std::vector<const EventEntry*> entries;
};

}  // namespace aggregate_detail

// Collects the events a command handler emits, encoded with each type's configured codec.
class Emitter {
 public:
  Emitter(std::span<const aggregate_detail::EventEntry> entries, aggregate_detail::EmitScratch& s) noexcept
      : entries_(entries), s_(s) {
    s_.events.clear();
    s_.entries.clear();
  }
  // Emits `e` (encoded now; appended when the handler accepts). An event type the aggregate
  // does not apply, or an encode error, makes the command fail with handler_failed.
  template <serialization::Event E>
  void emit(const E& e) {
    if (!error_.ok()) return;
    const aggregate_detail::EventEntry* entry = nullptr;
    for (const auto& x : entries_)
      if (x.tag == aggregate_detail::tag<E>()) entry = &x;
    if (entry == nullptr || entry->binding == nullptr) {
      error_ = Status(StatusCode::invalid_argument,
                      "emitted event " + std::string(serialization::EventTraits<E>::name) +
                          " is not applied by the aggregate (register it with apply<E>())");
      return;
    }
    const size_t i = s_.events.size();
    if (s_.buffers.size() <= i) s_.buffers.push_back(std::make_unique<serialization::EncodeBuffer>());
    auto d = static_cast<const serialization::EventBinding<E>*>(entry->binding.get())->encode(e, *s_.buffers[i]);
    if (!d.ok()) {
      error_ = d.status();
      return;
    }
    s_.events.push_back(d.value());
    s_.entries.push_back(entry);
  }
  size_t size() const noexcept { return s_.events.size(); }
  const Status& error() const noexcept { return error_; }

 private:
  std::span<const aggregate_detail::EventEntry> entries_;
  aggregate_detail::EmitScratch& s_;
  Status error_;
};

// When a repository writes a snapshot of an aggregate. Both 0: never.
struct SnapshotPolicy {
  uint64_t every_events = 0;      // after a command, when >= this many events since the last snapshot
  uint64_t replay_threshold = 0;  // after a load that replayed more than this many events
};

// An aggregate type: the state S (default constructible, copyable), the events it applies,
// the commands it handles, its snapshot policy and fingerprint.
template <class S>
class AggregateType {
  static_assert(std::is_default_constructible_v<S> && std::is_copy_assignable_v<S>,
                "aggregate state: default constructible and copyable");

 public:
  // name: names the type in snapshots, stats and errors. fingerprint: of the state layout and
  // apply logic (see the contract above).
  AggregateType(std::string name, uint64_t fingerprint) : name_(std::move(name)), fingerprint_(fingerprint) {}

  // Registers event E, applied with f(S&, const E&), or with S's member apply(const E&).
  template <serialization::Event E, class F>
  AggregateType& apply(F f) {
    aggregate_detail::EventEntry x;
    x.tag = aggregate_detail::tag<E>();
    x.name = serialization::EventTraits<E>::name;
    x.apply = [f = std::move(f)](void* state, const void* binding, uint32_t type, uint16_t version,
                                  serialization::CodecId codec, std::span<const std::byte> payload) -> Status {
      E e{};
      if (Status st = static_cast<const serialization::EventBinding<E>*>(binding)->decode(type, version, codec, payload, &e);
          !st.ok())
        return st;
      f(*static_cast<S*>(state), static_cast<const E&>(e));
      return Status();
    };
    x.resolve = [](const serialization::SchemaRegistry& r, aggregate_detail::EventEntry& self) -> Status {
      serialization::EventBinding<E> b = r.binding<E>();
      if (!b.valid())
        return Status(StatusCode::invalid_argument,
                      "event type " + std::string(serialization::EventTraits<E>::name) +
                          " is not bound in the schema registry (Engine::bind<T>(codec) before start, or "
                          "SchemaRegistry::bind<T> / register_for_reading<T>)");
      self.type_id = b.type_id();
      self.binding = std::make_shared<serialization::EventBinding<E>>(std::move(b));
      return Status();
    };
    events_.push_back(std::move(x));
    return *this;
  }
  template <serialization::Event E>
  AggregateType& apply() {
    return apply<E>([](S& s, const E& e) { s.apply(e); });
  }

  // Registers command C, decided by f(const S&, const C&, Emitter&) -> Decision, or by S's
  // member decide(const C&, Emitter&) const.
  template <class C, class F>
  AggregateType& handle(F f) {
    commands_.push_back(Command{aggregate_detail::tag<C>(), typeid(C).name(),
                                [f = std::move(f)](const S& s, const void* c, Emitter& out) -> Decision {
                                  return f(s, *static_cast<const C*>(c), out);
                                }});
    return *this;
  }
  template <class C>
  AggregateType& handle() {
    return handle<C>([](const S& s, const C& c, Emitter& out) { return s.decide(c, out); });
  }

  AggregateType& snapshots(SnapshotPolicy p) noexcept {
    snapshot_policy_ = p;
    return *this;
  }

  // Binds every registered event to the registry (type ids, decoders). The registry must
  // outlive this type. Error names the aggregate and the event type.
  Status resolve(const serialization::SchemaRegistry& registry) {
    for (auto& e : events_)
      if (Status st = e.resolve(registry, e); !st.ok())
        return Status(st.code(), "aggregate " + name_ + ": " + st.message());
    registry_ = &registry;
    return Status();
  }
  bool resolved() const noexcept { return registry_ != nullptr; }
  const serialization::SchemaRegistry* registry() const noexcept { return registry_; }

  const std::string& name() const noexcept { return name_; }
  uint64_t fingerprint() const noexcept { return fingerprint_; }
  const SnapshotPolicy& snapshot_policy() const noexcept { return snapshot_policy_; }
  std::span<const aggregate_detail::EventEntry> events() const noexcept { return events_; }

  // The event entry for a type id, or nullptr (an event of the stream the aggregate ignores).
  const aggregate_detail::EventEntry* event_for(uint32_t type_id) const noexcept {
    for (const auto& e : events_)
      if (e.type_id == type_id && e.binding) return &e;
    return nullptr;
  }

  // Applies one record; records of types the aggregate does not apply are skipped (true).
  Status apply_record(S& s, const RecordView& v) const {
    const auto* e = event_for(v.event_type());
    if (e == nullptr) return Status();
    return e->apply(&s, e->binding.get(), v.event_type(), v.schema_version(),
                    v.codec_id(), v.payload());
  }
  Status apply_data(S& s, const aggregate_detail::EventEntry& e, const EventData& d) const {
    return e.apply(&s, e.binding.get(), d.type, d.schema_version, static_cast<serialization::CodecId>(d.codec),
                   d.payload);
  }

  // The handler of command C, or nullptr (CommandCode::unknown_command).
  struct Command {
    const void* tag;
    const char* type_name;
    std::function<Decision(const S&, const void*, Emitter&)> decide;
  };
  template <class C>
  const Command* command_for() const noexcept {
    for (const auto& c : commands_)
      if (c.tag == aggregate_detail::tag<C>()) return &c;
    return nullptr;
  }

 private:
  std::string name_;
  uint64_t fingerprint_;
  SnapshotPolicy snapshot_policy_;
  std::vector<aggregate_detail::EventEntry> events_;
  std::vector<Command> commands_;
  const serialization::SchemaRegistry* registry_ = nullptr;
};

// ---- replays with no engine: temporal loads and the invariant finder ---------------------------

// Which state of an aggregate to load.
class AsOf {
 public:
  enum class Kind : uint8_t { latest, version, position, time };
  static constexpr AsOf latest() noexcept { return AsOf(Kind::latest, 0); }
  // After its first n events.
  static constexpr AsOf version(uint64_t n) noexcept { return AsOf(Kind::version, n); }
  // After every event of the stream at a global position < p.
  static constexpr AsOf position(uint64_t p) noexcept { return AsOf(Kind::position, p); }
  // After every event of the stream with timestamp <= ns (the log's time index).
  static constexpr AsOf time(int64_t ns) noexcept { return AsOf(Kind::time, static_cast<uint64_t>(ns)); }
  constexpr Kind kind() const noexcept { return kind_; }
  constexpr uint64_t value() const noexcept { return v_; }

  // The stream version this selects in `reader` (its stream positions and time index).
  uint64_t target_version(const LogReader& reader, StreamId stream) const noexcept {
    auto positions = reader.stream_positions(stream);
    uint64_t p = 0;
    switch (kind_) {
      case Kind::latest: return positions.size();
      case Kind::version: return std::min<uint64_t>(v_, positions.size());
      case Kind::position: p = v_; break;
      case Kind::time: {
        const auto ns = static_cast<int64_t>(v_);
        p = ns == INT64_MAX ? reader.end_position() : reader.position_at_time(ns + 1);
        break;
      }
    }
    return static_cast<uint64_t>(std::lower_bound(positions.begin(), positions.end(), p) - positions.begin());
  }

 private:
  constexpr AsOf(Kind k, uint64_t v) : kind_(k), v_(v) {}
  Kind kind_;
  uint64_t v_;
};

template <class S>
struct Loaded {
  S state{};
  uint64_t version = 0;        // events of the stream applied (0: none)
  uint64_t position = 0;       // global position of the event at `version` (0 when version 0)
  uint64_t replayed = 0;       // events read from the log by this load
  bool from_snapshot = false;  // started from a snapshot at a version <= the target
};

// Replays `stream` from `state` at version `from` (exclusive) to version `to` (inclusive).
// Error: a record that does not decode (names the stream, version and position).
template <class S>
Status replay_stream(const AggregateType<S>& type, const LogReader& reader, StreamId stream, uint64_t from,
                     uint64_t to, Loaded<S>* out) {
  auto positions = reader.stream_positions(stream);
  to = std::min<uint64_t>(to, positions.size());
  RecordView v;
  for (uint64_t ver = from + 1; ver <= to; ++ver) {
    if (!reader.read(positions[ver - 1], &v))
      return Status(StatusCode::not_found, "aggregate " + type.name() + ": stream " +
                                               std::string(reader.stream_name(stream)) + " version " +
                                               std::to_string(ver) + " not readable");
    if (Status st = type.apply_record(out->state, v); !st.ok())
      return Status(st.code(), "aggregate " + type.name() + ": stream " + std::string(reader.stream_name(stream)) +
                                   " version " + std::to_string(ver) + " (position " +
                                   std::to_string(v.position()) + "): " + st.message());
    out->version = ver;
    out->position = v.position();
    ++out->replayed;
  }
  return Status();
}

// Full replay (no snapshot) of `stream` as of `at`: the reference that snapshot loads and
// temporal queries are tested against.
template <class S>
Result<Loaded<S>> load_by_replay(const AggregateType<S>& type, const LogReader& reader, StreamId stream,
                                 AsOf at = AsOf::latest()) {
  Loaded<S> l;
  if (Status st = replay_stream(type, reader, stream, 0, at.target_version(reader, stream), &l); !st.ok()) return st;
  return l;
}

// The first event after which `invariant` fails, found by replaying one stream step by step
// (pure apply into a local state: no command, relay or saga runs).
template <class S>
struct Violation {
  uint64_t version = 0;       // of the offending event
  uint64_t position = 0;
  int64_t timestamp_ns = 0;
  std::string event_type;     // its registered name
  std::string event_json;     // decoded with the log's schema ("" when the registry lacks it)
  std::string reason;         // what the invariant said
  S before{};
  S after{};
};

namespace aggregate_detail {

// Applies `v` to `state`; when `invariant` then fails, fills *out (state before and after,
// the event decoded) and returns true.
template <class S, class Invariant>
Result<bool> step(const AggregateType<S>& type, const LogReader& reader, const RecordView& v, S& state,
                  Invariant& invariant, Violation<S>* out) {
  S before = state;
  if (Status st = type.apply_record(state, v); !st.ok())
    return Status(st.code(), "stream " + std::string(reader.stream_name(v.stream_id())) + " version " +
                                 std::to_string(v.stream_version()) + ": " + st.message());
  std::string why = invariant(static_cast<const S&>(state));
  if (why.empty()) return false;
  out->version = v.stream_version();
  out->position = v.position();
  out->timestamp_ns = v.timestamp_ns();
  out->reason = std::move(why);
  out->before = std::move(before);
  out->after = state;
  if (const auto* reg = type.registry()) {
    out->event_type = std::string(reg->type_name(v.event_type()));
    auto text = reg->to_json(v.event_type(), v.schema_version(), v.codec_id(), v.payload());
    if (text.ok()) out->event_json = std::move(text.value());
  }
  if (out->event_type.empty()) out->event_type = "type " + std::to_string(v.event_type());
  return true;
}

}  // namespace aggregate_detail

// invariant(state) returns "" when it holds, else why not. Returns nullopt when it holds
// after every event (and for the initial state, which is not checked).
template <class S, class Invariant>
Result<std::optional<Violation<S>>> find_violation(const AggregateType<S>& type, const LogReader& reader,
                                                   StreamId stream, Invariant&& invariant) {
  S state{};
  auto positions = reader.stream_positions(stream);
  RecordView v;
  Violation<S> out;
  for (uint64_t ver = 1; ver <= positions.size(); ++ver) {
    if (!reader.read(positions[ver - 1], &v))
      return Status(StatusCode::not_found, "stream " + std::string(reader.stream_name(stream)) + " version " +
                                               std::to_string(ver) + " not readable");
    auto failed = aggregate_detail::step(type, reader, v, state, invariant, &out);
    if (!failed.ok()) return failed.status();
    if (failed.value()) return std::optional<Violation<S>>(std::move(out));
  }
  return std::optional<Violation<S>>();
}

// The whole log in position order: every stream whose name `is_instance(name)` accepts is
// an aggregate of this type, replayed side by side; the first event (in log order) after
// which the invariant fails on its aggregate. Memory: one S per stream seen.
template <class S, class IsInstance, class Invariant>
Result<std::optional<std::pair<StreamId, Violation<S>>>> find_violation_in_log(const AggregateType<S>& type,
                                                                              const LogReader& reader,
                                                                              IsInstance&& is_instance,
                                                                              Invariant&& invariant) {
  std::vector<int8_t> mine;  // by stream id: -1 unknown, 0 no, 1 yes
  std::vector<S> states;     // by stream id
  RecordView v;
  Violation<S> out;
  for (auto c = reader.cursor(reader.begin_position()); c.next(&v);) {
    if (!v.is_event()) continue;
    const StreamId id = v.stream_id();
    if (id >= mine.size()) {
      mine.resize(id + 1, -1);
      states.resize(id + 1);
    }
    if (mine[id] < 0) mine[id] = is_instance(reader.stream_name(id)) ? 1 : 0;
    if (mine[id] == 0) continue;
    auto failed = aggregate_detail::step(type, reader, v, states[id], invariant, &out);
    if (!failed.ok()) return failed.status();
    if (failed.value()) return std::optional<std::pair<StreamId, Violation<S>>>(std::make_pair(id, std::move(out)));
  }
  return std::optional<std::pair<StreamId, Violation<S>>>();
}

}  // namespace sluice
