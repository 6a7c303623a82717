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
    : max_keys_(std::max<uint32_t>(max_keys, 1)), window_ms_(window.count()) {
  size_t cap = 2;
  while (cap < static_cast<size_t>(max_keys_) * 2) cap <<= 1;
  table_.resize(cap);
  mask_ = cap - 1;
  size_t ring = 1;
  while (ring < max_keys_) ring <<= 1;
  ring_.resize(ring);  // a power of two: positions wrap with a mask
  ring_mask_ = ring - 1;
}

size_t IdempotencyIndex::find_slot(const Id128& key) const noexcept {
  size_t i = hash_key(key) & mask_;
  while (table_[i].state != 0 && !(table_[i].key == key)) i = (i + 1) & mask_;
  return i;
}

// Linear probing's deletion by backward shift: later entries of the probe run move into the
// hole when their home slot allows it, so no tombstones accumulate.
void IdempotencyIndex::erase_at(size_t i) noexcept {
  table_[i].state = 0;
  --live_;
  size_t hole = i;
  for (size_t j = (i + 1) & mask_; table_[j].state != 0; j = (j + 1) & mask_) {
    const size_t home = hash_key(table_[j].key) & mask_;
    // Move j into the hole unless its home lies cyclically in (hole, j].
    const bool home_in_range = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (home_in_range) continue;
    table_[hole] = table_[j];
    table_[j].state = 0;
    hole = j;
  }
}

void IdempotencyIndex::evict(int64_t now_ms) noexcept {
  const int64_t oldest_allowed = now_ms - window_ms_;
  while (ring_size_ > 0) {
    const Id128 k = ring_[ring_head_];
    const size_t i = find_slot(k);
    const bool live = table_[i].state != 0;
    const bool too_old = IdempotencyKey::time_ms(k) < oldest_allowed;
    if (live && !too_old && ring_size_ < max_keys_) break;
    if (live && table_[i].state == 1 && !too_old) break;  // in flight: keep until it ends
    if (live) {
      horizon_ms_ = std::max(horizon_ms_, IdempotencyKey::time_ms(k));
      erase_at(i);
    }
    ring_head_ = (ring_head_ + 1) & ring_mask_;
    --ring_size_;
  }
}

void IdempotencyIndex::insert(const Entry& e, int64_t now_ms) {
  evict(now_ms);
  if (ring_size_ == max_keys_) {  // only in-flight entries left at the head: drop the oldest anyway
    const size_t i = find_slot(ring_[ring_head_]);
    if (table_[i].state != 0) erase_at(i);
    ring_head_ = (ring_head_ + 1) & ring_mask_;
    --ring_size_;
  }
  const size_t i = find_slot(e.key);
  if (table_[i].state == 0) ++live_;
  table_[i] = e;
  ring_[(ring_head_ + ring_size_) & ring_mask_] = e.key;
  ++ring_size_;
}

IdempotencyIndex::Check IdempotencyIndex::begin(const Id128& key, const Id128& content, StreamId stream,
                                                int64_t now_ms, Entry* found) {
  // The two slots this call touches (the key's, and the oldest key's that a full window
  // evicts) are far apart in a table larger than the caches: fetch both first, so that their
  // misses overlap. (table_'s storage never moves: its address may be read unlocked.)
  __builtin_prefetch(&table_[hash_key(key) & mask_]);
  std::lock_guard lock(mu_);
  if (ring_size_ == max_keys_) __builtin_prefetch(&table_[hash_key(ring_[ring_head_]) & mask_]);
  evict(now_ms);
  size_t i = find_slot(key);
  if (table_[i].state != 0) {
    *found = table_[i];
    if (table_[i].state == 1) return Check::in_flight;
    if (!(table_[i].content == content) || table_[i].stream != stream) return Check::collision;
    return Check::duplicate;
  }
  const int64_t t = IdempotencyKey::time_ms(key);
  if (t < now_ms - window_ms_ || t <= horizon_ms_) return Check::out_of_window;
  if (ring_size_ == max_keys_) {  // only in-flight entries at the head: drop the oldest anyway
    const size_t h = find_slot(ring_[ring_head_]);
    if (table_[h].state != 0) erase_at(h);
    ring_head_ = (ring_head_ + 1) & ring_mask_;
    --ring_size_;
    i = find_slot(key);  // the erase may have moved the probe run
  }
  Entry& e = table_[i];  // evict() ran above: the slot found is where the key goes
  e.key = key;
  e.content = content;
  e.stream = stream;
  e.position = e.version = 0;
  e.events = 0;
  e.state = 1;
  ++live_;
  ring_[(ring_head_ + ring_size_) & ring_mask_] = key;
  ++ring_size_;
  return Check::fresh;
}

void IdempotencyIndex::commit(const Entry& e) {
  std::lock_guard lock(mu_);
  const size_t i = find_slot(e.key);
  if (table_[i].state == 0) return;  // evicted meanwhile (window far too small): nothing to keep
  table_[i] = e;
  table_[i].state = 2;
}

void IdempotencyIndex::abandon(const Id128& key) {
  std::lock_guard lock(mu_);
  const size_t i = find_slot(key);
  if (table_[i].state == 1) erase_at(i);  // its ring entry is skipped when it reaches the head
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
    if (table_[find_slot(cur.key)].state == 0) {
      insert(cur, now_ms);
      ++added;
    }
    open = false;
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
