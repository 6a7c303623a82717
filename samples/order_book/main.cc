// order_book: a trading workload. One thread (the matching engine's sequencer) appends the
// generator's new / cancel / fill events, one stream per instrument, with skewed popularity
// (order_flow.h); two projections keep the price levels and the top of book of every
// instrument, sharded by instrument over --workers workers (shard i of n on worker i). It
// prints the lag while it runs, then the top of book of the most popular instruments, and
// checks every level and every top of book against the book the open orders make.
//
// --codec picks how the events are written (raw structs or JSON text): configuration only,
// the handlers are the same and `sluice dump DIR` decodes either.
//
//   order_book [--dir DIR] [--codec raw|json] [--instruments N] [--events N] [--workers N]
//              [--seed S] [--metrics-port PORT]
//   order_book rebuild DIR PROJECTION [--dry-run] [--json]   the offline rebuild (what
//                             `sluice rebuild --app order_book DIR PROJECTION` runs); the
//                             projections are price_levels and top_of_book, or their shards
//                             price_levels.I-of-N, top_of_book.I-of-N (N <= 4)
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "order_book_check.h"
#include "order_book_model.h"
#include "order_flow.h"
#include "sluice/runtime/engine.h"

namespace {

struct Args {
  std::string dir = "/tmp/sluice-order-book";
  sluice::serialization::CodecId codec = sluice::serialization::CodecId::raw;
  uint32_t instruments = 1000;
  uint64_t events = 1'000'000;
  uint32_t workers = 2;
  uint64_t seed = 1;
  int metrics_port = -1;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: order_book [--dir DIR] [--codec raw|json] [--instruments N] [--events N] [--workers N]\n"
               "                  [--seed S] [--metrics-port PORT]\n"
               "       order_book rebuild DIR PROJECTION [--dry-run] [--json]\n");
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) usage();
    const char* v = argv[++i];
    if (k == "--dir") a.dir = v;
    else if (k == "--instruments") a.instruments = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    else if (k == "--events") a.events = std::strtoull(v, nullptr, 10);
    else if (k == "--workers") a.workers = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    else if (k == "--seed") a.seed = std::strtoull(v, nullptr, 10);
    else if (k == "--metrics-port") a.metrics_port = std::atoi(v);
    else if (k == "--codec") {
      if (!sluice::serialization::parse_codec(v, &a.codec) ||
          (a.codec != sluice::serialization::CodecId::raw && a.codec != sluice::serialization::CodecId::json)) {
        std::fprintf(stderr, "order_book: --codec %s: expected raw or json\n", v);
        std::exit(2);
      }
    } else {
      usage();
    }
  }
  if (a.instruments < 1 || a.workers < 1 || a.workers > order_book::kMaxCatalogShards) {
    std::fprintf(stderr, "order_book: need --instruments >= 1 and --workers 1..%u\n", order_book::kMaxCatalogShards);
    std::exit(2);
  }
  return a;
}

void print_lag(sluice::Engine& e) {
  auto st = sluice::counters::read_stats(*e.stats());
  std::printf("  head %-9" PRIu64, st.head_position);
  for (const auto& p : st.projections)
    std::printf(" | %s behind %" PRIu64 " p99 %.1fus", p.name.c_str(), p.events_behind, p.latency.p99 / 1e3);
  std::printf("\n");
}

int fail(const sluice::Status& st) {
  std::fprintf(stderr, "order_book: %s\n", st.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace order_book;
  if (argc > 1 && std::string_view(argv[1]) == "rebuild")
    return sluice::rebuild_command(catalog(), argc - 1, argv + 1, "order_book rebuild");
  const Args a = parse(argc, argv);

  sluice::EngineOptions o;
  o.worker_cpus.assign(a.workers, -1);  // one worker per shard, not pinned
  o.metrics_port = a.metrics_port;
  auto opened = sluice::Engine::open(a.dir, o);
  if (!opened.ok()) return fail(opened.status());
  sluice::Engine& e = *opened.value();
  auto new_order = e.bind<NewOrder>(a.codec);
  auto cancel = e.bind<Cancel>(a.codec);
  auto fill = e.bind<Fill>(a.codec);
  if (!new_order.ok()) return fail(new_order.status());
  if (!cancel.ok()) return fail(cancel.status());
  if (!fill.ok()) return fail(fill.status());
  if (e.committed_position() != 0) {  // the check below compares with this run's orders only
    std::fprintf(stderr, "order_book: %s already holds a log; give a fresh --dir\n", a.dir.c_str());
    return 2;
  }
  // Shard i of n on worker i: every instrument's events go to one worker, in log order.
  std::vector<sluice::ProjectionHandle<PriceLevels>> levels;
  std::vector<sluice::ProjectionHandle<TopOfBook>> tops;
  for (uint32_t i = 0; i < a.workers; ++i) {
    const Shard s{i, a.workers};
    sluice::ProjectionOptions po;
    po.worker = static_cast<int>(i);
    auto l = e.add_projection<PriceLevels>(shard_name(kPriceLevels, s), po, [s] { return std::make_unique<PriceLevels>(s); });
    auto t = e.add_projection<TopOfBook>(shard_name(kTopOfBook, s), po, [s] { return std::make_unique<TopOfBook>(s); });
    if (!l.ok()) return fail(l.status());
    if (!t.ok()) return fail(t.status());
    levels.push_back(l.value());
    tops.push_back(t.value());
  }
  if (auto st = e.start(); !st.ok()) return fail(st);
  if (e.metrics_port() != 0) std::printf("lag page: http://127.0.0.1:%u/\n", e.metrics_port());

  std::vector<sluice::StreamId> ids;
  for (uint32_t i = 0; i < a.instruments; ++i) {
    auto id = e.stream(stream_name(i));
    if (!id.ok()) return fail(id.status());
    ids.push_back(id.value());
  }
  std::printf("order_book: %" PRIu64 " events for %u instruments (seed %" PRIu64 ", codec %s), %u worker(s), into %s\n",
              a.events, a.instruments, a.seed, std::string(sluice::serialization::to_string(a.codec)).c_str(), a.workers,
              a.dir.c_str());

  OrderFlowOptions fo;
  fo.instruments = a.instruments;
  fo.seed = a.seed;
  OrderFlow flow(fo);
  sluice::serialization::EncodeBuffer buf;
  const auto t0 = std::chrono::steady_clock::now();
  auto last_print = t0;
  for (uint64_t n = 0; n < a.events; ++n) {
    const OrderEvent ev = flow.next();
    auto data = ev.kind == OrderEvent::Kind::new_order ? new_order.value().encode(ev.new_order, buf)
                : ev.kind == OrderEvent::Kind::cancel  ? cancel.value().encode(ev.cancel, buf)
                                                       : fill.value().encode(ev.fill, buf);
    if (!data.ok()) return fail(data.status());
    if (auto r = e.append(ids[ev.instrument()], sluice::ExpectedVersion::any(), data.value()); !r.ok())
      return fail(e.writer().last_error());
    if (n % 4096 == 0 && std::chrono::steady_clock::now() - last_print > std::chrono::milliseconds(250)) {
      last_print = std::chrono::steady_clock::now();
      print_lag(e);
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const uint64_t last = e.committed_position() - 1;
  for (auto* r : e.runners())
    if (auto st = r->wait_for(last, std::chrono::seconds(60)); !st.ok()) return fail(st);
  print_lag(e);
  const uint64_t* mix = flow.mix();
  std::printf("%" PRIu64 " events in %.2fs (%.0f/s): %" PRIu64 " new, %" PRIu64 " cancels, %" PRIu64 " fills\n", a.events,
              secs, static_cast<double>(a.events) / secs, mix[0], mix[1], mix[2]);

  // Top of book of the five most popular instruments, from the shard that owns each.
  std::vector<std::shared_ptr<const PriceLevels>> level_models;
  std::vector<std::shared_ptr<const TopOfBook>> top_models;
  for (auto& h : levels) level_models.push_back(h.get());
  for (auto& h : tops) top_models.push_back(h.get());
  for (uint32_t inst = 0; inst < a.instruments && inst < 5; ++inst)
    for (const auto& m : top_models)
      if (m->shard().owns(ids[inst])) {
        const Top t = m->top(inst).value_or(Top{});
        std::printf("  %-14s (shard %u) bid %6" PRId64 " @ %-6" PRId64 " | ask %6" PRId64 " @ %-6" PRId64
                    "  (%" PRId64 " bid levels, %" PRId64 " ask levels)\n",
                    stream_name(inst).c_str(), m->shard().index, t.bid_qty, t.bid_price, t.ask_qty, t.ask_price,
                    t.bid_levels, t.ask_levels);
      }
  std::vector<const PriceLevels*> lp;
  std::vector<const TopOfBook*> tp;
  for (auto& m : level_models) lp.push_back(m.get());
  for (auto& m : top_models) tp.push_back(m.get());
  const std::string diff = check_against(flow, lp, tp);
  std::printf("check against the open orders: %s\n", diff.empty() ? "every level and top of book agree" : diff.c_str());
  for (auto* r : e.runners())
    std::printf("%s: applied up to %" PRIu64 ", digest %016" PRIx64 ", %zu dead letter(s)\n", r->name().c_str(),
                r->applied_position(), r->model()->digest(), r->dead_letters().size());
  if (auto st = e.stop(); !st.ok()) return fail(st);
  return diff.empty() ? 0 : 1;
}
