// The value types of the command bus: what execute() returns, its options and the
// repository's options and counters. See repository.h and docs/aggregates.md.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sluice/bus/log_types.h"

namespace sluice {

class IdempotencyIndex;

enum class CommandCode : uint8_t {
  ok = 0,             // the handler accepted; its events are appended (maybe none)
  duplicate,          // the idempotency key was seen: the first execution's result, nothing ran
  rejected,           // the handler refused: reject_code and message are the handler's
  conflict,           // the stream kept moving: still conflicting after the retry policy
  back_pressured,     // too many commands in flight (RepositoryOptions::max_in_flight), or the
                      // engine's ingress refused the append (full): nothing written, retry later
  closed,             // the engine or writer does not accept appends (stopped, failed)
  io_error,           // the append failed on I/O; the writer has stopped
  invalid_argument,   // the append was refused (unknown stream, batch too large)
  unknown_command,    // the aggregate type has no handler for this command type
  handler_failed,     // the handler threw, or emitted an event that cannot be encoded
  key_collision,      // the idempotency key was used for another command or aggregate
  key_out_of_window,  // the key is older than the dedupe window: not executed, not known
  key_in_flight,      // the same key is executing right now on another aggregate
  load_failed,        // the aggregate's stream could not be read or decoded
};
std::string_view to_string(CommandCode c) noexcept;

struct [[nodiscard]] CommandResult {
  CommandCode code = CommandCode::ok;
  uint64_t position = 0;    // global position of the first event written (ok, duplicate)
  uint64_t version = 0;     // the aggregate's version after the command (ok, duplicate)
  uint32_t events = 0;      // events written by the command (duplicate: by the first run)
  uint32_t attempts = 0;    // handler runs (1 + retries after conflicts); 0 when it did not run
  uint32_t reject_code = 0; // rejected: the handler's code
  std::string message;      // empty on success; else why (names the aggregate, stream, type)
  bool ok() const noexcept { return code == CommandCode::ok || code == CommandCode::duplicate; }
};

// A 128-bit idempotency key. The dedupe window is by age, so keys carry their time:
// hi = milliseconds since the Unix epoch when the client first issued the request (reuse the
// same key for every retry of it), lo = unique among that client's requests of that
// millisecond (a random number, or a client id and a counter).
struct IdempotencyKey {
  static Id128 make(int64_t unix_ms, uint64_t unique) noexcept {
    return Id128{static_cast<uint64_t>(unix_ms), unique};
  }
  static int64_t time_ms(const Id128& k) noexcept { return static_cast<int64_t>(k.hi); }
};

struct CommandOptions {
  Id128 idempotency_key;  // {0,0}: none; see IdempotencyKey
  Id128 correlation_id;   // written into every event of the command (optional)
  static CommandOptions keyed(Id128 key) noexcept {
    CommandOptions o;
    o.idempotency_key = key;
    return o;
  }
};

struct RetryPolicy {
  uint32_t max_attempts = 16;                     // handler runs before CommandCode::conflict
  std::chrono::microseconds max_backoff{1000};    // after a conflict: yield, then sleep
                                                  // 1 µs doubling up to this
};

struct IdempotencyOptions {
  bool enabled = true;
  uint32_t max_keys = 65536;                      // keys remembered (memory: ~80 B each: a
                                                  // 64-byte entry, two 8-byte table slots)
  std::chrono::milliseconds window = std::chrono::hours(24);  // keys older than this are out of window
  // nullptr (the default): repositories of one process on one log share one index (made by
  // the first of them with its max_keys and window, rebuilt from the log), so a retry is
  // recognised whichever repository it reaches. Or an index of the caller's.
  std::shared_ptr<IdempotencyIndex> shared;
};

struct RepositoryOptions {
  uint32_t cache_slots = 4096;  // hot aggregates kept (rounded up to a power of two); a
                                // stream maps to one slot by its id, a miss evicts that slot
  RetryPolicy retry;
  IdempotencyOptions idempotency;
  std::string snapshot_dir;     // "": <log dir>/snapshots; a folder per aggregate type
  mode_t snapshot_file_mode = 0640;  // snapshot files: owner read/write, group read
  FileOps* file_ops = nullptr;  // snapshot files and folders; nullptr: the real system calls
  uint32_t max_in_flight = 0;   // 0: no limit; else execute() beyond it -> back_pressured
  // true: execute() answers ok once the events are acknowledged under the log's durability
  // (group: after the group flush); false: once committed (visible, maybe not yet durable).
  bool wait_for_acknowledgement = true;
  std::chrono::milliseconds acknowledgement_timeout{10'000};
  int64_t (*clock_ns)() = nullptr;  // idempotency window clock; nullptr: CLOCK_REALTIME
};

// Counters (relaxed reads: each is exact, the set is not a consistent snapshot).
struct RepositoryStats {
  uint64_t commands = 0;
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t duplicates = 0;
  uint64_t conflicts = 0;            // appends that met a conflict (each one retried or failed)
  uint64_t conflict_failures = 0;    // commands that returned CommandCode::conflict
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;         // loads into the cache
  uint64_t events_replayed = 0;      // read from the log by loads and catch-ups
  uint64_t snapshots_written = 0;
  uint64_t snapshots_loaded = 0;
  uint64_t snapshots_ignored = 0;    // corrupt, old format, other fingerprint, other log
  uint64_t keys_out_of_window = 0;
  uint64_t key_collisions = 0;
  std::string last_warning;          // the last ignored snapshot's reason ("" if none)
};

}  // namespace sluice
