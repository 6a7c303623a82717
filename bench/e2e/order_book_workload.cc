// sluice bench e2e --workload order_book: append -> applied latency of a trading workload.
//
//   producer (cpu A)                              worker w (cpu B; w = 0..W-1, default W = 1)
//   OrderFlow: new / cancel / fill for 1000       ring consumer ─► price_levels.w ─► top_of_book.w ─► probe.w
//   instruments, Zipf popularity, one stream                          (shard w of W: the instruments
//   per instrument; fixed-rate schedule                                whose stream mix_key % W == w)
//   t_i = t0 + i/rate; append ──► log ──► bus ring ──────────────────────────────────────────────┘
//   latency = now - t_i, read by the probe of the worker that owns the event's instrument, at
//   the end of its batch, after both projections committed it (a reader sees it).
//
//   baseline, same run: a bare std::atomic cache-line ping-pong between cpu A and cpu B.
//
// The same method as the synthetic workload (e2e_suite.cc): coordinated-omission corrected
// (latency counts from the intended send time; a late producer sends at once), the same
// offered rates, the same baseline. The generator makes the next event while the producer
// waits for that event's send time, so it costs the measured path nothing while the producer
// keeps up. After each run the read models are checked against the book the generator's open
// orders make (order_book_check.h): a wrong book yields no figure.
//
// Figures, all prefixed ob_: ob_atomic_rtt_p50_ns; ob_100k_* and ob_1m_* (p50, p99, p99.9,
// max, achieved rate, CPU waits); ob_ratio_e2e_p50_vs_atomic_rtt and
// ob_ratio_e2e_p99_vs_atomic_rtt (the synthetic workload's targets, <= 2.0 and <= 20, for
// comparison); ob_throughput_events_per_s (one producer as fast as it can, until every
// projection applied everything); ob_rebuild_events_per_s, ob_scan_events_per_s and
// ob_ratio_rebuild_vs_scan (top_of_book rebuilt from that log vs scanning it).
//
// Options: --workers W shards the projections over W workers (pinned to --cpus after the
// producer's, busy-spin when every thread has a CPU of its own, else backoff-park); --rate R
// replaces the two offered rates by R; --events N sets the events of each fixed-rate run.
#include "e2e/order_book_workload.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/sched_stats.h"
#include "order_book_check.h"
#include "order_book_model.h"
#include "order_flow.h"
#include "sluice/bus/log_reader.h"
#include "sluice/projections/rebuild.h"
#include "sluice/runtime/engine.h"

namespace sluice::bench {
namespace {

using order_book::OrderEvent;
using order_book::OrderFlow;
using order_book::Shard;

int64_t mono_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Intended send times by log position, written by the producer before each append (the
// append's commit and the ring's release publish it to the worker), and the latency samples
// the probes write (each position by the one probe whose shard owns it).
struct Timing {
  std::vector<int64_t> intended;
  std::vector<int64_t> samples;
};

// Registered last on its worker: notes the positions of its shard's events and, at the end
// of the batch (after the worker's two projections committed it), records now - intended.
class Probe final : public Projection {
 public:
  Probe(Shard shard, Timing* timing) : shard_(shard), timing_(timing) {}
  ApplyResult apply(const Event& e) override {
    if (!shard_.owns(e.stream_id())) return ApplyResult::skip;
    if (n_ < pending_.size()) pending_[n_++] = e.position();
    return ApplyResult::ok;
  }
  void on_batch_end() noexcept override {
    const int64_t now = mono_ns();
    for (size_t i = 0; i < n_; ++i)
      if (pending_[i] < timing_->samples.size()) timing_->samples[pending_[i]] = now - timing_->intended[pending_[i]];
    n_ = 0;
  }
  void save(SnapshotWriter&) const override {}
  Status load(SnapshotReader&) override { return Status::OK(); }
  uint64_t digest() const noexcept override { return 0; }

 private:
  Shard shard_;
  Timing* timing_;
  std::array<uint64_t, 1024> pending_{};  // >= EngineOptions::max_batch
  size_t n_ = 0;
};

[[noreturn]] void die(const std::string& what, const Status& st) {
  bench_fail("e2e --workload order_book: %s: %s", what.c_str(), st.to_string().c_str());
}

struct Setup {
  int cpu_a = 0;
  std::vector<int> worker_cpus;
  IdleKind idle = IdleKind::busy_spin;
  order_book::OrderFlowOptions flow;
};

struct Book {
  std::unique_ptr<Engine> engine;
  std::vector<ProjectionHandle<order_book::PriceLevels>> levels;
  std::vector<ProjectionHandle<order_book::TopOfBook>> tops;
  std::vector<StreamId> ids;

  void check(const OrderFlow& flow) const {
    std::vector<std::shared_ptr<const order_book::PriceLevels>> lm;
    std::vector<std::shared_ptr<const order_book::TopOfBook>> tm;
    std::vector<const order_book::PriceLevels*> lp;
    std::vector<const order_book::TopOfBook*> tp;
    for (auto& h : levels) lp.push_back(lm.emplace_back(h.get()).get());
    for (auto& h : tops) tp.push_back(tm.emplace_back(h.get()).get());
    if (const std::string diff = order_book::check_against(flow, lp, tp); !diff.empty())
      bench_fail("e2e --workload order_book: the read models differ from the open orders: %s", diff.c_str());
  }
};

Book open_book(const std::string& dir, const Setup& s, Timing* timing) {
  std::filesystem::remove_all(dir);
  EngineOptions o;
  o.worker_cpus = s.worker_cpus;
  o.idle.kind = s.idle;
  o.max_batch = 256;
  auto e = Engine::open(dir, o);
  if (!e.ok()) die("open " + dir, e.status());
  Book b;
  b.engine = std::move(e.value());
  ProjectionOptions po;
  po.checkpoint_interval = std::chrono::milliseconds(1000);
  po.checkpoint_every = 0;
  const auto workers = static_cast<uint32_t>(s.worker_cpus.size());
  for (uint32_t w = 0; w < workers; ++w) {
    const Shard sh{w, workers};
    po.worker = static_cast<int>(w);
    auto l = b.engine->add_projection<order_book::PriceLevels>(order_book::shard_name(order_book::kPriceLevels, sh), po,
                                                               [sh] { return std::make_unique<order_book::PriceLevels>(sh); });
    auto t = b.engine->add_projection<order_book::TopOfBook>(order_book::shard_name(order_book::kTopOfBook, sh), po,
                                                             [sh] { return std::make_unique<order_book::TopOfBook>(sh); });
    if (!l.ok()) die("add projection", l.status());
    if (!t.ok()) die("add projection", t.status());
    b.levels.push_back(l.value());
    b.tops.push_back(t.value());
    if (timing != nullptr) {
      auto p = b.engine->add_projection<Probe>(order_book::shard_name("probe", sh), po,
                                               [sh, timing] { return std::make_unique<Probe>(sh, timing); });
      if (!p.ok()) die("add probe", p.status());
    }
  }
  if (Status st = b.engine->start(); !st.ok()) die("start", st);
  for (uint32_t i = 0; i < s.flow.instruments; ++i) {
    auto id = b.engine->stream(order_book::stream_name(i));
    if (!id.ok()) die("stream", id.status());
    b.ids.push_back(id.value());
  }
  return b;
}

struct RateResult {
  double p50 = 0, p99 = 0, p999 = 0, max = 0, achieved = 0;
  double producer_wait_ns = 0, worker_wait_ns = 0;
};

// `count` events at `rate` events/s from this thread (pinned to cpu A).
RateResult fixed_rate(const std::string& dir, const Setup& s, double rate, uint64_t count) {
  Timing timing;
  timing.intended.assign(count, 0);
  timing.samples.assign(count, -1);
  Book b = open_book(dir, s, &timing);
  if (b.engine->committed_position() != 0) die("open", Status(StatusCode::invalid_argument, dir + " is not empty"));
  pin_this_thread(s.cpu_a);
  OrderFlow flow(s.flow);
  const double interval = 1e9 / rate;
  const long producer_tid = current_tid();
  const std::vector<ThreadSched> before = read_process_sched();
  const int64_t t0 = mono_ns() + 1'000'000;
  for (uint64_t i = 0; i < count; ++i) {
    const OrderEvent ev = flow.next();  // made while the schedule is not yet due
    const int64_t intended = t0 + static_cast<int64_t>(static_cast<double>(i) * interval);
    while (mono_ns() < intended) {
    }
    timing.intended[i] = intended;  // published to the worker by the append's commit
    if (!b.engine->append(b.ids[ev.instrument()], ExpectedVersion::any(), ev.raw()).ok())
      die("append", b.engine->writer().last_error());
  }
  const double secs = static_cast<double>(mono_ns() - t0) / 1e9;
  RateResult r;
  for (const ThreadSched& t : sched_delta(before, read_process_sched())) {
    if (t.tid == producer_tid) r.producer_wait_ns += static_cast<double>(t.wait_ns);
    else if (t.name.rfind("sl:worker", 0) == 0) r.worker_wait_ns += static_cast<double>(t.wait_ns);
  }
  for (ProjectionRunner* runner : b.engine->runners())
    if (Status st = runner->wait_for(count - 1, std::chrono::seconds(120)); !st.ok()) die("wait", st);
  b.check(flow);
  if (Status st = b.engine->stop(std::chrono::seconds(60)); !st.ok()) die("stop", st);
  std::vector<double> v;
  v.reserve(count);
  for (int64_t x : timing.samples)
    if (x >= 0) v.push_back(static_cast<double>(x));
  if (v.size() != count)
    bench_fail("e2e --workload order_book: %zu of %llu events have no latency sample", count - v.size(),
               static_cast<unsigned long long>(count));
  r.p50 = percentile(v, 50);
  r.p99 = percentile(v, 99);
  r.p999 = percentile(v, 99.9);
  r.max = *std::max_element(v.begin(), v.end());
  r.achieved = static_cast<double>(count) / secs;
  return r;
}

// One producer as fast as it can: events/s until every projection applied everything.
double throughput(const std::string& dir, const Setup& s, uint64_t count) {
  Book b = open_book(dir, s, nullptr);
  pin_this_thread(s.cpu_a);
  OrderFlow flow(s.flow);
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < count; ++i) {
    const OrderEvent ev = flow.next();
    if (!b.engine->append(b.ids[ev.instrument()], ExpectedVersion::any(), ev.raw()).ok())
      die("append", b.engine->writer().last_error());
  }
  for (ProjectionRunner* runner : b.engine->runners())
    if (Status st = runner->wait_for(count - 1, std::chrono::seconds(120)); !st.ok()) die("wait", st);
  const double secs = seconds_since(t0);
  b.check(flow);
  if (Status st = b.engine->stop(std::chrono::seconds(60)); !st.ok()) die("stop", st);
  return static_cast<double>(count) / secs;
}

}  // namespace

int run_e2e_order_book(const SuiteArgs& args) {
  ScratchDir scratch(args.dir, "e2e-order-book");
  Figures fig;
  const double scale = args.scale * (args.quick ? 0.1 : 1.0);
  const auto n = [&](double base) { return static_cast<uint64_t>(std::max(2000.0, base * scale)); };
  const Workload& w = args.workload;
  Setup s;
  s.cpu_a = args.cpus.size() > 0 ? args.cpus[0] : 0;
  const int cpu_b = args.cpus.size() > 1 ? args.cpus[1] : 1;
  const int workers = std::max(1, w.workers);
  for (int i = 0; i < workers; ++i)
    s.worker_cpus.push_back(static_cast<size_t>(i) + 1 < args.cpus.size() ? args.cpus[static_cast<size_t>(i) + 1]
                            : i == 0                                      ? cpu_b
                                                                          : -1);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  s.idle = static_cast<unsigned>(workers) + 1 <= cores ? IdleKind::busy_spin : IdleKind::backoff_park;
  if (w.payload_bytes != 0 || w.producers > 1 || !w.durability.empty() || !w.codec.empty())
    std::fprintf(stderr,
                 "sluice bench e2e --workload order_book: --payload-bytes, --producers, --durability and --codec are "
                 "ignored (the events are the sample's, raw, one producer, durability none)\n");

  const std::string machine = machine_description(scratch.path());
  fig.config("machine", machine);
  fig.config("workload", "order_book");
  fig.config("flow", std::to_string(s.flow.instruments) + " instruments, Zipf skew " + std::to_string(s.flow.skew) +
                         ", mix new/cancel/fill " + std::to_string(s.flow.new_pct) + "/" +
                         std::to_string(s.flow.cancel_pct) + "/" + std::to_string(100 - s.flow.new_pct - s.flow.cancel_pct) +
                         " %, seed " + std::to_string(s.flow.seed) + ", raw events, one stream per instrument");
  std::string cpus = std::to_string(s.cpu_a) + " (producer);";
  for (int c : s.worker_cpus) cpus += " " + std::to_string(c);
  fig.config("cpus", cpus + " (workers; -1 = not pinned)");
  fig.config("projections", "price_levels + top_of_book sharded by instrument over " + std::to_string(workers) +
                                " worker(s), idle " + (s.idle == IdleKind::busy_spin ? "busy-spin" : "backoff-park") +
                                ", source: bus ring");
  fig.config("durability", "none");
  fig.config("scale", std::to_string(scale));
  std::printf("sluice bench e2e --workload order_book — %s\n", machine.c_str());

  std::printf("  atomic round trip ...\n");
  std::fflush(stdout);
  const double rtt = atomic_rtt_p50(s.cpu_a, cpu_b, n(200'000));
  fig.add("ob_atomic_rtt_p50_ns", rtt, "ns", "bare std::atomic ping-pong, same CPUs");

  struct RateRun {
    std::string tag;
    double rate;
    uint64_t count;
  };
  std::vector<RateRun> runs = {{"100k", 100'000, n(300'000)}, {"1m", 1'000'000, n(2'000'000)}};
  if (w.rate > 0) runs = {{"rate", w.rate, n(w.rate * 3)}};
  if (w.events > 0)
    for (RateRun& rr : runs) rr.count = w.events;
  for (const RateRun& rr : runs) {
    std::printf("  fixed rate %.0f events/s, %llu events ...\n", rr.rate, static_cast<unsigned long long>(rr.count));
    std::fflush(stdout);
    const RateResult r = fixed_rate(scratch.path() + "/rate-" + rr.tag, s, rr.rate, rr.count);
    const std::string p = "ob_" + rr.tag + "_";
    fig.add(p + "p50_ns", r.p50, "ns", "append -> applied by price_levels and top_of_book, CO-corrected");
    fig.add(p + "p99_ns", r.p99, "ns");
    fig.add(p + "p99.9_ns", r.p999, "ns");
    fig.add(p + "max_ns", r.max, "ns");
    fig.add(p + "achieved_events_per_s", r.achieved, "events/s", "offered " + std::to_string(static_cast<uint64_t>(rr.rate)));
    fig.add(p + "producer_cpu_wait_ns", r.producer_wait_ns, "ns", "producer runnable but off its CPU, whole run");
    fig.add(p + "worker_cpu_wait_ns", r.worker_wait_ns, "ns", "workers runnable but off their CPU, whole run");
  }
  const std::string first = "ob_" + runs[0].tag + "_";
  fig.add("ob_ratio_e2e_p50_vs_atomic_rtt", fig.get(first + "p50_ns") / rtt, "ratio",
          "p50 at " + runs[0].tag + " / atomic round trip (synthetic workload's target <= 2.0)");
  fig.add("ob_ratio_e2e_p99_vs_atomic_rtt", fig.get(first + "p99_ns") / rtt, "ratio",
          "(synthetic workload's target <= 20)");

  // Throughput, then top_of_book rebuilt from that log against a scan of it.
  std::printf("  throughput and rebuild ...\n");
  std::fflush(stdout);
  const std::string dir = scratch.path() + "/throughput";
  fig.add("ob_throughput_events_per_s", throughput(dir, s, n(2'000'000)), "events/s",
          "one producer, until every projection applied all");
  pin_this_thread(s.cpu_a);
  double scan_best = 0, rebuild_best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = LogReader::open(dir);  // scans and CRC-checks every record, builds the index
    if (!r.ok()) die("scan", r.status());
    RecordView v;
    uint64_t seen = 0;
    for (auto c = r.value()->cursor(0); c.next(&v);) seen += v.length() != 0;
    scan_best = std::max(scan_best, static_cast<double>(seen) / seconds_since(t0));
    auto rb = rebuild_projection(dir, order_book::kTopOfBook, *order_book::catalog().find(order_book::kTopOfBook), {});
    if (!rb.ok()) die("rebuild", rb.status());
    rebuild_best = std::max(rebuild_best, static_cast<double>(rb->events) / rb->seconds);
  }
  fig.add("ob_scan_events_per_s", scan_best, "events/s", "LogReader::open (CRC + index) + cursor over all, best of 3");
  fig.add("ob_rebuild_events_per_s", rebuild_best, "events/s", "rebuild_projection(top_of_book) incl. its scan, best of 3");
  fig.add("ob_ratio_rebuild_vs_scan", rebuild_best / scan_best, "ratio", "(synthetic workload's target >= 0.5)");
  fig.print_table();
  if (!args.json_path.empty() && !fig.write_json(args.json_path, "e2e")) return 1;
  return 0;
}

}  // namespace sluice::bench
