// IdempotencyIndex: the bounded in-memory dedupe table of the command bus.
//
// Design
//   key -> the first execution's result (stream, first position, version, event count) and
//   the command's content fingerprint. Two arrays, no allocation after construction:
//   - the ring: the entries themselves (one cache line each), in insertion order, a power of
//     two >= max_keys; an entry lives at ring position seq & mask, seq counting insertions.
//     The window evicts from its head, so the writes (tail) and the evictions (head) walk it
//     sequentially.
//   - the table: open addressing (linear probing, deletion by backward shift) of 2 x max_keys
//     8-byte slots, each the low 32 bits of the key's hash (its home slot and a tag) and the
//     ring position of its entry: 1 MiB for the default 65,536 keys, so the one random access
//     of a lookup or an eviction mostly stays in the core's cache. A probe compares tags and
//     reads the ring entry's key only on a tag match; an eviction finds its slot by ring
//     position, without comparing keys.
//   begin() hashes the key once and returns a Ticket (the entry's seq); commit() and
//   abandon() go straight to the ring entry: no second hash or probe (abandon probes once to
//   free the table slot). A ticket whose entry was evicted meanwhile is stale: commit() and
//   abandon() then do nothing.
//   A key is evicted when it is older than the window (its IdempotencyKey time) or when
//   max_keys newer keys arrived; the newest evicted time becomes the horizon, and an unknown
//   key at or before max(horizon, now - window) is reported out_of_window instead of being
//   executed again.
//   The log is the source of truth: every event of a keyed command carries the key in its
//   header (and the content fingerprint as its causation id), all in one batch, so
//   rebuild() restores the index after a restart from the log's tail (the window).
//
// Thread safety: every method takes the index's mutex (one short critical section per
//   begin/commit/abandon); any thread.
//
// Invariants: an entry is `in_flight` from begin() (fresh) to commit() or abandon(); a
//   committed entry never changes until it is evicted. A table slot points at exactly one
//   live (in flight or committed) ring entry, and every live ring entry has one slot.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/bus/log_types.h"
#include "sluice/runtime/command_types.h"
#include "sluice/status.h"

namespace sluice {

class LogReader;

class IdempotencyIndex {
 public:
  struct alignas(64) Entry {  // one cache line
    Id128 key;
    Id128 content;        // command type and content fingerprint
    StreamId stream = 0;
    uint64_t position = 0;  // first event
    uint64_t version = 0;   // the stream's version after the command
    uint32_t events = 0;
    uint8_t state = 0;      // 0 empty (or abandoned), 1 in flight, 2 committed
  };
  enum class Check : uint8_t { fresh, duplicate, collision, out_of_window, in_flight };
  // What begin() hands out for a fresh key: the entry's insertion number.
  using Ticket = uint64_t;

  // max_keys: at most 2^30 (larger values are clamped).
  IdempotencyIndex(uint32_t max_keys, std::chrono::milliseconds window);
  // An index for `options`, rebuilt from the log in `dir` (to share between repositories of
  // one process: IdempotencyOptions::shared). now_ms: the wall clock.
  static Result<std::shared_ptr<IdempotencyIndex>> from_log(const std::string& dir, const IdempotencyOptions& options,
                                                            int64_t now_ms);

  // A key hashed once: prepare() hashes it and asks for its table slot, so that the cache
  // miss overlaps whatever the caller does before begin() (the command bus: its aggregate's
  // lock and the command's fingerprint).
  struct Key {
    Id128 id;
    uint64_t hash = 0;
  };
  Key prepare(const Id128& key) const noexcept;

  // Looks `key` up at wall time now_ms. fresh: reserved for the caller, *ticket names it
  // (commit or abandon it). duplicate: *found is the first result. collision: the key is
  // known with another content or stream (*found). out_of_window / in_flight: as named.
  Check begin(const Key& key, const Id128& content, StreamId stream, int64_t now_ms, Entry* found, Ticket* ticket);
  Check begin(const Id128& key, const Id128& content, StreamId stream, int64_t now_ms, Entry* found, Ticket* ticket) {
    return begin(prepare(key), content, stream, now_ms, found, ticket);
  }
  // Records the result of a fresh key (its events are committed).
  void commit(Ticket t, uint64_t position, uint64_t version, uint32_t events);
  // Forgets a fresh key (nothing was written).
  void abandon(Ticket t);

  // Adds the keyed commands of the log from the window's start to its end (after a restart).
  // Records of one batch with one key form one entry. Returns the entries added.
  Result<uint64_t> rebuild(const LogReader& reader, int64_t now_ms);

  size_t size() const;
  int64_t horizon_ms() const;

 private:
  // The slot of `key` (hash h), or the empty slot that ends its probe run.
  size_t find_slot(const Id128& key, uint64_t h) const noexcept;
  // The slot that points at ring position `pos` (its entry's key hashes to h).
  size_t slot_of(size_t pos, uint64_t h) const noexcept;
  void erase_at(size_t i) noexcept;
  void drop_head() noexcept;
  Ticket place(size_t slot, uint64_t h, const Entry& e) noexcept;
  void evict(int64_t now_ms) noexcept;

  mutable std::mutex mu_;
  const uint32_t max_keys_;
  const int64_t window_ms_;
  std::vector<uint64_t> table_;  // 0 empty; else (uint32 hash) << 32 | (ring position + 1)
  size_t mask_;
  std::vector<Entry> ring_;  // a power of two >= max_keys, at most max_keys between head and tail
  size_t ring_mask_ = 0;
  uint64_t head_ = 0, tail_ = 0;  // seq of the oldest entry, of the next one
  size_t live_ = 0;
  int64_t horizon_ms_ = INT64_MIN;  // newest evicted key time
};

}  // namespace sluice
