// IdempotencyIndex: see command_idempotency.h.
#include "sluice/runtime/command_idempotency.h"

#include <algorithm>

#include "sluice/bus/log_reader.h"

namespace sluice {

namespace {
uint64_t hash_key(const Id128& k) noexcept {
  uint64_t h = (k.hi ^ (k.lo * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}
}  // namespace

IdempotencyIndex::IdempotencyIndex(uint32_t max_keys, std::chrono::milliseconds window)
    : max_keys_(std::clamp<uint32_t>(max_keys, 1, uint32_t{1} << 30)), window_ms_(window.count()) {
  size_t cap = 2;
  while (cap < static_cast<size_t>(max_keys_) * 2) cap <<= 1;
  table_.resize(cap);  // <= 2^31 slots: a slot's home is its 32-bit hash & mask_
  mask_ = cap - 1;
  size_t ring = 1;
  while (ring < max_keys_) ring <<= 1;
  ring_.resize(ring);  // a power of two: positions wrap with a mask
  ring_mask_ = ring - 1;
}

namespace {
constexpr uint64_t kPosMask = 0xffffffffull;
}  // namespace

size_t IdempotencyIndex::find_slot(const Id128& key, uint64_t h) const noexcept {
  const uint64_t tag = h & kPosMask;
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const uint64_t s = table_[i];
    if (s == 0) return i;
    if ((s >> 32) == tag && ring_[(s & kPosMask) - 1].key == key) return i;
  }
}

size_t IdempotencyIndex::slot_of(size_t pos, uint64_t h) const noexcept {
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const uint64_t s = table_[i];
    if ((s & kPosMask) == pos + 1) return i;
    if (s == 0) return SIZE_MAX;  // not in the table (the invariant says this never happens)
  }
}

// Linear probing's deletion by backward shift: later slots of the probe run move into the
// hole when their home slot allows it, so no tombstones accumulate. A slot's home is in its
// own bits: no key is read.
void IdempotencyIndex::erase_at(size_t i) noexcept {
  table_[i] = 0;
  --live_;
  size_t hole = i;
  for (size_t j = (i + 1) & mask_; table_[j] != 0; j = (j + 1) & mask_) {
    const size_t home = (table_[j] >> 32) & mask_;
    // Move j into the hole unless its home lies cyclically in (hole, j].
    const bool home_in_range = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (home_in_range) continue;
    table_[hole] = table_[j];
    table_[j] = 0;
    hole = j;
  }
}

// Forgets the oldest entry; a live one's time becomes the horizon (a later unknown key at or
// before it is out of the window).
void IdempotencyIndex::drop_head() noexcept {
  const size_t pos = head_ & ring_mask_;
  Entry& e = ring_[pos];
  if (e.state != 0) {
    if (const size_t i = slot_of(pos, hash_key(e.key)); i != SIZE_MAX) erase_at(i);
    horizon_ms_ = std::max(horizon_ms_, IdempotencyKey::time_ms(e.key));
    e.state = 0;
  }
  ++head_;
}

// Drops the entries older than the window, and abandoned ones, from the head. (The count
// bound makes room only for a new key: begin() and rebuild() drop the oldest when full.)
void IdempotencyIndex::evict(int64_t now_ms) noexcept {
  const int64_t oldest_allowed = now_ms - window_ms_;
  while (tail_ != head_) {
    const Entry& e = ring_[head_ & ring_mask_];
    if (e.state != 0 && IdempotencyKey::time_ms(e.key) >= oldest_allowed) break;
    drop_head();  // an abandoned entry (state 0) only leaves the ring
  }
}

IdempotencyIndex::Ticket IdempotencyIndex::place(size_t slot, uint64_t h, const Entry& e) noexcept {
  const size_t pos = tail_ & ring_mask_;
  ring_[pos] = e;
  table_[slot] = (h & kPosMask) << 32 | (pos + 1);
  ++live_;
  return tail_++;
}

IdempotencyIndex::Key IdempotencyIndex::prepare(const Id128& key) const noexcept {
  const uint64_t h = hash_key(key);  // the only hash of this key per command
  // The key's slot is the one random access of its lookup. (table_'s storage never moves:
  // its address may be read unlocked.)
  __builtin_prefetch(&table_[h & mask_]);
  return Key{key, h};
}

IdempotencyIndex::Check IdempotencyIndex::begin(const Key& k, const Id128& content, StreamId stream, int64_t now_ms,
                                                Entry* found, Ticket* ticket) {
  const Id128& key = k.id;
  const uint64_t h = k.hash;
  std::lock_guard lock(mu_);
  evict(now_ms);
  size_t i = find_slot(key, h);
  if (table_[i] != 0) {
    const Entry& e = ring_[(table_[i] & kPosMask) - 1];
    *found = e;
    if (e.state == 1) return Check::in_flight;
    if (!(e.content == content) || e.stream != stream) return Check::collision;
    return Check::duplicate;
  }
  const int64_t t = IdempotencyKey::time_ms(key);
  if (t < now_ms - window_ms_ || t <= horizon_ms_) return Check::out_of_window;
  // Full: the oldest goes, even in flight (if it commits later, a retry of it is out of the
  // window, not run again).
  if (tail_ - head_ == max_keys_) {
    drop_head();
    i = find_slot(key, h);  // the erase may have moved the probe run
  }
  Entry e;
  e.key = key;
  e.content = content;
  e.stream = stream;
  e.state = 1;
  *ticket = place(i, h, e);
  // The next begin() will likely evict the oldest entry: ask for its table slot now, a
  // command ahead (the other random access of a keyed command).
  if (tail_ - head_ == max_keys_) __builtin_prefetch(&table_[hash_key(ring_[head_ & ring_mask_].key) & mask_]);
  return Check::fresh;
}

void IdempotencyIndex::commit(Ticket t, uint64_t position, uint64_t version, uint32_t events) {
  std::lock_guard lock(mu_);
  if (t < head_ || t >= tail_) return;  // evicted meanwhile (window far too small): nothing to keep
  Entry& e = ring_[t & ring_mask_];
  if (e.state != 1) return;
  e.position = position;
  e.version = version;
  e.events = events;
  e.state = 2;
}

void IdempotencyIndex::abandon(Ticket t) {
  std::lock_guard lock(mu_);
  if (t < head_ || t >= tail_) return;  // evicted meanwhile
  const size_t pos = t & ring_mask_;
  Entry& e = ring_[pos];
  if (e.state != 1) return;
  if (const size_t i = slot_of(pos, hash_key(e.key)); i != SIZE_MAX) erase_at(i);
  e.state = 0;  // its ring position is skipped when it reaches the head
}

Result<std::shared_ptr<IdempotencyIndex>> IdempotencyIndex::from_log(const std::string& dir,
                                                                    const IdempotencyOptions& options, int64_t now_ms) {
  auto reader = LogReader::open(dir);
  if (!reader.ok()) return reader.status();
  auto index = std::make_shared<IdempotencyIndex>(options.max_keys, options.window);
  if (auto n = index->rebuild(*reader.value(), now_ms); !n.ok()) return n.status();
  return index;
}

Result<uint64_t> IdempotencyIndex::rebuild(const LogReader& reader, int64_t now_ms) {
  std::lock_guard lock(mu_);
  const int64_t from_ns = (now_ms - window_ms_) * 1'000'000;
  uint64_t added = 0;
  RecordView v;
  Entry cur;
  bool open = false;
  auto close = [&] {
    if (!open) return;
    open = false;
    const uint64_t h = hash_key(cur.key);
    if (table_[find_slot(cur.key, h)] != 0) return;  // known (a batch split by another's records)
    evict(now_ms);
    if (tail_ - head_ == max_keys_) drop_head();
    place(find_slot(cur.key, h), h, cur);  // found again: the evictions may have moved its run
    ++added;
  };
  for (auto c = reader.cursor(from_ns > 0 ? reader.position_at_time(from_ns) : 0); c.next(&v);) {
    const Id128 k = v.idempotency_key();
    if (open && k == cur.key && v.stream_id() == cur.stream && v.stream_version() == cur.version + 1) {
      cur.version = v.stream_version();
      ++cur.events;
      continue;
    }
    close();
    if (k.empty()) continue;
    cur = Entry{};
    cur.key = k;
    cur.content = v.causation_id();
    cur.stream = v.stream_id();
    cur.position = v.position();
    cur.version = v.stream_version();
    cur.events = 1;
    cur.state = 2;
    open = true;
  }
  close();
  return added;
}

size_t IdempotencyIndex::size() const {
  std::lock_guard lock(mu_);
  return live_;
}

int64_t IdempotencyIndex::horizon_ms() const {
  std::lock_guard lock(mu_);
  return horizon_ms_;
}

}  // namespace sluice
