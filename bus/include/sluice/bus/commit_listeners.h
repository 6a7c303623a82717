// CommitListeners: several CommitListeners behind the writer's one slot
// (LogOptions::commit_listener), told in the order they were added.
//
// Design
//   A fixed array and a count. add() writes the pointer, then release-stores the count; the
//   writer's on_commit() acquires the count once per commit and calls that many listeners.
//   So a listener can join while the writer appends (the engine adds the bus's publisher at
//   start(), after the writer opened with the head-counters listener), and the writer sees
//   it fully built from its next commit on. Removal is only by truncate(), which must not
//   race an append.
//
// Thread safety
//   add()/truncate(): one controlling thread. on_commit(): the writer thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>

#include "sluice/bus/log_types.h"

namespace sluice {

class CommitListeners final : public CommitListener {
 public:
  static constexpr size_t kMax = 8;

  // False when kMax listeners are there already.
  [[nodiscard]] bool add(CommitListener* l) noexcept {
    const size_t n = count_.load(std::memory_order_relaxed);  // relaxed: this thread is the only writer
    if (n == kMax || l == nullptr) return false;
    listeners_[n] = l;
    // Release: publishes listeners_[n] (and the listener it points to) to on_commit()'s acquire.
    count_.store(n + 1, std::memory_order_release);
    return true;
  }
  // Keeps the first `n` listeners. Must not race an append.
  void truncate(size_t n) noexcept {
    if (n < count_.load(std::memory_order_relaxed)) count_.store(n, std::memory_order_release);
  }
  size_t size() const noexcept { return count_.load(std::memory_order_acquire); }

  void on_commit(const RecordView& v, bool end_of_batch) noexcept override {
    // Acquire: pairs with the release in add(). (A plain load on x86.)
    const size_t n = count_.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i) listeners_[i]->on_commit(v, end_of_batch);
  }

 private:
  std::array<CommitListener*, kMax> listeners_{};
  std::atomic<size_t> count_{0};
};

}  // namespace sluice
