#include "sluice/projections/projection_runner.h"

#include "sluice/projections/keyed_store.h"
#include "sluice/bus/clock.h"

#include <sched.h>

#include <algorithm>

#include <ctime>
#include <exception>
#include <thread>

namespace sluice {
ProjectionRunner::ProjectionRunner(std::string name, ProjectionFactory factory, ProjectionOptions options,
                                   Context ctx)
    : name_(std::move(name)), factory_(std::move(factory)), o_(options), ctx_(std::move(ctx)) {}

ProjectionRunner::~ProjectionRunner() = default;

int64_t ProjectionRunner::now_ns() const noexcept { return ctx_.clock_ns ? ctx_.clock_ns() : realtime_ns(); }

uint64_t ProjectionRunner::address_of(const RecordView& v) const noexcept {
  return v.segment_index * ctx_.segment_size + v.offset + v.length();
}

Status ProjectionRunner::open(uint64_t log_end, bool use_checkpoint) {
  if (Status st = validate_projection_name(name_); !st.ok()) return st;
  std::unique_ptr<Projection> p = factory_ ? factory_() : nullptr;
  if (!p) return Status(StatusCode::invalid_argument, "projection '" + name_ + "': its factory made no projection");
  if (Status st = p->resolve_types(ctx_.registry, name_); !st.ok()) return st;
  live_owner_ = std::shared_ptr<Projection>(std::move(p));
  live_ = live_owner_.get();
  if (use_checkpoint) {
    auto ck = read_checkpoint(ctx_.log_dir, name_);
    if (!ck.ok()) return ck.status();
    if (ck.value().has_value()) {
      const CheckpointData& d = *ck.value();
      if (d.position > log_end)
        return Status(StatusCode::corruption,
                      "checkpoint " + checkpoint_path(ctx_.log_dir, name_) + " of projection '" + name_ +
                          "' is at position " + std::to_string(d.position) + ", past the log's end " +
                          std::to_string(log_end) + " (was the log truncated or replaced?)");
      if (Status st = restore(d); !st.ok()) return st;
    }
  }
  applied_.store(next_, std::memory_order_release);  // pairs with applied_position()
  if (counters::Slot* s = ctx_.slot) {
    counters::put(s->counters.applied_position, next_);
    counters::put(s->counters.applied_address, applied_address_);
    counters::put(s->counters.applied_timestamp_ns, applied_ts_);
    counters::put(s->counters.events_applied, events_applied_);
    counters::put(s->counters.checkpoint_position, next_);
    counters::put(s->counters.parked_keys, uint64_t{parked_.size()});
    counters::put(s->counters.dead_letters, uint64_t{dead_letters_.size()});
    counters::put(s->alerts.max_events_behind, o_.alert.max_events_behind);
    counters::put(s->alerts.max_time_behind_ns, static_cast<uint64_t>(o_.alert.max_time_behind.count()));
  }
  last_checkpoint_ns_ = now_ns();
  return Status::OK();
}

// Payload layout: u64 parked-key count, keys; u64 dead-letter count, each (position, stream,
// key, type, attempts, reason); u64 applied timestamp; then the read model's own bytes.
CheckpointData ProjectionRunner::snapshot_now() const {
  CheckpointData d;
  d.position = next_;
  d.applied_address = applied_address_;
  d.events_applied = events_applied_;
  d.digest = live_->digest();
  SnapshotWriter w(&d.payload);
  w.u64(parked_.size());
  std::vector<uint64_t> keys(parked_.begin(), parked_.end());
  std::sort(keys.begin(), keys.end());
  for (uint64_t k : keys) w.u64(k);
  {
    std::lock_guard lock(mu_);
    w.u64(dead_letters_.size());
    for (const DeadLetter& dl : dead_letters_) {
      w.u64(dl.position);
      w.u64(dl.stream);
      w.u64(dl.key);
      w.u64(dl.type);
      w.u64(dl.attempts);
      w.str(dl.reason);
    }
  }
  w.i64(applied_ts_);
  live_->save(w);
  return d;
}

namespace {

// The runner's part of a checkpoint payload (see snapshot_now()), up to the read model's.
Status read_runner_state(SnapshotReader& r, const std::string& what, CheckpointState* out) {
  uint64_t n;
  if (!r.u64(&n)) return Status(StatusCode::corruption, what + ": truncated parked keys");
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t k;
    if (!r.u64(&k)) return Status(StatusCode::corruption, what + ": truncated parked keys");
    out->parked_keys.push_back(k);
  }
  if (!r.u64(&n)) return Status(StatusCode::corruption, what + ": truncated dead letters");
  for (uint64_t i = 0; i < n; ++i) {
    DeadLetter dl;
    uint64_t type, attempts;
    if (!r.u64(&dl.position) || !r.u64(&dl.stream) || !r.u64(&dl.key) || !r.u64(&type) || !r.u64(&attempts) ||
        !r.str(&dl.reason))
      return Status(StatusCode::corruption, what + ": truncated dead letters");
    dl.type = static_cast<uint32_t>(type);
    dl.attempts = static_cast<uint32_t>(attempts);
    out->dead_letters.push_back(std::move(dl));
  }
  if (!r.i64(&out->applied_timestamp_ns)) return Status(StatusCode::corruption, what + ": truncated");
  return Status::OK();
}

std::string checkpoint_what(const std::string& log_dir, std::string_view name) {
  return "checkpoint " + checkpoint_path(log_dir, name) + " of projection '" + std::string(name) + "'";
}

}  // namespace

Result<std::optional<CheckpointState>> read_checkpoint_state(const std::string& log_dir, std::string_view projection) {
  auto ck = read_checkpoint(log_dir, projection);
  if (!ck.ok()) return ck.status();
  if (!ck.value().has_value()) return std::optional<CheckpointState>();
  const CheckpointData& d = *ck.value();
  CheckpointState st;
  st.position = d.position;
  st.events_applied = d.events_applied;
  st.written_ns = d.written_ns;
  SnapshotReader r(std::as_bytes(std::span<const char>(d.payload.data(), d.payload.size())));
  if (Status s = read_runner_state(r, checkpoint_what(log_dir, projection), &st); !s.ok()) return s;
  return std::optional<CheckpointState>(std::move(st));
}

Status ProjectionRunner::restore(const CheckpointData& d) {
  const std::string what = checkpoint_what(ctx_.log_dir, name_);
  SnapshotReader r(std::as_bytes(std::span<const char>(d.payload.data(), d.payload.size())));
  CheckpointState state;
  if (Status st = read_runner_state(r, what, &state); !st.ok()) return st;
  parked_.insert(state.parked_keys.begin(), state.parked_keys.end());
  std::vector<DeadLetter> dls = std::move(state.dead_letters);
  applied_ts_ = state.applied_timestamp_ns;
  if (Status st = live_->load(r); !st.ok())
    return Status(st.code(), what + ": read model: " + st.message());
  if (live_->digest() != d.digest)
    return Status(StatusCode::corruption, what + ": restored read model's digest differs from the recorded one");
  {
    std::lock_guard lock(mu_);
    dead_letters_ = std::move(dls);
  }
  next_ = d.position;
  applied_address_ = d.applied_address;
  events_applied_ = d.events_applied;
  return Status::OK();
}

void ProjectionRunner::apply_record(const RecordView& v) noexcept {
  if (stopped_) return;
  const uint64_t pos = v.position();
  if (pos != next_) {
    if (pos > next_)
      fail(Status(StatusCode::corruption, "projection '" + name_ + "': expected position " + std::to_string(next_) +
                                              ", got " + std::to_string(pos) + " (a gap)"));
    return;  // below next_: already applied (a source replaying what the checkpoint holds)
  }
  Event e(v);
  ApplyResult r = ApplyResult::ok;
  uint32_t attempts = 0;
  std::string reason;
  if (!parked_.empty() && parked_.count(live_->key_of(e)) != 0) {
    park(e, live_->key_of(e), 0, "an earlier event of this key is parked");
    r = ApplyResult::skip;
  } else {
    for (;;) {
      ++attempts;
      try {
        r = live_->apply(e);
      } catch (const std::exception& ex) {  // the failure path: a handler threw
        r = ApplyResult::retry;
        reason = ex.what();
      } catch (...) {
        r = ApplyResult::retry;
        reason = "unknown exception";
      }
      if (r == ApplyResult::ok || r == ApplyResult::skip) break;
      if (counters::Slot* s = ctx_.slot) counters::bump(s->counters.handler_errors);
      if (r == ApplyResult::reject || attempts >= o_.max_attempts) break;
      if (counters::Slot* s = ctx_.slot) counters::bump(s->counters.retries);
    }
    if (r == ApplyResult::retry || r == ApplyResult::reject) {
      if (r == ApplyResult::reject)  // the handler's own reason, or the decoder's
        if (std::string why = live_->take_reject_reason(); !why.empty()) reason = std::move(why);
      if (reason.empty()) reason = r == ApplyResult::reject ? "rejected by the handler" : "handler asked to retry";
      if (o_.on_failure == FailurePolicy::stop) {
        fail(Status(StatusCode::invalid_argument,
                    "projection '" + name_ + "' stopped at position " + std::to_string(pos) + " (stream " +
                        std::to_string(v.stream_id()) + ", type " + std::to_string(v.event_type()) + ") after " +
                        std::to_string(attempts) + " attempt(s): " + reason));
        return;
      }
      park(e, live_->key_of(e), attempts, std::move(reason));
    } else if (r == ApplyResult::skip) {
      if (counters::Slot* s = ctx_.slot) counters::bump(s->counters.skipped);
    }
  }
  next_ = pos + 1;
  applied_address_ = address_of(v);
  applied_ts_ = v.timestamp_ns();
  ++events_applied_;
  ++batch_events_;
  ++since_checkpoint_;
  if (ctx_.slot != nullptr) {
    // No clock here: the latency is taken at the batch's commit (end_batch), one reading
    // for the whole batch. A batch larger than the buffer is measured when it fills.
    if (latency_count_ == kLatencyBuffer) record_latencies(now_ns());
    latency_ts_[latency_count_++] = applied_ts_;
  }
}

void ProjectionRunner::end_batch(int64_t now) noexcept {
  if (stopped_ || batch_events_ == 0) return;
  live_->on_batch_end();
  // Release: the read model's updates for [.., next_) happen-before a reader that acquires
  // applied_ (wait_for, applied_position).
  applied_.store(next_, std::memory_order_release);
  if (counters::Slot* s = ctx_.slot) {
    // Plain stores (counters::put: relaxed, single writer) into the slot's first counter
    // line; the histogram after them, so that the commit is visible first.
    counters::put(s->counters.applied_position, next_);
    counters::put(s->counters.applied_address, applied_address_);
    counters::put(s->counters.applied_timestamp_ns, applied_ts_);
    counters::put(s->counters.events_applied, events_applied_);
    counters::bump(s->counters.batches);
    record_latencies(now);
  }
  batch_events_ = 0;
  maybe_checkpoint(now);
}

// Adds the buffered events' append -> applied latencies (against `now`) to the slot's
// histogram. The worker is the histogram's only writer: loads and stores, no
// read-modify-write. Consecutive events nearly always fall into the same bucket (append
// timestamps only grow along the log, and `now` is one reading), so the loop keeps the
// current bucket's timestamp range and, while an event stays inside it, only counts; a
// bucket word is stored once per run of events and count, sum, min and max once per call.
// An event outside the range (a bucket edge, or a clock that stepped back) recomputes it.
void ProjectionRunner::record_latencies(int64_t now) noexcept {
  counters::Slot* s = ctx_.slot;
  const uint32_t n = latency_count_;
  if (s == nullptr || n == 0) return;
  counters::HistogramWords& h = s->histogram;
  uint64_t sum = 0, lo = UINT64_MAX, hi = 0;
  uint32_t bucket = 0;
  uint64_t run = 0;
  // The current bucket holds the events with first_ts < ts <= last_ts (empty at first).
  int64_t first_ts = 0, last_ts = -1;
  for (uint32_t i = 0; i < n; ++i) {
    const int64_t ts = latency_ts_[i];
    const uint64_t lat = now > ts ? static_cast<uint64_t>(now) - static_cast<uint64_t>(ts) : 0;
    if (ts > last_ts || ts <= first_ts) {
      if (run > 0) counters::bump(h.buckets[bucket], run);
      run = 0;
      bucket = counters::bucket_index(lat);
      // Latencies [lower, upper) of this bucket, as append timestamps (now - upper, now - lower];
      // bucket 0 also takes every ts >= now (latency 0), the last bucket everything above.
      const uint64_t lower = counters::bucket_lower(bucket);
      last_ts = lat == 0 ? INT64_MAX : static_cast<int64_t>(static_cast<uint64_t>(now) - lower);
      first_ts = bucket == counters::kBuckets - 1
                     ? INT64_MIN
                     : static_cast<int64_t>(static_cast<uint64_t>(now) - counters::bucket_upper(bucket));
    }
    ++run;
    sum += lat;
    lo = std::min(lo, lat);
    hi = std::max(hi, lat);
  }
  counters::bump(h.buckets[bucket], run);
  counters::bump(h.count, n);
  counters::put(h.sum, counters::get(h.sum) + sum);
  if (hi > counters::get(h.max)) counters::put(h.max, hi);
  if (lo < counters::get(h.min)) counters::put(h.min, lo);
  latency_count_ = 0;
}

void ProjectionRunner::maybe_checkpoint(int64_t now) noexcept {
  const bool by_events = o_.checkpoint_every > 0 && since_checkpoint_ >= o_.checkpoint_every;
  const bool by_time = o_.checkpoint_interval.count() > 0 && since_checkpoint_ > 0 &&
                       now - last_checkpoint_ns_ >= std::chrono::nanoseconds(o_.checkpoint_interval).count();
  if (!by_events && !by_time) return;
  // Acquire: pairs with the release in pending_done(); the checkpoint thread is done with
  // pending_. If it is still writing the last one, skip this one.
  if (pending_state_.load(std::memory_order_acquire) != 0) return;
  try {
    pending_ = snapshot_now();  // the cold part of the worker's loop: allocates
  } catch (...) {
    return;  // out of memory: try at the next batch end
  }
  since_checkpoint_ = 0;
  last_checkpoint_ns_ = now;
  // Release: publishes pending_ to the checkpoint thread (acquire in take_pending()).
  pending_state_.store(1, std::memory_order_release);
}

bool ProjectionRunner::take_pending(CheckpointData* out) {
  // Acquire: pairs with the release in maybe_checkpoint().
  if (pending_state_.load(std::memory_order_acquire) != 1) return false;
  *out = std::move(pending_);
  return true;
}

void ProjectionRunner::pending_done(const CheckpointData& written, bool ok) {
  if (ok) {
    if (counters::Slot* s = ctx_.slot) {
      // The checkpoint thread is the only writer of these two words.
      counters::put(s->counters.checkpoint_position, written.position);
      counters::bump(s->counters.checkpoints_written);
      counters::put(s->counters.checkpoint_time_ns, written.written_ns);
    }
  }
  // Release: hands pending_ back to the worker (acquire in maybe_checkpoint()).
  pending_state_.store(0, std::memory_order_release);
}

void ProjectionRunner::park(const Event& e, uint64_t key, uint32_t attempts, std::string reason) noexcept {
  try {
    const bool new_key = parked_.insert(key).second;
    DeadLetter dl{e.position(), e.stream_id(), key, e.type(), attempts, std::move(reason)};
    {
      std::lock_guard lock(mu_);
      dead_letters_.push_back(std::move(dl));
    }
    if (counters::Slot* s = ctx_.slot) {
      counters::bump(s->counters.dead_letters);
      if (new_key) counters::put(s->counters.parked_keys, uint64_t{parked_.size()});
    }
  } catch (...) {
    fail(Status(StatusCode::io_error, "projection '" + name_ + "': out of memory while parking an event"));
  }
}

void ProjectionRunner::fail(Status st) noexcept {
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    if (failure_.ok()) failure_ = std::move(st);
  }
  // Release: failure_ (written above) is visible to whoever acquires failed_.
  failed_.store(true, std::memory_order_release);
  if (counters::Slot* s = ctx_.slot) counters::CountersFile::set_state(*s, counters::SlotState::failed);
}

void ProjectionRunner::adopt(ProjectionRunner& shadow) noexcept {
  parked_.swap(shadow.parked_);
  {
    std::scoped_lock lock(mu_, shadow.mu_);
    dead_letters_.swap(shadow.dead_letters_);
    live_owner_.swap(shadow.live_owner_);
  }
  live_ = live_owner_.get();
  shadow.live_ = shadow.live_owner_.get();
  if (counters::Slot* s = ctx_.slot) {
    counters::put(s->counters.dead_letters, uint64_t{dead_letters().size()});
    counters::put(s->counters.parked_keys, uint64_t{parked_.size()});
    counters::bump(s->counters.rebuilds_completed);
  }
}

Status ProjectionRunner::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

std::vector<DeadLetter> ProjectionRunner::dead_letters() const {
  std::lock_guard lock(mu_);
  return dead_letters_;
}

std::shared_ptr<const Projection> ProjectionRunner::model() const {
  std::lock_guard lock(mu_);
  return live_owner_;
}

Status ProjectionRunner::wait_for(uint64_t position, std::chrono::nanoseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto sleep = std::chrono::microseconds(20);
  for (uint32_t i = 0;; ++i) {
    if (applied_position() > position) return Status::OK();
    if (failed()) return failure();
    if (i < 64) {
      store_internal::cpu_pause();
    } else if (i < 80) {
      sched_yield();
    } else {
      if (std::chrono::steady_clock::now() >= deadline)
        return Status(StatusCode::timeout, "projection '" + name_ + "' has not applied position " +
                                               std::to_string(position) + " within the timeout (applied below " +
                                               std::to_string(applied_position()) + ")");
      std::this_thread::sleep_for(sleep);
      sleep = std::min(sleep * 2, std::chrono::microseconds(1000));
    }
  }
}

}  // namespace sluice
