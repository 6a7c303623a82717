// Repository<S>: the command bus of one aggregate type. execute(stream, command) from any
// thread loads the aggregate (the cache of hot aggregates, else its latest snapshot plus the
// events after it, else its whole stream), runs the command's handler, appends what it
// emitted with ExpectedVersion::exact(loaded version), and on a conflict catches up with
// the stream and runs the handler again, per the retry policy.
//
//   auto repo = sluice::Repository<BankAccount>::open(engine, bank::account_type()).value();
//   auto id = repo->stream("account-42").value();
//   sluice::CommandResult r = repo->execute(id, Withdraw{42, 500, day}, {.idempotency_key = k});
//   if (r.code == sluice::CommandCode::rejected) { /* r.reject_code, r.message */ }
//
// Design
//   Cache: `cache_slots` slots, each with a mutex, a stream id and the aggregate's state,
//   version and position. A stream maps to one slot (its id, hashed); a command holds its
//   slot's mutex from load to the cache update, so commands for one aggregate never run
//   concurrently (two streams sharing a slot take turns; a miss evicts the other). The
//   state in a slot changes only by applying committed events, decoded from the bytes that
//   were appended, so the cached state always equals a replay of the stream.
//   Appending: through an AppendPort — the engine's ingress (a pool of Submitters, any
//   thread) or a LogWriter under a mutex (one process, no engine). The slot is held until
//   the append is committed and the cache updated; the caller's answer then waits for the
//   acknowledgement (durability) without holding it. Loading and catching up: one
//   LogReader of the repository, refreshed under its own mutex (cold path).
//   Hot path once warm (cache hit, no conflict): slot lock, handler, encode into a
//   thread-local scratch that stops growing, one append, decode + apply, slot unlock — no
//   heap allocation when the events' codec decodes without allocating (raw, FlatBuffers).
//   Idempotency: IdempotencyIndex (command_idempotency.h); the key is checked under the
//   slot lock before the handler runs and recorded after the append.
//   Snapshots: SnapshotPolicy of the AggregateType; when due, a copy of the state is kept
//   and written once its version's last event is acknowledged (durability policy; checked
//   after each command of that aggregate), to
//   <snapshot_dir>/<type>/<stream id>.snap (write_file_atomically: temporary file fsynced,
//   renamed, directory fsynced; format in docs/aggregates.md).
//   A snapshot that is corrupt, of another format, fingerprint or log is ignored (counted in
//   stats().snapshots_ignored, reason in last_warning), the stream replayed in full and the
//   snapshot rewritten.
//
// Thread safety: execute(), load(), find_violation(), stream(), stats(): any thread. The
//   AppendPort, engine and registry must outlive the repository.
//
// Invariants
//   - A slot's (state, version) is the replay of its stream's first `version` events.
//   - Nothing is appended for a rejected or failed command; a keyed command's events carry
//     its key, all in one batch.
//   - A snapshot file holds a version whose events were acknowledged when it was written.
#pragma once

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <typeinfo>

#include "sluice/bus/file_ops.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "sluice/projections/snapshot.h"
#include "sluice/runtime/aggregate.h"
#include "sluice/runtime/command_idempotency.h"
#include "sluice/runtime/command_types.h"
#include "sluice/runtime/engine.h"
#include "sluice/status.h"

namespace sluice {

// Where a repository appends.
class AppendPort {
 public:
  virtual ~AppendPort() = default;
  virtual Result<StreamId> stream(std::string_view name) = 0;
  // Returns once the events are committed (visible to readers) or refused; under group or
  // sync durability maybe not yet acknowledged (wait_acknowledged()).
  virtual AppendResult append(StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept = 0;
  virtual uint64_t acknowledged_position() const noexcept = 0;
  // Blocks until `position` is acknowledged under the log's durability (error: the writer
  // failed, or the timeout passed).
  virtual Status wait_acknowledged(uint64_t position) = 0;
  virtual const std::string& dir() const noexcept = 0;
  // Details of the last failed append, where the port knows them.
  virtual std::string last_error() const { return {}; }
};
// The engine's ingress (a pool of Submitters: commit, then acknowledgement): the engine
// must run with WriterMode::ingress; the port must go before the engine.
std::unique_ptr<AppendPort> make_engine_port(Engine& engine,
                                             std::chrono::milliseconds ack_timeout = std::chrono::seconds(10));
// A LogWriter shared under a mutex (no engine; one process).
std::unique_ptr<AppendPort> make_writer_port(LogWriter& writer);

// The non-template part of a repository: port, reader, idempotency, snapshot files, counters.
class RepositoryCore {
 public:
  static Result<std::unique_ptr<RepositoryCore>> open(AppendPort& port, std::unique_ptr<AppendPort> owned,
                                                      std::string type_name, uint64_t fingerprint,
                                                      const RepositoryOptions& options);
  ~RepositoryCore();
  // Publishes the counters into a `repository` slot of the engine's stats file, through the
  // engine's monitor (cold; no-op when the stats file is off).
  Status attach_stats(Engine& engine);

  AppendPort& port() noexcept { return *port_; }
  const RepositoryOptions& options() const noexcept { return o_; }
  const std::string& type_name() const noexcept { return type_name_; }
  Result<StreamId> stream(std::string_view name);

  // Runs f(const LogReader&) -> Status under the reader's mutex, after a refresh.
  template <class F>
  Status with_reader(F&& f) {
    std::lock_guard lock(reader_mu_);
    if (auto r = reader_->refresh(); !r.ok()) return r.status();
    return f(static_cast<const LogReader&>(*reader_));
  }

  IdempotencyIndex* keys() noexcept { return keys_.get(); }
  int64_t now_ms() const noexcept;

  // Snapshot files. read: not_found when there is none; another error says why it is
  // unusable (the caller counts it with snapshot_ignored()).
  Status write_snapshot(StreamId stream, uint64_t version, uint64_t position, const std::string& state);
  Status read_snapshot(StreamId stream, uint64_t* version, uint64_t* position, std::string* state) const;
  std::string snapshot_path(StreamId stream) const;
  void snapshot_ignored(std::string why);
  FileOps& file_ops() const noexcept { return o_.file_ops != nullptr ? *o_.file_ops : FileOps::system(); }

  // max_in_flight admission.
  bool enter() noexcept;
  void leave() noexcept;

  RepositoryStats stats() const;

  // Counters: relaxed increments, each read on its own (stats()).
  struct Counters {
    std::atomic<uint64_t> commands{0}, accepted{0}, rejected{0}, duplicates{0}, conflicts{0}, conflict_failures{0},
        cache_hits{0}, cache_misses{0}, events_replayed{0}, snapshots_written{0}, snapshots_loaded{0},
        snapshots_ignored{0}, keys_out_of_window{0}, key_collisions{0};
  };
  Counters counters;

 private:
  RepositoryCore(AppendPort& port, std::unique_ptr<AppendPort> owned, std::string type_name, uint64_t fingerprint,
                 const RepositoryOptions& options);
  AppendPort* port_;
  std::unique_ptr<AppendPort> owned_;
  const std::string type_name_;
  const uint64_t fingerprint_;
  RepositoryOptions o_;
  std::string snapshot_dir_;
  std::mutex reader_mu_;
  std::unique_ptr<LogReader> reader_;
  std::shared_ptr<IdempotencyIndex> keys_;
  std::mutex names_mu_;
  std::vector<std::pair<std::string, StreamId>> names_;
  mutable std::mutex warn_mu_;
  std::shared_ptr<StatsPublishers> stats_publishers_;  // attach_stats(): the engine's
  uint64_t stats_publisher_ = 0;
  std::string last_warning_;
  // in_flight_: execute() calls inside the repository; relaxed is enough: it only bounds
  // admission, it publishes nothing.
  std::atomic<uint32_t> in_flight_{0};
};

namespace aggregate_detail {

template <class S>
concept SavesSnapshot = requires(const S& s, S& m, SnapshotWriter& w, SnapshotReader& r) {
  s.save(w);
  { m.load(r) } -> std::convertible_to<bool>;
};
template <class S>
inline constexpr bool kSnapshottable = SavesSnapshot<S> || std::is_trivially_copyable_v<S>;

// A 64-bit hash of n bytes, 8 at a time (a fingerprint, not a cryptographic digest).
inline uint64_t hash_bytes(const void* p, size_t n, uint64_t h = 1469598103934665603ull) noexcept {
  auto* b = static_cast<const unsigned char*>(p);
  auto mix = [](uint64_t x) {
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, b + i, 8);
    h = mix(h ^ w);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, b + i, n - i);
  return mix(h ^ tail ^ (static_cast<uint64_t>(n) << 56));
}

// The content fingerprint of a command: its type, and its bytes when they are its value
// (no padding), else its fingerprint() member, else the type only.
template <class C>
Id128 command_fingerprint(const C& c) noexcept {
  static const uint64_t type_hash = [] {
    const char* n = typeid(C).name();
    return hash_bytes(n, std::strlen(n));
  }();
  uint64_t content = 0;
  if constexpr (requires { { c.fingerprint() } -> std::convertible_to<uint64_t>; })
    content = c.fingerprint();
  else if constexpr (std::has_unique_object_representations_v<C>)
    content = hash_bytes(&c, sizeof(C));
  return Id128{type_hash, content | 1};  // never {.., 0}: an all-zero id means "absent"
}

}  // namespace aggregate_detail

template <class S>
class Repository {
 public:
  // On the engine (WriterMode::ingress, started); its registry binds the events.
  static Result<std::unique_ptr<Repository>> open(Engine& engine, AggregateType<S> type,
                                                  const RepositoryOptions& options = {});
  // On any port; `registry` binds the events (it must outlive the repository).
  static Result<std::unique_ptr<Repository>> open(AppendPort& port, const serialization::SchemaRegistry& registry,
                                                  AggregateType<S> type, const RepositoryOptions& options = {}) {
    return open_impl(port, nullptr, registry, std::move(type), options);
  }

  Result<StreamId> stream(std::string_view name) { return core_->stream(name); }

  template <class C>
  CommandResult execute(StreamId id, const C& command, const CommandOptions& options = {});

  // The aggregate as of a version, position or time (AsOf), from the newest usable snapshot
  // at or before the target plus the events after it; not cached.
  Result<Loaded<S>> load(StreamId id, AsOf at = AsOf::latest()) {
    Loaded<S> l;
    if (Status st = core_->with_reader([&](const LogReader& r) { return load_into(r, id, at, &l, nullptr); }); !st.ok())
      return st;
    return l;
  }

  // The first event of the stream after which invariant(state) returns a non-empty reason.
  template <class Invariant>
  Result<std::optional<Violation<S>>> find_violation(StreamId id, Invariant&& invariant) {
    Result<std::optional<Violation<S>>> out = std::optional<Violation<S>>();
    Status st = core_->with_reader([&](const LogReader& r) {
      out = sluice::find_violation(type_, r, id, invariant);
      return out.ok() ? Status() : out.status();
    });
    if (!st.ok()) return st;
    return out;
  }

  const AggregateType<S>& type() const noexcept { return type_; }
  RepositoryStats stats() const { return core_->stats(); }
  RepositoryCore& core() noexcept { return *core_; }

 private:
  struct Slot {
    std::mutex mu;
    StreamId stream = 0;       // 0: empty
    bool valid = false;
    bool snapshot_due = false;
    bool has_pending = false;  // `pending` waits for its acknowledgement
    uint64_t snapshot_version = 0;
    Loaded<S> agg;
    Loaded<S> pending;
  };

  Repository(std::unique_ptr<RepositoryCore> core, AggregateType<S> type, uint32_t slots)
      : core_(std::move(core)), type_(std::move(type)), mask_(slots - 1), slots_(new Slot[slots]) {}

  static Result<std::unique_ptr<Repository>> open_impl(AppendPort& port, std::unique_ptr<AppendPort> owned,
                                                       const serialization::SchemaRegistry& registry,
                                                       AggregateType<S> type, const RepositoryOptions& options) {
    if (Status st = type.resolve(registry); !st.ok()) return st;
    auto core = RepositoryCore::open(port, std::move(owned), type.name(), type.fingerprint(), options);
    if (!core.ok()) return core.status();
    uint32_t n = 1;
    while (n < options.cache_slots) n <<= 1;
    return std::unique_ptr<Repository>(new Repository(std::move(core.value()), std::move(type), n));
  }

  Slot& slot_for(StreamId id) noexcept {
    const uint64_t h = id * 0x9E3779B97F4A7C15ull;
    return slots_[static_cast<size_t>(h >> 32) & mask_];
  }

  // Loads `id` as of `at` into *l (from a usable snapshot at or before the target, then the
  // log). *rejected_snapshot: set when a snapshot existed but was ignored.
  Status load_into(const LogReader& r, StreamId id, AsOf at, Loaded<S>* l, bool* rejected_snapshot) {
    *l = Loaded<S>{};
    const uint64_t target = at.target_version(r, id);
    if constexpr (aggregate_detail::kSnapshottable<S>) {
      uint64_t version = 0, position = 0;
      static thread_local std::string bytes;  // reused: a load allocates no buffer once warm
      Status st = core_->read_snapshot(id, &version, &position, &bytes);
      if (st.ok()) {
        auto positions = r.stream_positions(id);
        if (version == 0 || version > positions.size() || positions[version - 1] != position) {
          st = Status(StatusCode::corruption, core_->snapshot_path(id) + ": version " + std::to_string(version) +
                                                  " at position " + std::to_string(position) +
                                                  " is not an event of this log's stream");
        } else if (version <= target) {
          if (decode_state(bytes, &l->state)) {
            l->version = version;
            l->position = position;
            l->from_snapshot = true;
            core_->counters.snapshots_loaded.fetch_add(1, std::memory_order_relaxed);
          } else {
            l->state = S{};
            st = Status(StatusCode::corruption, core_->snapshot_path(id) + ": state does not decode");
          }
        }
      }
      if (!st.ok() && st.code() != StatusCode::not_found) {
        core_->snapshot_ignored("aggregate " + type_.name() + ": snapshot ignored, full replay: " + st.to_string());
        if (rejected_snapshot) *rejected_snapshot = true;
      }
    }
    const uint64_t before = l->replayed;
    Status st = replay_stream(type_, r, id, l->version, target, l);
    core_->counters.events_replayed.fetch_add(l->replayed - before, std::memory_order_relaxed);
    return st;
  }

  static bool decode_state(const std::string& bytes, S* out) {
    if constexpr (aggregate_detail::SavesSnapshot<S>) {
      SnapshotReader rd(std::as_bytes(std::span<const char>(bytes)));
      return out->load(rd) && rd.remaining() == 0;
    } else if constexpr (std::is_trivially_copyable_v<S>) {
      if (bytes.size() != sizeof(S)) return false;
      std::memcpy(static_cast<void*>(out), bytes.data(), sizeof(S));
      return true;
    } else {
      return false;
    }
  }
  static std::string encode_state(const S& s) {
    std::string out;
    if constexpr (aggregate_detail::SavesSnapshot<S>) {
      SnapshotWriter w(&out);
      s.save(w);
    } else if constexpr (std::is_trivially_copyable_v<S>) {
      out.assign(reinterpret_cast<const char*>(&s), sizeof(S));
    }
    return out;
  }

  // Brings the slot to `id` (cache hit, or a load). Slot locked.
  Status ensure_loaded(Slot& slot, StreamId id) {
    if (slot.valid && slot.stream == id) {
      core_->counters.cache_hits.fetch_add(1, std::memory_order_relaxed);
      return Status();
    }
    core_->counters.cache_misses.fetch_add(1, std::memory_order_relaxed);
    slot.valid = false;
    slot.has_pending = false;
    slot.stream = id;
    bool rejected = false;
    Status st = core_->with_reader(
        [&](const LogReader& r) { return load_into(r, id, AsOf::latest(), &slot.agg, &rejected); });
    if (!st.ok()) return st;
    slot.valid = true;
    slot.snapshot_version = slot.agg.from_snapshot ? slot.agg.version : 0;
    const SnapshotPolicy& p = type_.snapshot_policy();
    const bool policy = p.every_events != 0 || p.replay_threshold != 0;
    slot.snapshot_due = rejected || (policy && p.replay_threshold != 0 && slot.agg.replayed > p.replay_threshold);
    return Status();
  }

  // After a conflict: applies the stream's events past the slot's version. Slot locked.
  Status catch_up(Slot& slot, StreamId id) {
    return core_->with_reader([&](const LogReader& r) {
      const uint64_t before = slot.agg.replayed;
      Status st = replay_stream(type_, r, id, slot.agg.version, UINT64_MAX, &slot.agg);
      core_->counters.events_replayed.fetch_add(slot.agg.replayed - before, std::memory_order_relaxed);
      return st;
    });
  }

  // After a command: when the policy says so, keeps a copy of the state at the current
  // version; writes the kept copy once its last event is acknowledged (a later command of
  // the aggregate checks again). Slot locked.
  void maybe_snapshot(Slot& slot) {
    if constexpr (aggregate_detail::kSnapshottable<S>) {
      const SnapshotPolicy& p = type_.snapshot_policy();
      if (p.every_events != 0 && slot.agg.version >= slot.snapshot_version + p.every_events) slot.snapshot_due = true;
      if (slot.snapshot_due && !slot.has_pending && slot.agg.version != 0) {
        slot.pending = slot.agg;
        slot.has_pending = true;
        slot.snapshot_due = false;
      }
      if (!slot.has_pending) return;
      // Every position below acknowledged_position() is durable under the policy.
      if (core_->port().acknowledged_position() <= slot.pending.position) return;
      slot.has_pending = false;
      if (core_->write_snapshot(slot.stream, slot.pending.version, slot.pending.position, encode_state(slot.pending.state))
              .ok()) {
        slot.snapshot_version = slot.pending.version;
        core_->counters.snapshots_written.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  static CommandCode code_of(AppendCode c) noexcept {
    switch (c) {
      case AppendCode::ok: return CommandCode::ok;
      case AppendCode::conflict: return CommandCode::conflict;
      case AppendCode::closed: return CommandCode::closed;
      case AppendCode::back_pressured: return CommandCode::back_pressured;
      case AppendCode::io_error: return CommandCode::io_error;
      case AppendCode::too_large:
      case AppendCode::invalid_argument: return CommandCode::invalid_argument;
    }
    return CommandCode::io_error;
  }

  std::unique_ptr<RepositoryCore> core_;
  AggregateType<S> type_;
  const size_t mask_;
  std::unique_ptr<Slot[]> slots_;
};

template <class S>
template <class C>
CommandResult Repository<S>::execute(StreamId id, const C& command, const CommandOptions& options) {
  IdempotencyIndex* keys = core_->options().idempotency.enabled ? core_->keys() : nullptr;
  const bool keyed = keys != nullptr && !options.idempotency_key.empty();
  // The key hashed once and its table slot asked for first: the miss overlaps the work up to
  // begin() (the counters, the aggregate's lock, the command's fingerprint).
  const IdempotencyIndex::Key key = keyed ? keys->prepare(options.idempotency_key) : IdempotencyIndex::Key{};
  CommandResult r;
  auto& n = core_->counters;
  n.commands.fetch_add(1, std::memory_order_relaxed);
  const auto* handler = type_.template command_for<C>();
  if (handler == nullptr) {
    r.code = CommandCode::unknown_command;
    r.message = "aggregate " + type_.name() + " has no handler for command type " + typeid(C).name();
    return r;
  }
  if (!core_->enter()) {
    r.code = CommandCode::back_pressured;
    return r;
  }
  struct Leave {
    RepositoryCore* c;
    ~Leave() { c->leave(); }
  } leave{core_.get()};

  Slot& slot = slot_for(id);
  std::unique_lock lock(slot.mu);

  Id128 content{};
  IdempotencyIndex::Ticket ticket = 0;  // the key's entry, for commit() / abandon()
  if (keyed) {
    content = aggregate_detail::command_fingerprint(command);
    IdempotencyIndex::Entry found;
    switch (keys->begin(key, content, id, core_->now_ms(), &found, &ticket)) {
      case IdempotencyIndex::Check::fresh: break;
      case IdempotencyIndex::Check::duplicate:
        n.duplicates.fetch_add(1, std::memory_order_relaxed);
        r.code = CommandCode::duplicate;
        r.position = found.position;
        r.version = found.version;
        r.events = found.events;
        return r;
      case IdempotencyIndex::Check::collision:
        n.key_collisions.fetch_add(1, std::memory_order_relaxed);
        r.code = CommandCode::key_collision;
        r.message = "aggregate " + type_.name() + ": idempotency key was used by " +
                    (found.stream != id ? "another aggregate (stream " + std::to_string(found.stream) + ")"
                                        : std::string("another command")) +
                    " at position " + std::to_string(found.position);
        return r;
      case IdempotencyIndex::Check::out_of_window:
        n.keys_out_of_window.fetch_add(1, std::memory_order_relaxed);
        r.code = CommandCode::key_out_of_window;
        r.message = "aggregate " + type_.name() + ": idempotency key older than the dedupe window";
        return r;
      case IdempotencyIndex::Check::in_flight:
        r.code = CommandCode::key_in_flight;
        r.message = "aggregate " + type_.name() + ": idempotency key is executing on another aggregate";
        return r;
    }
  }
  auto fail = [&](CommandCode code, std::string msg) {
    if (keyed) keys->abandon(ticket);
    r.code = code;
    r.message = std::move(msg);
    return r;
  };

  if (Status st = ensure_loaded(slot, id); !st.ok()) {
    slot.valid = false;
    return fail(CommandCode::load_failed, st.to_string());
  }
  static thread_local aggregate_detail::EmitScratch scratch;
  const RetryPolicy& retry = core_->options().retry;
  std::chrono::microseconds backoff{0};
  for (uint32_t attempt = 1;; ++attempt) {
    r.attempts = attempt;
    Emitter out(type_.events(), scratch);
    Decision d;
    try {
      d = handler->decide(slot.agg.state, &command, out);
    } catch (const std::exception& e) {
      return fail(CommandCode::handler_failed, "aggregate " + type_.name() + ": handler threw: " + e.what());
    } catch (...) {
      return fail(CommandCode::handler_failed, "aggregate " + type_.name() + ": handler threw");
    }
    if (d.rejected()) {
      n.rejected.fetch_add(1, std::memory_order_relaxed);
      r.reject_code = d.code();
      return fail(CommandCode::rejected, std::move(d.reason()));
    }
    if (!out.error().ok())
      return fail(CommandCode::handler_failed, "aggregate " + type_.name() + ": " + out.error().message());
    if (out.size() == 0) {  // accepted, nothing to write
      n.accepted.fetch_add(1, std::memory_order_relaxed);
      if (keyed) keys->abandon(ticket);
      r.version = slot.agg.version;
      return r;
    }
    for (EventData& e : scratch.events) {
      if (keyed) {
        e.idempotency_key = options.idempotency_key;
        e.causation_id = content;
      }
      e.correlation_id = options.correlation_id;
    }
    const AppendResult a = core_->port().append(id, ExpectedVersion::exact(slot.agg.version), scratch.events);
    if (a.ok()) {
      const auto count = static_cast<uint32_t>(scratch.events.size());
      for (size_t i = 0; i < scratch.events.size(); ++i)
        if (Status st = type_.apply_data(slot.agg.state, *scratch.entries[i], scratch.events[i]); !st.ok())
          slot.valid = false;  // committed but not applicable here: reload next time
      slot.agg.version = a.stream_version;
      slot.agg.position = a.position + count - 1;
      r.code = CommandCode::ok;
      r.position = a.position;
      r.version = a.stream_version;
      r.events = count;
      if (keyed) keys->commit(ticket, a.position, a.stream_version, count);
      n.accepted.fetch_add(1, std::memory_order_relaxed);
      if (slot.valid) maybe_snapshot(slot);
      // The answer waits for the acknowledgement (durability), outside the aggregate's
      // lock: the next command of this aggregate may decide on the committed state
      // meanwhile (the log is ordered: its acknowledgement implies this one's).
      lock.unlock();
      if (core_->options().wait_for_acknowledgement) {
        if (Status st = core_->port().wait_acknowledged(r.position + count - 1); !st.ok()) {
          r.code = st.code() == StatusCode::timeout ? CommandCode::io_error : CommandCode::closed;
          r.message = "aggregate " + type_.name() + ": committed at position " + std::to_string(r.position) +
                      " but not acknowledged: " + st.to_string();
        }
      }
      return r;
    }
    if (a.code != AppendCode::conflict)
      return fail(code_of(a.code), "aggregate " + type_.name() + ": append to stream " + std::to_string(id) +
                                       " failed: " + std::string(to_string(a.code)) + " " + core_->port().last_error());
    n.conflicts.fetch_add(1, std::memory_order_relaxed);
    if (attempt >= retry.max_attempts) {
      n.conflict_failures.fetch_add(1, std::memory_order_relaxed);
      return fail(CommandCode::conflict, "aggregate " + type_.name() + ": stream " + std::to_string(id) +
                                             " still conflicting after " + std::to_string(attempt) + " attempts");
    }
    if (Status st = catch_up(slot, id); !st.ok()) {
      slot.valid = false;
      return fail(CommandCode::load_failed, st.to_string());
    }
    if (backoff.count() == 0) {
      std::this_thread::yield();
      backoff = std::chrono::microseconds(1);
    } else {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, retry.max_backoff);
    }
  }
}

template <class S>
Result<std::unique_ptr<Repository<S>>> Repository<S>::open(Engine& engine, AggregateType<S> type,
                                                           const RepositoryOptions& options) {
  auto port = make_engine_port(engine, options.acknowledgement_timeout);
  AppendPort& p = *port;
  auto repo = open_impl(p, std::move(port), engine.registry(), std::move(type), options);
  if (repo.ok())
    if (Status st = repo.value()->core().attach_stats(engine); !st.ok()) return st;
  return repo;
}

}  // namespace sluice
