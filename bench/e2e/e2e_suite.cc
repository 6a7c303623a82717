// sluice bench e2e: append -> applied latency through three projections, rebuild speed,
// and the cost of the stats file.
//
//   producer (cpu A)                       worker (cpu B, busy-spin)
//   fixed-rate schedule t_i = t0 + i/rate  ring consumer ─► balances ─► daily_totals ─► rich_accounts ─► probe
//   append(event carrying t_i) ──► log ──► bus ring ──────────────────────────────────────────────┘
//   latency = now - t_i, read by the probe at the end of the batch, after all three projections
//   committed it (end_batch: the read models publish the batch), i.e. when a reader sees it.
//
//   baseline, same run: a bare std::atomic cache-line ping-pong between cpu A and cpu B
//   (the physical limit of any hand-off between two cores).
//
// Latency is coordinated-omission corrected: each event has an intended send time on a
// fixed-rate schedule; a producer running late sends at once, and latency counts from the
// intended time, so a stall shows up in every event it delays. (That is the exact form of
// the correction; common/histogram.h's record_corrected() is the estimate for samplers that
// keep no schedule. The samples go into a Histogram with plain record().)
//
// With --data DIR it also writes (docs/performance.md, "Plots"): e2e-append_applied_<rate>
// .hgrm per offered rate, e2e-submit_rtt.hgrm, e2e-throughput_vs_producers.dat (1..3
// submitters) and e2e-lag_during_burst.dat (per-projection lag every 2 ms while a burst is
// appended at full speed between two stretches at a steady rate, and its recovery).
//
// Figures (--json): ratio_e2e_p50_vs_atomic_rtt (p50 at 100 k events/s ÷ atomic round trip
// p50; target <= 2.0), ratio_e2e_p99_vs_atomic_rtt (p99 at 100 k/s ÷ the same; target <= 20),
// the ingress figures (see run_ingress_figures below), ratio_rebuild_vs_scan (rebuild rate of balances ÷ scan+CRC rate of
// the same log; target >= 0.5), ratio_stats_on_vs_off (throughput with the stats file on ÷
// off; target >= 0.95), and the raw figures behind them.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bank_model.h"
#include "common/figures.h"
#include "common/histogram.h"
#include "common/sched_stats.h"
#include "e2e/order_book_workload.h"
#include "internal/segment.h"
#include "sluice/bus/log_reader.h"
#include "sluice/projections/rebuild.h"
#include "sluice/runtime/engine.h"
#include "suites.h"

namespace sluice::bench {
namespace {

using Clock = std::chrono::steady_clock;

int64_t mono_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// The bench's event: a deposit that carries its intended send time.
struct TimedDeposit {
  static constexpr uint32_t kEventType = 101;
  static constexpr std::string_view kEventName = "TimedDeposit";
  uint64_t account;
  int64_t amount;
  int64_t day;
  int64_t intended_ns;
};

// Three projections over TimedDeposit, shaped like the bank's; the last one on the worker
// records latency (the event has then been applied by all three).
class Balances final : public Projection {
 public:
  Balances() {
    on<TimedDeposit>([this](const TimedDeposit& d, const Event&) {
      s_.update(d.account, 0, [&](int64_t& b) { b += d.amount; });
      return ApplyResult::ok;
    });
  }
  void save(SnapshotWriter& w) const override { s_.save(w); }
  Status load(SnapshotReader& r) override { return s_.load(r, "balances"); }
  uint64_t digest() const noexcept override { return s_.digest(); }

 private:
  KeyedStore<int64_t> s_{4096};
};
class Daily final : public Projection {
 public:
  Daily() {
    on<TimedDeposit>([this](const TimedDeposit& d, const Event&) {
      s_.update(static_cast<uint64_t>(d.day), bank::DayTotals{}, [&](bank::DayTotals& t) {
        t.deposits += d.amount;
        ++t.events;
      });
      return ApplyResult::ok;
    });
  }
  void save(SnapshotWriter& w) const override { s_.save(w); }
  Status load(SnapshotReader& r) override { return s_.load(r, "daily"); }
  uint64_t digest() const noexcept override { return s_.digest(); }

 private:
  KeyedStore<bank::DayTotals> s_{256};
};
struct LatencySink {
  std::vector<int64_t>* samples = nullptr;  // preallocated; written by the worker only
  size_t next = 0;
};
class Rich final : public Projection {
 public:
  Rich() {
    on<TimedDeposit>([this](const TimedDeposit& d, const Event&) {
      const int64_t b = bal_.peek(d.account).value_or(0) + d.amount;
      bal_.put(d.account, b);
      if (b > 1'000'000) rich_.put(d.account, b);
      return ApplyResult::ok;
    });
  }
  void save(SnapshotWriter& w) const override {
    bal_.save(w);
    rich_.save(w);
  }
  Status load(SnapshotReader& r) override {
    if (auto st = bal_.load(r, "rich"); !st.ok()) return st;
    return rich_.load(r, "rich");
  }
  uint64_t digest() const noexcept override { return bal_.digest() ^ rich_.digest(); }

 private:
  KeyedStore<int64_t> bal_{4096};
  KeyedStore<int64_t> rich_{1024};
};

// Registered last on the worker: its handler notes each event's intended send time, and its
// on_batch_end() — which the worker calls after the three projections' end_batch (their
// read models have published the batch) — reads the clock once and records the batch's
// latencies. No read model of its own.
class Probe final : public Projection {
 public:
  explicit Probe(LatencySink* sink) : sink_(sink) {
    on<TimedDeposit>([this](const TimedDeposit& d, const Event&) {
      if (pending_n_ < pending_.size()) pending_[pending_n_++] = d.intended_ns;
      else ++dropped_;
      return ApplyResult::ok;
    });
  }
  void on_batch_end() noexcept override {
    const int64_t now = mono_ns();
    for (size_t i = 0; i < pending_n_; ++i)
      if (sink_ && sink_->samples && sink_->next < sink_->samples->size())
        (*sink_->samples)[sink_->next++] = now - pending_[i];
    pending_n_ = 0;
  }
  void save(SnapshotWriter&) const override {}
  Status load(SnapshotReader&) override { return Status::OK(); }
  uint64_t digest() const noexcept override { return dropped_; }

 private:
  LatencySink* sink_;
  std::array<int64_t, 1024> pending_{};  // >= EngineOptions::max_batch
  size_t pending_n_ = 0;
  uint64_t dropped_ = 0;
};

std::string fresh(const ScratchDir& scratch, const std::string& name) {
  std::string p = scratch.path() + "/" + name;
  std::string cmd = "rm -rf '" + p + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "cannot clear %s\n", p.c_str());
  return p;
}

[[noreturn]] void die(const std::string& what, const Status& st) {
  std::fprintf(stderr, "sluice bench e2e: %s: %s\n", what.c_str(), st.to_string().c_str());
  std::exit(1);
}

struct E2E {
  double p50 = 0, p99 = 0, p999 = 0, max = 0;
  double achieved_rate = 0;
  double longest_background_slice_ns = 0;  // the log maintenance thread's, during the run
  double longest_background_slice_cpu_ns = 0;
  std::string slice_kinds;  // the longest CPU time per kind of step, as text
  // What the scheduler did during the timed window (common/sched_stats.h): time the producer
  // and the worker waited runnable for their CPU, their preemptions, and the CPU time of the
  // engine's own background threads (log maintenance, checkpoints, monitor).
  double producer_wait_ns = 0, worker_wait_ns = 0;
  double producer_preemptions = 0, worker_preemptions = 0;
  double background_cpu_ns = 0;
  Histogram latency;  // every event's append -> applied latency (ns), for the .hgrm
};

struct EngineSetup {
  std::unique_ptr<Engine> engine;
  LatencySink sink;
};

std::unique_ptr<Engine> open_engine(const std::string& dir, int worker_cpu, bool stats, LatencySink* sink,
                                    Durability durability = Durability::none) {
  EngineOptions o;
  o.log.durability = durability;
  o.worker_cpus = {worker_cpu};
  o.idle.kind = IdleKind::busy_spin;
  o.stats_file = stats;
  o.max_batch = 256;
  auto e = Engine::open(dir, o);
  if (!e.ok()) die("open " + dir, e.status());
  ProjectionOptions po;
  po.checkpoint_interval = std::chrono::milliseconds(1000);
  po.checkpoint_every = 0;
  if (!e.value()->add_projection<Balances>("balances", po).ok() || !e.value()->add_projection<Daily>("daily_totals", po).ok() ||
      !e.value()->add_projection<Rich>("rich_accounts", po).ok() ||
      (sink != nullptr && !e.value()->add_projection<Probe>("probe", po, [sink] { return std::make_unique<Probe>(sink); }).ok()))
    die("add projections", Status(StatusCode::invalid_argument, "failed"));
  if (Status st = e.value()->start(); !st.ok()) die("start", st);
  return std::move(e.value());
}

// Fixed-rate run: `count` events at `rate` events/s from this thread (pinned to cpu_a).
E2E fixed_rate(const std::string& dir, double rate, uint64_t count, int cpu_a, int cpu_b,
               Durability durability = Durability::none) {
  std::vector<int64_t> samples(count, -1);
  LatencySink sink{&samples, 0};
  auto e = open_engine(dir, cpu_b, true, &sink, durability);
  pin_this_thread(cpu_a);
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 256; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
  // Warm-up: fault in the segment and the stores, off the measured schedule.
  const double interval = 1e9 / rate;
  // The maintenance thread's longest slices from here on: not those of the segments it
  // prepared before start() returned, while nothing else ran.
  e->writer().reset_background_slices();
  const int64_t t0 = mono_ns() + 1'000'000;
  const long producer_tid = current_tid();
  const std::vector<ThreadSched> sched_before = read_process_sched();
  for (uint64_t i = 0; i < count; ++i) {
    const int64_t intended = t0 + static_cast<int64_t>(static_cast<double>(i) * interval);
    while (mono_ns() < intended) {
    }
    TimedDeposit d{i % 256, 1, static_cast<int64_t>(i / 10000), intended};
    if (!e->append(ids[i % 256], ExpectedVersion::any(), encode_raw(d)).ok()) die("append", e->writer().last_error());
  }
  const double secs = static_cast<double>(mono_ns() - t0) / 1e9;
  E2E r;
  for (const ThreadSched& t : sched_delta(sched_before, read_process_sched())) {
    if (t.tid == producer_tid) {
      r.producer_wait_ns += static_cast<double>(t.wait_ns);
      r.producer_preemptions += static_cast<double>(t.preemptions);
    } else if (t.name.rfind("sl:worker", 0) == 0) {
      r.worker_wait_ns += static_cast<double>(t.wait_ns);
      r.worker_preemptions += static_cast<double>(t.preemptions);
    } else if (t.name.rfind("sl:", 0) == 0) {
      r.background_cpu_ns += static_cast<double>(t.run_ns);
      std::printf("  %.0f k events/s, %s: cpu %.2f ms, waited for a CPU %.2f ms, %llu preemptions\n", rate / 1e3,
                  t.name.c_str(), static_cast<double>(t.run_ns) / 1e6, static_cast<double>(t.wait_ns) / 1e6,
                  static_cast<unsigned long long>(t.preemptions));
    }
  }
  const double slice = static_cast<double>(e->writer().longest_background_slice_ns());
  const double slice_cpu = static_cast<double>(e->writer().longest_background_slice_cpu_ns());
  std::string slice_kinds;  // the longest CPU time of a slice of each kind of step that ran
  if (const log_internal::SlicePacer* pacer = e->writer().background_pacer(); pacer != nullptr)
    for (int k = 0; k < static_cast<int>(log_internal::StepKind::count); ++k)
      if (const uint64_t ns = pacer->longest_slice_cpu_ns(static_cast<log_internal::StepKind>(k)); ns != 0)
        slice_kinds += std::string(slice_kinds.empty() ? "" : ", ") +
                       log_internal::step_kind_name(static_cast<log_internal::StepKind>(k)) + " " +
                       std::to_string((ns + 500) / 1000) + " us";
  if (Status st = e->stop(std::chrono::seconds(60)); !st.ok()) die("stop", st);
  std::vector<double> v;
  v.reserve(count);
  for (int64_t s : samples)
    if (s >= 0) {
      v.push_back(static_cast<double>(s));
      r.latency.record(s);
    }
  if (v.size() != count)  // every event must have its sample: a missing one is a bench bug
    die("e2e", Status(StatusCode::invalid_argument, std::to_string(count - v.size()) + " of " +
                                                       std::to_string(count) + " events have no latency sample"));
  r.p50 = percentile(v, 50);
  r.p99 = percentile(v, 99);
  r.p999 = percentile(v, 99.9);
  r.max = *std::max_element(v.begin(), v.end());
  r.achieved_rate = static_cast<double>(count) / secs;
  r.longest_background_slice_ns = slice;
  r.longest_background_slice_cpu_ns = slice_cpu;
  r.slice_kinds = slice_kinds.empty() ? "no background slice ran" : "by kind: " + slice_kinds;
  return r;
}

// As fast as one producer can: events/s until all three projections applied everything.
double throughput(const std::string& dir, bool stats, uint64_t count, int cpu_a, int cpu_b) {
  auto e = open_engine(dir, cpu_b, stats, nullptr);
  pin_this_thread(cpu_a);
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 256; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < count; ++i) {
    TimedDeposit d{i % 256, 1, static_cast<int64_t>(i / 10000), 0};
    if (!e->append(ids[i % 256], ExpectedVersion::any(), encode_raw(d)).ok()) die("append", e->writer().last_error());
  }
  for (ProjectionRunner* r : e->runners())
    if (Status st = r->wait_for(count - 1, std::chrono::seconds(120)); !st.ok()) die("wait", st);
  const double secs = seconds_since(t0);
  if (Status st = e->stop(std::chrono::seconds(60)); !st.ok()) die("stop", st);
  return static_cast<double>(count) / secs;
}

// ---- lag during a burst ----------------------------------------------------------------------
//
// The producer (cpu A) appends at `base_rate` for `steady_s`, then `burst` events as fast as it
// can, then at `base_rate` again until every projection caught up (and `steady_s` more). Every
// 2 ms it samples each projection's lag (events committed but not yet applied); the samples
// come from the producer's own loop, so no sampling thread competes for the 2 CPUs.
struct Burst {
  double peak_lag = 0;       // events, the largest of all projections' samples
  double append_ms = 0;      // how long the burst took to append
  double recovery_ms = -1;   // burst end -> every projection's lag back to 0 (-1: not seen)
};
Burst burst_lag(const std::string& dir, const std::string& data_dir, double base_rate, uint64_t burst, double steady_s,
                int cpu_a, int cpu_b) {
  auto e = open_engine(dir, cpu_b, true, nullptr);
  pin_this_thread(cpu_a);
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 256; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
  std::vector<std::string> cols{"time_ms"};
  for (ProjectionRunner* r : e->runners()) cols.push_back(r->name());
  Series series(data_dir, "e2e-lag_during_burst",
                "e2e: lag of each projection during a burst and its recovery; lag = events committed, not yet applied, "
                "sampled every 2 ms by the producer; " +
                    std::to_string(static_cast<int>(base_rate)) + " events/s, a burst of " + std::to_string(burst) +
                    " events at full speed, then " + std::to_string(static_cast<int>(base_rate)) + " events/s again",
                cols);
  series.note("ylabel: lag (events)");
  Burst out;
  const int64_t t0 = mono_ns();
  int64_t next_sample = t0;
  uint64_t i = 0;
  auto sample = [&](int64_t now) {
    if (now < next_sample) return uint64_t{0};
    next_sample = now + 2'000'000;
    const uint64_t committed = e->writer().committed_position();
    std::vector<double> row{static_cast<double>(now - t0) / 1e6};
    uint64_t worst = 0;
    for (ProjectionRunner* r : e->runners()) {
      const uint64_t applied = r->applied_position();
      const uint64_t lag = committed > applied ? committed - applied : 0;
      worst = std::max(worst, lag);
      row.push_back(static_cast<double>(lag));
    }
    series.row(row);
    out.peak_lag = std::max(out.peak_lag, static_cast<double>(worst));
    return worst + 1;  // > 0: sampled
  };
  auto append_one = [&] {
    TimedDeposit d{i % 256, 1, static_cast<int64_t>(i / 10000), 0};
    if (!e->append(ids[i % 256], ExpectedVersion::any(), encode_raw(d)).ok()) die("append", e->writer().last_error());
    ++i;
  };
  auto steady = [&](double seconds, bool until_caught_up, int64_t burst_end) {
    const int64_t start = mono_ns(), stop = start + static_cast<int64_t>(seconds * 1e9);
    const double interval = 1e9 / base_rate;
    for (uint64_t k = 0;; ++k) {
      const int64_t due = start + static_cast<int64_t>(static_cast<double>(k) * interval);
      int64_t now;
      while ((now = mono_ns()) < due) {
        const uint64_t s = sample(now);
        if (s == 1 && until_caught_up && out.recovery_ms < 0) out.recovery_ms = static_cast<double>(now - burst_end) / 1e6;
      }
      if (now >= stop && (!until_caught_up || out.recovery_ms >= 0 || now - start > 5'000'000'000)) break;
      append_one();
    }
  };
  steady(steady_s, false, 0);
  const int64_t b0 = mono_ns();
  series.note("mark: " + std::to_string(static_cast<double>(b0 - t0) / 1e6) + " burst starts");
  for (uint64_t k = 0; k < burst; ++k) {
    append_one();
    if ((k & 255) == 255) sample(mono_ns());
  }
  const int64_t b1 = mono_ns();
  out.append_ms = static_cast<double>(b1 - b0) / 1e6;
  series.note("mark: " + std::to_string(static_cast<double>(b1 - t0) / 1e6) + " burst appended");
  steady(steady_s, true, b1);
  series.flush();
  for (ProjectionRunner* r : e->runners())
    if (Status st = r->wait_for(i - 1, std::chrono::seconds(120)); !st.ok()) die("wait", st);
  if (Status st = e->stop(std::chrono::seconds(60)); !st.ok()) die("stop", st);
  return out;
}

// ---- the ingress: many threads submitting ----------------------------------------------------
//
//   submitter threads (2 or 3, all on cpu A) ──try_submit──► Ingress ──► writer agent (cpu B) ──► log
//   baseline, same run: one thread appending directly (WriterMode::caller), same events.
// No projections: these figures are about the way in.

std::unique_ptr<Engine> open_plain(const std::string& dir, WriterMode mode, Durability d, int writer_cpu,
                                   IdleKind writer_idle) {
  EngineOptions o;
  o.writer = mode;
  o.log.durability = d;
  o.writer_cpu = writer_cpu;
  o.writer_idle.kind = writer_idle;
  auto e = Engine::open(dir, o);
  if (!e.ok()) die("open " + dir, e.status());
  if (Status st = e.value()->start(); !st.ok()) die("start", st);
  return std::move(e.value());
}

// One thread appending `count` events directly; events/s until all are acknowledged.
// *maintenance_share: the CPU time of the log maintenance thread's paced work (segment
// preparation, unmapping; group flushes are not counted) over the run, per second of it.
double direct_append_rate(const std::string& dir, Durability d, uint64_t count, int cpu, double* maintenance_share) {
  auto e = open_plain(dir, WriterMode::caller, d, -1, IdleKind::backoff_park);
  pin_this_thread(cpu);
  std::vector<StreamId> ids;
  for (uint64_t a = 0; a < 64; ++a) ids.push_back(e->stream(bank::stream_name(a)).value());
  const uint64_t cpu0 = e->writer().background_cpu_ns();
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < count; ++i) {
    TimedDeposit dep{i % 64, 1, 0, 0};
    if (!e->append(ids[i % 64], ExpectedVersion::any(), encode_raw(dep)).ok()) die("append", e->writer().last_error());
  }
  if (Status st = e->writer().wait_acknowledged(count - 1, std::chrono::seconds(60)); !st.ok()) die("acknowledge", st);
  const double secs = seconds_since(t0);
  *maintenance_share = static_cast<double>(e->writer().background_cpu_ns() - cpu0) * 1e-9 / secs;
  if (e->writer().committed_position() != count) die("verify", Status(StatusCode::invalid_argument, "event count"));
  if (Status st = e->stop(std::chrono::seconds(60)); !st.ok()) die("stop", st);
  return static_cast<double>(count) / secs;
}

// `threads` submitters, each keeping up to `window` submissions in flight, `count` events in
// all; events/s until every one is acknowledged. Like the direct appender (whose append()
// returns at commit), a submitter reuses a slot once its ticket is committed, and waits for
// the acknowledgement of its last tickets at the end.
double submit_rate(const std::string& dir, Durability d, int threads, uint64_t count, uint64_t window, int cpu_a,
                   int cpu_b, double* maintenance_share) {
  // The writer thread has cpu B to itself: it busy-spins, as a pinned appender would, instead
  // of parking (a parked writer makes each submission pay a futex wake).
  auto e = open_plain(dir, WriterMode::ingress, d, cpu_b, IdleKind::busy_spin);
  const uint64_t each = count / static_cast<uint64_t>(threads);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<uint64_t> failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      pin_this_thread(cpu_a);
      Submitter sub = e->submitter().value();
      std::vector<StreamId> ids;
      for (uint64_t a = 0; a < 64; ++a) ids.push_back(sub.stream(bank::stream_name(a * 8 + static_cast<uint64_t>(t))).value());
      std::vector<TimedDeposit> deps(window);
      std::vector<EventData> evs(window);
      std::vector<Ticket> tickets(window);
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (uint64_t i = 0; i < each; ++i) {
        const size_t slot = i % window;
        if (i >= window) {  // the slot's previous submission must be committed before reuse
          if (!sub.wait_completed(tickets[slot]).ok()) failures.fetch_add(1);
        }
        deps[slot] = TimedDeposit{i % 64, 1, 0, 0};
        evs[slot] = encode_raw(deps[slot]);
        SubmitCode c;
        while ((c = sub.try_submit(ids[i % 64], ExpectedVersion::any(), {&evs[slot], 1}, &tickets[slot])) ==
               SubmitCode::back_pressured)
          std::this_thread::yield();
        if (c != SubmitCode::ok) failures.fetch_add(1);
      }
      for (uint64_t i = std::max(each, window) - window; i < each; ++i)
        if (!sub.wait(tickets[i % window]).ok()) failures.fetch_add(1);
    });
  while (ready.load() < threads) std::this_thread::yield();
  const uint64_t cpu0 = e->writer().background_cpu_ns();
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  const double secs = seconds_since(t0);
  *maintenance_share = static_cast<double>(e->writer().background_cpu_ns() - cpu0) * 1e-9 / secs;
  const uint64_t total = each * static_cast<uint64_t>(threads);
  if (failures.load() != 0) die("submit", Status(StatusCode::invalid_argument, std::to_string(failures.load()) + " failed submissions"));
  if (e->writer().acknowledged_position() != total) die("verify", Status(StatusCode::invalid_argument, "acknowledged count"));
  if (Status st = e->stop(std::chrono::seconds(60)); !st.ok()) die("stop", st);
  return static_cast<double>(total) / secs;
}

// One waiting submit() at a time from cpu A; the writer thread pinned to cpu B, busy-spin.
std::vector<double> submit_round_trips(const std::string& dir, uint64_t count, int cpu_a, int cpu_b) {
  auto e = open_plain(dir, WriterMode::ingress, Durability::none, cpu_b, IdleKind::busy_spin);
  pin_this_thread(cpu_a);
  Submitter sub = e->submitter().value();
  const StreamId s = sub.stream("rtt").value();
  std::vector<double> rtt;
  rtt.reserve(count);
  TimedDeposit dep{0, 1, 0, 0};
  const EventData ev = encode_raw(dep);
  for (uint64_t i = 0; i < count + 1000; ++i) {
    const int64_t t0 = mono_ns();
    if (!sub.submit(s, ExpectedVersion::exact(i), ev).ok()) die("submit", Status(StatusCode::invalid_argument, "round trip"));
    if (i >= 1000) rtt.push_back(static_cast<double>(mono_ns() - t0));  // after 1000 warm-up
  }
  if (Status st = e->stop(std::chrono::seconds(60)); !st.ok()) die("stop", st);
  return rtt;
}

// producers > 0 (--producers): that many submitters in both comparisons, figures named by it.
void run_ingress_figures(const ScratchDir& scratch, Figures& fig, double rtt, uint64_t n_none, uint64_t n_group,
                         uint64_t n_rtt, int cpu_a, int cpu_b, const std::string& data_dir, int producers = 0) {
  // Direct append against `threads` submitters under `d`: best of 3 each, alternating.
  auto compare = [&](Durability d, int threads, uint64_t count, uint64_t window, const std::string& tag,
                     std::string ratio, const char* target) {
    if (producers > 0) {
      threads = producers;
      ratio = "ratio_submit_" + std::to_string(threads) + "p_" + tag + "_vs_append_" + tag;
      target = "";
    }
    std::printf("  ingress: %d submitters vs one direct appender, durability %s ...\n", threads,
                std::string(to_string(d)).c_str());
    std::fflush(stdout);
    double direct = 0, submitted = 0, direct_share = 0, submit_share = 0;
    for (int rep = 0; rep < 3; ++rep) {
      double share = 0;
      const double a = direct_append_rate(fresh(scratch, "direct-" + tag), d, count, cpu_a, &share);
      if (a > direct) direct = a, direct_share = share;
      const double b = submit_rate(fresh(scratch, "submit-" + tag), d, threads, count, window, cpu_a, cpu_b, &share);
      if (b > submitted) submitted = b, submit_share = share;
    }
    // Where the log's segment preparation and unmapping ran: beside the direct appender it
    // has the other CPU to itself; beside the busy-spinning writer agent it shares cpu A
    // with the submitters.
    fig.add("maintenance_cpu_share_direct_" + tag, direct_share, "CPU s/s",
            "log maintenance thread's paced work (segment preparation, unmapping; not group flushes), CPU time per "
            "second of the best direct run (on the CPU the appender leaves free)");
    fig.add("maintenance_cpu_share_submit_" + std::to_string(threads) + "p_" + tag, submit_share, "CPU s/s",
            "the same, best submit run (on cpu A, beside the submitters)");
    fig.add("append_direct_" + tag + "_events_per_s", direct, "events/s",
            "one thread, WriterMode::caller, until acknowledged, best of 3");
    fig.add("submit_" + std::to_string(threads) + "p_" + tag + "_events_per_s", submitted, "events/s",
            std::to_string(threads) + " submitters on cpu A, writer busy-spin on cpu B, " + std::to_string(window) +
                " in flight each, until acknowledged, best of 3");
    fig.add(ratio, submitted / direct, "ratio", target);
  };
  compare(Durability::none, 2, n_none, 256, "none", "ratio_submit_2p_vs_append", "target >= 0.5");
  compare(Durability::group, 3, n_group, 1024, "group", "ratio_submit_group_3p_vs_append_group", "target >= 0.8");
  std::printf("  ingress: waiting submit() round trip ...\n");
  std::fflush(stdout);
  std::vector<double> rt = submit_round_trips(fresh(scratch, "submit-rtt"), n_rtt, cpu_a, cpu_b);
  fig.add("submit_rtt_p50_ns", percentile(rt, 50), "ns", "one waiting submit(), writer pinned busy-spin");
  fig.add("submit_rtt_p99_ns", percentile(rt, 99), "ns");
  fig.add("ratio_submit_p50_vs_atomic_rtt", percentile(rt, 50) / rtt, "ratio", "target <= 3");
  write_distribution(data_dir, "e2e-submit_rtt", rt);
  if (data_dir.empty()) return;
  // Throughput against the number of producers (submitters, all on cpu A; one run each):
  // drawn beside the one direct appender measured above.
  std::printf("  ingress: 1..3 submitters (throughput vs producers) ...\n");
  std::fflush(stdout);
  Series s(data_dir, "e2e-throughput_vs_producers",
           "e2e: throughput vs producers (ingress submitters); events/s acknowledged, durability none, submitters all on "
           "cpu A, writer busy-spin on cpu B, 256 in flight each, one run each; flat line: one direct appender (best of 3)",
           {"producers", "submit_events_per_s", "direct_append_1_thread"});
  s.note("ylabel: events/s");
  for (int p = 1; p <= 3; ++p) {
    double share = 0;
    s.row({static_cast<double>(p),
           submit_rate(fresh(scratch, "producers-" + std::to_string(p)), Durability::none, p, n_none / 3, 256, cpu_a,
                       cpu_b, &share),
           fig.get("append_direct_none_events_per_s")});
  }
}

}  // namespace

int run_e2e_suite(const SuiteArgs& args) {
  // --workers: the order-book workload shards its projections over that many workers.
  check_workload(args, "e2e",
                 kOptRate | kOptEvents | kOptProducers | kOptDurability | kOptWorkload |
                     (args.workload.kind == "order_book" ? kOptWorkers : 0u));
  // --durability: the fixed-rate runs' log (the ingress part compares none and group itself).
  const Durability durability = args.workload.durability == "sync"    ? Durability::sync
                                : args.workload.durability == "group" ? Durability::group
                                                                      : Durability::none;
  // --workload order_book: the order book sample's events and projections (order_book_workload.cc).
  if (args.workload.kind == "order_book") return run_e2e_order_book(args);
  if (!args.workload.kind.empty() && args.workload.kind != "synthetic") {
    std::fprintf(stderr, "sluice bench e2e: --workload %s: expected synthetic or order_book\n", args.workload.kind.c_str());
    return 2;
  }
  ScratchDir scratch(args.dir, "e2e");
  Figures fig;
  const auto n = [&](double base) { return static_cast<uint64_t>(std::max(2000.0, base * args.scale)); };
  const int cpu_a = args.cpus.size() > 0 ? args.cpus[0] : 0;
  const int cpu_b = args.cpus.size() > 1 ? args.cpus[1] : 1;
  fig.config("machine", machine_description(scratch.path()));
  fig.config("cpus", std::to_string(cpu_a) + "," + std::to_string(cpu_b) + " (producer, worker)");
  fig.config("scale", std::to_string(args.scale));
  fig.config("projections", "3 on one worker (balances, daily_totals, rich_accounts), busy-spin, source: bus ring (one RecordConsumer per worker fanning out to its 3 runners, catch_up)");
  fig.config("durability", std::string(to_string(durability)) + " (fixed-rate runs)");
  std::printf("sluice bench e2e — %s\n", machine_description(scratch.path()).c_str());

  progress("e2e", "atomic round trip");
  const double rtt = atomic_rtt_p50(cpu_a, cpu_b, n(200'000));
  fig.add("atomic_rtt_p50_ns", rtt, "ns", "bare std::atomic ping-pong, same CPUs");

  // SLUICE_E2E_ONLY=ingress: the atomic round trip and the ingress figures only (a quick
  // look while working on the ingress; `bench e2e` without it measures everything).
  if (const char* only = std::getenv("SLUICE_E2E_ONLY"); only != nullptr && std::string_view(only) == "ingress") {
    progress("e2e", "ingress");
    run_ingress_figures(scratch, fig, rtt, n(3'000'000), n(1'000'000), n(100'000), cpu_a, cpu_b, args.data_dir,
                        args.workload.producers);
    fig.print_table();
    if (!args.json_path.empty() && !fig.write_json(args.json_path, "e2e")) return 1;
    return 0;
  }

  struct RateRun {
    std::string tag;
    double rate;
    uint64_t count;
  };
  // --rate: one run at that rate (figures e2e_<rate>_...), --events: its event count.
  std::vector<RateRun> runs = {{"100k", 100'000, events_or(args, n(300'000))}, {"1m", 1'000'000, events_or(args, n(2'000'000))}};
  if (args.workload.rate != 0) {
    char tag[32];
    std::snprintf(tag, sizeof tag, "%gk", args.workload.rate / 1e3);
    runs = {{tag, args.workload.rate, events_or(args, n(300'000))}};
  }
  for (const RateRun& rr : runs) {
    progress("e2e", "append -> applied at " + rr.tag + " events/s");
    E2E r = fixed_rate(fresh(scratch, std::string("rate-") + rr.tag), rr.rate, rr.count, cpu_a, cpu_b, durability);
    const std::string p = std::string("e2e_") + rr.tag + "_";
    write_distribution(args.data_dir, std::string("e2e-append_applied_") + rr.tag + "_per_s_3proj_durability_" + std::string(to_string(durability)),
                       r.latency);
    fig.add(p + "p50_ns", r.p50, "ns", "append -> applied by all 3, CO-corrected");
    fig.add(p + "p99_ns", r.p99, "ns");
    fig.add(p + "p99.9_ns", r.p999, "ns");
    fig.add(p + "max_ns", r.max, "ns");
    fig.add(p + "achieved_events_per_s", r.achieved_rate, "events/s", "offered schedule kept");
    fig.add(p + "longest_background_slice_ns", r.longest_background_slice_ns, "ns",
            "log maintenance thread, during the run: longest slice between two CPU yields (wall time)");
    fig.add(p + "longest_background_slice_cpu_ns", r.longest_background_slice_cpu_ns, "ns",
            "the same slices' longest CPU time: what one slice took from other threads; " + r.slice_kinds);
    fig.add(p + "producer_cpu_wait_ns", r.producer_wait_ns, "ns", "producer runnable but off its CPU, whole run");
    fig.add(p + "producer_preemptions", r.producer_preemptions, "count");
    fig.add(p + "worker_cpu_wait_ns", r.worker_wait_ns, "ns", "worker runnable but off its CPU, whole run");
    fig.add(p + "worker_preemptions", r.worker_preemptions, "count");
    fig.add(p + "engine_background_cpu_ns", r.background_cpu_ns, "ns",
            "CPU time of the engine's own background threads (log maintenance, checkpoints, monitor)");
  }
  fig.add("ratio_e2e_p99_vs_atomic_rtt", fig.get("e2e_" + runs[0].tag + "_p99_ns") / rtt, "ratio",
          "target <= 20 (p99.9 and max beside it)");
  fig.add("ratio_e2e_p50_vs_atomic_rtt", fig.get("e2e_" + runs[0].tag + "_p50_ns") / rtt, "ratio", "target <= 2.0");
  // SLUICE_E2E_ONLY=latency: the atomic round trip and the fixed-rate runs only.
  if (const char* only = std::getenv("SLUICE_E2E_ONLY"); only != nullptr && std::string_view(only) == "latency") {
    fig.print_table();
    if (!args.json_path.empty() && !fig.write_json(args.json_path, "e2e")) return 1;
    return 0;
  }
  progress("e2e", "ingress");
  run_ingress_figures(scratch, fig, rtt, n(3'000'000), n(1'000'000), n(100'000), cpu_a, cpu_b, args.data_dir,
                      args.workload.producers);
  if (!args.data_dir.empty()) {
    progress("e2e", "lag during a burst");
    const Burst b = burst_lag(fresh(scratch, "burst"), args.data_dir, 50'000, n(1'000'000), args.quick ? 0.1 : 0.25,
                              cpu_a, cpu_b);
    fig.add("burst_events", static_cast<double>(n(1'000'000)), "events", "appended at full speed between two 50 k/s stretches");
    fig.add("burst_append_ms", b.append_ms, "ms");
    fig.add("burst_peak_lag_events", b.peak_lag, "events", "largest per-projection lag sampled (every 2 ms)");
    fig.add("burst_recovery_ms", b.recovery_ms, "ms", "burst appended -> every projection's lag 0 (-1: not within 5 s)");
  }

  // Rebuild vs scan on one log of bank-sized events.
  {
    const std::string dir = fresh(scratch, "rebuild");
    progress("e2e", "rebuild vs scan");
    const uint64_t count = n(3'000'000);
    throughput(dir, false, count, cpu_a, cpu_b);  // writes the log (and times nothing)
    pin_this_thread(cpu_a);
    double scan_best = 0, rebuild_best = 0;
    for (int rep = 0; rep < 3; ++rep) {
      auto t0 = Clock::now();
      auto r = LogReader::open(dir);  // scans and CRC-checks every record, builds the index
      if (!r.ok()) die("scan", r.status());
      RecordView v;
      uint64_t seen = 0;
      for (auto c = r.value()->cursor(0); c.next(&v);) seen += v.length() != 0;
      const double scan_rate = static_cast<double>(seen) / seconds_since(t0);
      scan_best = std::max(scan_best, scan_rate);
      auto rb = rebuild_projection(dir, "balances", [] { return std::make_unique<Balances>(); }, {});
      if (!rb.ok()) die("rebuild", rb.status());
      rebuild_best = std::max(rebuild_best, static_cast<double>(rb->events) / rb->seconds);
    }
    fig.add("scan_events_per_s", scan_best, "events/s", "LogReader::open (CRC + index) + cursor over all, best of 3");
    fig.add("rebuild_events_per_s", rebuild_best, "events/s", "rebuild_projection(balances) incl. its scan, best of 3");
    fig.add("ratio_rebuild_vs_scan", rebuild_best / scan_best, "ratio", "target >= 0.5");
  }

  // Stats file on vs off: alternate, best of 5 each, 6 M events per run. In each run the
  // producer (faster than the worker) laps the worker's ring a few times at moments that vary
  // from run to run; with best of 3 runs of 2 M events that variance alone moved this ratio
  // between 0.80 and 1.06 (and 0.93-1.31 with best of 5).
  {
    progress("e2e", "stats on vs off");
    const uint64_t count = n(6'000'000);
    double on = 0, off = 0;
    for (int rep = 0; rep < 5; ++rep) {
      // Which side goes first alternates too, so that neither always follows the other.
      for (const bool stats : {rep % 2 == 0, rep % 2 != 0}) {
        double& best = stats ? on : off;
        best = std::max(best, throughput(fresh(scratch, stats ? "stats-on" : "stats-off"), stats,
                                         count, cpu_a, cpu_b));
      }
    }
    fig.add("throughput_stats_off_events_per_s", off, "events/s", "append until 3 projections applied all, best of 5");
    fig.add("throughput_stats_on_events_per_s", on, "events/s");
    fig.add("ratio_stats_on_vs_off", on / off, "ratio", "target >= 0.95");
  }
  fig.print_table();
  if (!args.json_path.empty() && !fig.write_json(args.json_path, "e2e")) return 1;
  return 0;
}

}  // namespace sluice::bench
