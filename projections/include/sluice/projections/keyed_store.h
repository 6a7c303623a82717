// KeyedStore<V>: a read-model table (uint64_t key -> V) that one worker thread updates and
// any number of threads query at the same time, without the worker ever waiting for them.
//
// Design
//   Open addressing with linear probing over a power-of-two table of slots. Every slot is a
//   seqlock: a sequence word, a state word (empty / live / erased), the key and the value,
//   all stored as 8-byte atomic words (release stores, acquire loads: plain moves on x86). The worker (the single writer) makes the sequence odd,
//   writes the words, then makes it even again; a reader copies the words between two reads
//   of an even, unchanged sequence, and retries otherwise. The worker never waits on a
//   reader (why seqlock and not left-right or RCU: docs/projections.md).
//
//   Growth: when live + erased slots would pass 70 % of the table, the worker builds a table
//   twice as large (or the same size, to drop erased slots), copies the live entries, and
//   publishes it with a release store of table_. A reader still probing the old table gets
//   an answer that was current when the new one was published; old tables are retired, not
//   freed, until the store dies (together they are smaller than the current table), so no
//   reader ever touches freed memory and no reclamation scheme is needed. Growth allocates
//   (from the worker's mimalloc heap) and copies: reserve() up front keeps it off the hot
//   path.
//
// Thread safety
//   Writer side (put, update, erase, clear, reserve, load): one thread at a time — the
//   projection's worker (or, before the worker starts, the thread restoring a checkpoint).
//   Reader side (get, contains, for_each, select, size): any thread, concurrently with the
//   writer. A reader sees each entry whole (never half of an update); a multi-entry scan is
//   not a snapshot of one instant — combine with ProjectionHandle::wait_for() for
//   read-your-writes.
//
// Invariants
//   - A slot's sequence is odd exactly while the writer is rewriting it.
//   - Every live key appears once, reachable from its home slot without crossing an empty one.
//   - used_ (live + erased slots) <= 70 % of the capacity after every write.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/projections/snapshot.h"
#include "sluice/projections/worker_heap.h"
#include "sluice/status.h"

namespace sluice {

namespace store_internal {
constexpr uint64_t mix64(uint64_t x) noexcept {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
inline void cpu_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace store_internal

template <class V>
class KeyedStore {
  static_assert(std::is_trivially_copyable_v<V>, "KeyedStore values must be trivially copyable");
  static constexpr size_t kWords = (sizeof(V) + 7) / 8;
  enum : uint64_t { kEmpty = 0, kLive = 1, kErased = 2 };

  struct Slot {
    std::atomic<uint64_t> seq;    // seqlock sequence: odd while being written
    std::atomic<uint64_t> state;  // kEmpty / kLive / kErased
    std::atomic<uint64_t> key;
    std::atomic<uint64_t> value[kWords];
  };
  struct Table {
    size_t capacity;  // power of two
    Slot* slots;
  };

 public:
  explicit KeyedStore(size_t initial_capacity = 1024) { table_.store(make_table(initial_capacity), std::memory_order_relaxed); }
  ~KeyedStore() {
    drop(table_.load(std::memory_order_relaxed));
    for (Table* t : retired_) drop(t);
  }
  KeyedStore(const KeyedStore&) = delete;
  KeyedStore& operator=(const KeyedStore&) = delete;

  // ---- reader side: any thread -------------------------------------------------------------
  std::optional<V> get(uint64_t key) const noexcept {
    // Acquire: pairs with the release in grow(); the slots of the table are initialised.
    const Table* t = table_.load(std::memory_order_acquire);
    const size_t mask = t->capacity - 1;
    for (size_t i = home(key, mask), n = 0; n < t->capacity; i = (i + 1) & mask, ++n) {
      Copy c = read(t->slots[i]);
      if (c.state == kEmpty) return std::nullopt;
      if (c.state == kLive && c.key == key) return c.value;
    }
    return std::nullopt;
  }
  bool contains(uint64_t key) const noexcept { return get(key).has_value(); }

  // Calls f(key, value) for every live entry (each entry read whole; see Thread safety).
  template <class F>
  void for_each(F&& f) const {
    const Table* t = table_.load(std::memory_order_acquire);  // pairs with grow()
    for (size_t i = 0; i < t->capacity; ++i) {
      Copy c = read(t->slots[i]);
      if (c.state == kLive) f(c.key, c.value);
    }
  }
  // Entries whose value satisfies `pred`, sorted by key.
  template <class Pred>
  std::vector<std::pair<uint64_t, V>> select(Pred&& pred) const {
    std::vector<std::pair<uint64_t, V>> out;
    for_each([&](uint64_t k, const V& v) {
      if (pred(k, v)) out.emplace_back(k, v);
    });
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return out;
  }
  // Live entries (racy while the writer runs: an estimate).
  size_t size_estimate() const noexcept {
    // Relaxed: a count for display; nothing is published through it.
    return live_.load(std::memory_order_relaxed);
  }

  // ---- writer side: the owning worker --------------------------------------------------------
  void put(uint64_t key, const V& value) noexcept {
    Table* t = writable();
    size_t i = find_for_write(t, key);
    Slot& s = t->slots[i];
    const uint64_t st = s.state.load(std::memory_order_relaxed);
    if (st != kLive) {
      if (st == kEmpty) ++used_;
      live_.store(live_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    write(s, kLive, key, value);
  }
  // Applies f(V&) to the value of `key` (starting from `init` when absent) and stores it.
  template <class F>
  void update(uint64_t key, const V& init, F&& f) noexcept {
    Table* t = writable();
    size_t i = find_for_write(t, key);
    Slot& s = t->slots[i];
    const uint64_t st = s.state.load(std::memory_order_relaxed);
    V v = init;
    if (st == kLive) {
      v = own_value(s);
    } else {
      if (st == kEmpty) ++used_;
      live_.store(live_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    f(v);
    write(s, kLive, key, v);
  }
  bool erase(uint64_t key) noexcept {
    Table* t = table_.load(std::memory_order_relaxed);  // writer: its own last store
    const size_t mask = t->capacity - 1;
    for (size_t i = home(key, mask), n = 0; n < t->capacity; i = (i + 1) & mask, ++n) {
      Slot& s = t->slots[i];
      const uint64_t st = s.state.load(std::memory_order_relaxed);
      if (st == kEmpty) return false;
      if (st == kLive && s.key.load(std::memory_order_relaxed) == key) {
        write(s, kErased, key, V{});
        live_.store(live_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
        return true;
      }
    }
    return false;
  }
  // The writer's own read (no retry loop: nobody else writes).
  std::optional<V> peek(uint64_t key) const noexcept {
    const Table* t = table_.load(std::memory_order_relaxed);
    const size_t mask = t->capacity - 1;
    for (size_t i = home(key, mask), n = 0; n < t->capacity; i = (i + 1) & mask, ++n) {
      const Slot& s = t->slots[i];
      const uint64_t st = s.state.load(std::memory_order_relaxed);
      if (st == kEmpty) return std::nullopt;
      if (st == kLive && s.key.load(std::memory_order_relaxed) == key) return own_value(s);
    }
    return std::nullopt;
  }
  // Makes room for `n` live entries without growing again.
  void reserve(size_t n) {
    Table* t = table_.load(std::memory_order_relaxed);
    if (n * 10 / 7 + 1 > t->capacity) grow(std::bit_ceil(n * 10 / 7 + 1));
  }
  void clear() {
    Table* t = table_.load(std::memory_order_relaxed);
    for (size_t i = 0; i < t->capacity; ++i)
      if (t->slots[i].state.load(std::memory_order_relaxed) != kEmpty) write(t->slots[i], kErased, 0, V{});
    live_.store(0, std::memory_order_relaxed);
    grow(t->capacity);  // drops the erased slots
  }

  // ---- snapshot and digest (writer side, or any thread once the writer is stopped) ---------
  void save(SnapshotWriter& w) const {
    w.u64(live_.load(std::memory_order_relaxed));
    for_each([&](uint64_t k, const V& v) {
      w.u64(k);
      w.pod(v);
    });
  }
  Status load(SnapshotReader& r, const std::string& what) {
    clear();
    uint64_t n;
    if (!r.u64(&n)) return Status(StatusCode::corruption, what + ": truncated entry count");
    // A hostile count must not size the table: each entry needs its bytes (the snapshot
    // fuzzer found reserve(2^60) crashing in make_table).
    if (n > r.remaining() / (sizeof(uint64_t) + sizeof(V)))
      return Status(StatusCode::corruption, what + ": " + std::to_string(n) + " entries, but only " +
                                                std::to_string(r.remaining()) + " bytes follow");
    reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t k;
      V v;
      if (!r.u64(&k) || !r.pod(&v))
        return Status(StatusCode::corruption, what + ": truncated at entry " + std::to_string(i));
      put(k, v);
    }
    return Status::OK();
  }
  // Order-independent digest of the live entries: equal contents give equal digests,
  // whatever the insertion history. Values must have no padding bytes.
  uint64_t digest() const noexcept {
    uint64_t d = 0;
    for_each([&](uint64_t k, const V& v) {
      uint64_t w[kWords] = {};
      std::memcpy(w, &v, sizeof(V));
      uint64_t h = store_internal::mix64(k + 0x9e3779b97f4a7c15ull);
      for (size_t j = 0; j < kWords; ++j) h = store_internal::mix64(h ^ w[j]);
      d += h;
    });
    return d;
  }
  size_t capacity() const noexcept { return table_.load(std::memory_order_relaxed)->capacity; }

 private:
  struct Copy {
    uint64_t state = kEmpty;
    uint64_t key = 0;
    V value{};
  };

  static size_t home(uint64_t key, size_t mask) noexcept { return store_internal::mix64(key) & mask; }

  // Seqlock read (pseudocode: s1 = seq; if odd retry; copy words; s2 = seq; retry unless
  // s1 == s2). No standalone fences (TSan cannot check them): the word loads are acquire, so
  // the re-read of seq cannot move before them, and a word written by a later write carries
  // that write's odd sequence with it (the writer's word stores are release). On x86 every
  // one of these is a plain mov.
  static Copy read(const Slot& s) noexcept {
    for (;;) {
      // Acquire: pairs with the release store that ended the last write, so the words read
      // below are at least that write's.
      const uint64_t s1 = s.seq.load(std::memory_order_acquire);
      if (s1 & 1) {
        store_internal::cpu_pause();
        continue;
      }
      Copy c;
      // Acquire: if this load sees a word of a newer write, that write's odd sequence
      // (stored before the word, which is a release store) is visible to the re-read below.
      c.state = s.state.load(std::memory_order_acquire);
      c.key = s.key.load(std::memory_order_acquire);
      uint64_t w[kWords];
      for (size_t j = 0; j < kWords; ++j) w[j] = s.value[j].load(std::memory_order_acquire);
      // Relaxed: ordered after the acquire loads above.
      if (s.seq.load(std::memory_order_relaxed) != s1) continue;
      std::memcpy(&c.value, w, sizeof(V));
      return c;
    }
  }
  static V own_value(const Slot& s) noexcept {
    uint64_t w[kWords];
    for (size_t j = 0; j < kWords; ++j) w[j] = s.value[j].load(std::memory_order_relaxed);
    V v;
    std::memcpy(&v, w, sizeof(V));
    return v;
  }
  // Seqlock write by the single writer: odd sequence, the words (release: each publishes
  // the odd sequence before it to a reader that acquires the word), even sequence (release:
  // pairs with the reader's acquire load of seq).
  static void write(Slot& s, uint64_t state, uint64_t key, const V& v) noexcept {
    const uint64_t q = s.seq.load(std::memory_order_relaxed);  // only this thread writes it
    s.seq.store(q + 1, std::memory_order_relaxed);
    uint64_t w[kWords] = {};
    std::memcpy(w, &v, sizeof(V));
    s.state.store(state, std::memory_order_release);
    s.key.store(key, std::memory_order_release);
    for (size_t j = 0; j < kWords; ++j) s.value[j].store(w[j], std::memory_order_release);
    s.seq.store(q + 2, std::memory_order_release);
  }

  // The slot holding `key`, or the slot to insert it in (first erased on its path, else
  // the empty slot that ends the path).
  size_t find_for_write(Table* t, uint64_t key) noexcept {
    const size_t mask = t->capacity - 1;
    size_t first_erased = SIZE_MAX;
    for (size_t i = home(key, mask);; i = (i + 1) & mask) {
      const Slot& s = t->slots[i];
      const uint64_t st = s.state.load(std::memory_order_relaxed);
      if (st == kEmpty) return first_erased != SIZE_MAX ? first_erased : i;
      if (st == kErased) {
        if (first_erased == SIZE_MAX) first_erased = i;
      } else if (s.key.load(std::memory_order_relaxed) == key) {
        return i;
      }
    }
  }
  // The current table, grown first if one more slot would pass the load factor.
  Table* writable() noexcept {
    Table* t = table_.load(std::memory_order_relaxed);
    if ((used_ + 1) * 10 > t->capacity * 7) {
      const size_t live = live_.load(std::memory_order_relaxed);
      grow((live + 1) * 10 > t->capacity * 7 / 2 ? t->capacity * 2 : t->capacity);
      t = table_.load(std::memory_order_relaxed);
    }
    return t;
  }
  void grow(size_t capacity) {
    Table* old = table_.load(std::memory_order_relaxed);
    Table* t = make_table(capacity);
    size_t live = 0;
    const size_t mask = t->capacity - 1;
    for (size_t i = 0; i < old->capacity; ++i) {
      const Slot& s = old->slots[i];
      if (s.state.load(std::memory_order_relaxed) != kLive) continue;
      const uint64_t k = s.key.load(std::memory_order_relaxed);
      size_t j = home(k, mask);
      while (t->slots[j].state.load(std::memory_order_relaxed) != kEmpty) j = (j + 1) & mask;
      write(t->slots[j], kLive, k, own_value(s));
      ++live;
    }
    used_ = live;
    // Release: publishes the filled table to readers that acquire table_.
    table_.store(t, std::memory_order_release);
    retired_.push_back(old);  // readers may still probe it: freed with the store
  }
  static Table* make_table(size_t capacity) {
    capacity = std::bit_ceil(std::max<size_t>(capacity, 16));
    auto* t = new Table{capacity, nullptr};
    void* mem = WorkerHeap::allocate(capacity * sizeof(Slot), alignof(Slot) < 64 ? 64 : alignof(Slot));
    if (mem == nullptr) throw std::bad_alloc();
    t->slots = static_cast<Slot*>(mem);
    for (size_t i = 0; i < capacity; ++i) new (&t->slots[i]) Slot{};  // empty, sequence 0
    return t;
  }
  static void drop(Table* t) noexcept {
    if (!t) return;
    WorkerHeap::free(t->slots, t->capacity * sizeof(Slot), alignof(Slot) < 64 ? 64 : alignof(Slot));
    delete t;
  }

  // table_: the current table. Release store in grow() publishes its filled slots; acquire
  // loads on the reader side pair with it.
  std::atomic<Table*> table_{nullptr};
  // live_: written by the writer only (relaxed load+store), read as an estimate.
  std::atomic<size_t> live_{0};
  size_t used_ = 0;               // writer only: live + erased slots in the current table
  std::vector<Table*> retired_;   // writer only
};

}  // namespace sluice
