// IdempotencyIndex: the bounded in-memory dedupe table of the command bus.
//
// Design
//   key -> the first execution's result (stream, first position, version, event count) and
//   the command's content fingerprint. An open-addressing table (linear probing, deletion by
//   backward shift) of 2 x max_keys slots plus a FIFO ring of the keys in insertion order:
//   no allocation after construction. A key is evicted when it is older than the window
//   (its IdempotencyKey time) or when max_keys newer keys arrived; the newest evicted time
//   becomes the horizon, and an unknown key at or before max(horizon, now - window) is
//   reported out_of_window instead of being executed again.
//   The log is the source of truth: every event of a keyed command carries the key in its
//   header (and the content fingerprint as its causation id), all in one batch, so
//   rebuild() restores the index after a restart from the log's tail (the window).
//
// Thread safety: every method takes the index's mutex (one short critical section per
//   begin/commit/abandon); any thread.
//
// Invariants: an entry is `in_flight` from begin() (fresh) to commit() or abandon(); a
//   committed entry never changes until it is evicted.
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
  struct Entry {
    Id128 key;
    Id128 content;        // command type and content fingerprint
    StreamId stream = 0;
    uint64_t position = 0;  // first event
    uint64_t version = 0;   // the stream's version after the command
    uint32_t events = 0;
    uint8_t state = 0;      // 0 empty, 1 in flight, 2 committed
  };
  enum class Check : uint8_t { fresh, duplicate, collision, out_of_window, in_flight };

  IdempotencyIndex(uint32_t max_keys, std::chrono::milliseconds window);
  // An index for `options`, rebuilt from the log in `dir` (to share between repositories of
  // one process: IdempotencyOptions::shared). now_ms: the wall clock.
  static Result<std::shared_ptr<IdempotencyIndex>> from_log(const std::string& dir, const IdempotencyOptions& options,
                                                            int64_t now_ms);

  // Looks `key` up at wall time now_ms. fresh: reserved for the caller (commit or abandon it).
  // duplicate: *found is the first result. collision: the key is known with another content
  // or stream (*found). out_of_window / in_flight: as named.
  Check begin(const Id128& key, const Id128& content, StreamId stream, int64_t now_ms, Entry* found);
  void commit(const Entry& e);
  void abandon(const Id128& key);

  // Adds the keyed commands of the log from the window's start to its end (after a restart).
  // Records of one batch with one key form one entry. Returns the entries added.
  Result<uint64_t> rebuild(const LogReader& reader, int64_t now_ms);

  size_t size() const;
  int64_t horizon_ms() const;

 private:
  size_t find_slot(const Id128& key) const noexcept;  // slot of key, or of the empty slot ending its probe
  void erase_at(size_t i) noexcept;
  void insert(const Entry& e, int64_t now_ms);
  void evict(int64_t now_ms) noexcept;

  mutable std::mutex mu_;
  const uint32_t max_keys_;
  const int64_t window_ms_;
  std::vector<Entry> table_;
  size_t mask_;
  std::vector<Id128> ring_;  // insertion order (a power of two >= max_keys, max_keys used)
  size_t ring_mask_ = 0;
  size_t ring_head_ = 0, ring_size_ = 0;
  size_t live_ = 0;
  int64_t horizon_ms_ = INT64_MIN;  // newest evicted key time
};

}  // namespace sluice
