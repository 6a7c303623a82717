// bank_ledger: several producer threads deposit to and withdraw from accounts through the
// engine's ingress; three projections keep read models current (balances, accounts over a
// threshold, per-day totals); live lag is printed while it runs, the query results at the
// end. `sluice stat DIR` shows the same counters from another process meanwhile.
//
// --codec picks how the events are written (raw structs, FlatBuffers tables or JSON text):
// configuration only — the projections' handlers (bank_model.h) and the producers' code are
// the same for every codec, and `sluice dump DIR` decodes any of them from the schemas the
// log carries.
//
//   bank_ledger [--dir DIR] [--codec raw|flatbuffers|json] [--producers N] [--accounts N]
//               [--events N] [--no-overdraft] [--metrics-port PORT]
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bank_model.h"
#include "sluice/runtime/engine.h"

namespace {

struct Args {
  std::string dir = "/tmp/sluice-bank";
  int producers = 3;
  uint64_t accounts = 1000;
  uint64_t events = 300000;
  bool overdraft = true;  // append one overdraft at the end: shows a parked event
  sluice::serialization::CodecId codec = sluice::serialization::CodecId::raw;
  int metrics_port = -1;  // Prometheus endpoint on 127.0.0.1 (-1: off)
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bank_ledger: %s needs a value\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--dir") a.dir = next();
    else if (k == "--producers") a.producers = std::atoi(next());
    else if (k == "--accounts") a.accounts = std::strtoull(next(), nullptr, 10);
    else if (k == "--events") a.events = std::strtoull(next(), nullptr, 10);
    else if (k == "--no-overdraft") a.overdraft = false;
    else if (k == "--metrics-port") a.metrics_port = std::atoi(next());
    else if (k == "--codec") {
      const std::string c = next();
      if (!sluice::serialization::parse_codec(c, &a.codec) || a.codec == sluice::serialization::CodecId::none) {
        std::fprintf(stderr, "bank_ledger: --codec %s: expected raw, flatbuffers or json\n", c.c_str());
        std::exit(2);
      }
    } else {
      std::fprintf(stderr, "usage: bank_ledger [--dir DIR] [--codec raw|flatbuffers|json] [--producers N] [--accounts N] [--events N] [--no-overdraft] [--metrics-port PORT]\n");
      std::exit(2);
    }
  }
  if (a.producers < 1 || a.accounts < static_cast<uint64_t>(a.producers)) {
    std::fprintf(stderr, "bank_ledger: need producers >= 1 and accounts >= producers\n");
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

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  sluice::EngineOptions o;
  o.writer = sluice::WriterMode::ingress;  // producers on several threads
  o.worker_cpus = {-1};                    // one worker runs all three projections
  o.log.durability = sluice::Durability::group;
  o.metrics_port = a.metrics_port;
  auto opened = sluice::Engine::open(a.dir, o);
  if (!opened.ok()) {
    std::fprintf(stderr, "bank_ledger: %s\n", opened.status().to_string().c_str());
    return 1;
  }
  sluice::Engine& e = *opened.value();
  // The codec is configuration: bind the event types to it (their schemas go into the log).
  auto deposited = e.bind<bank::Deposited>(a.codec);
  auto withdrawn = e.bind<bank::Withdrawn>(a.codec);
  if (!deposited.ok() || !withdrawn.ok()) {
    std::fprintf(stderr, "bank_ledger: %s\n",
                 (deposited.ok() ? withdrawn.status() : deposited.status()).to_string().c_str());
    return 1;
  }
  auto balances = e.add_projection<bank::Balances>("balances").value();
  auto rich = e.add_projection<bank::RichAccounts>("rich_accounts").value();
  auto daily = e.add_projection<bank::DailyTotals>("daily_totals").value();
  if (auto st = e.start(); !st.ok()) {
    std::fprintf(stderr, "bank_ledger: %s\n", st.to_string().c_str());
    return 1;
  }
  const uint64_t start_position = e.committed_position();
  std::printf("bank_ledger: %d producers, %" PRIu64 " accounts, %" PRIu64 " events (codec %s) into %s (log starts at %" PRIu64 ")\n",
              a.producers, a.accounts, a.events, std::string(sluice::serialization::to_string(a.codec)).c_str(),
              a.dir.c_str(), start_position);
  if (e.metrics_port() != 0) std::printf("metrics: http://127.0.0.1:%u/metrics\n", e.metrics_port());

  // Each producer owns accounts p, p+N, ...: it knows their balances, so it never overdraws.
  std::atomic<uint64_t> done{0};  // relaxed: a progress count for the lag printer
  std::vector<std::thread> producers;
  const auto t0 = std::chrono::steady_clock::now();
  for (int p = 0; p < a.producers; ++p)
    producers.emplace_back([&, p] {
      std::mt19937_64 rng(static_cast<uint64_t>(p) + 1);
      std::vector<uint64_t> mine;
      for (uint64_t acc = static_cast<uint64_t>(p); acc < a.accounts; acc += static_cast<uint64_t>(a.producers)) mine.push_back(acc);
      std::vector<int64_t> bal(mine.size(), 0);
      std::vector<sluice::StreamId> ids;
      sluice::serialization::EncodeBuffer buf;  // one per thread: encoding stops allocating once it has grown
      for (uint64_t acc : mine) ids.push_back(e.submit_stream(bank::stream_name(acc)).value());
      const uint64_t n = a.events / static_cast<uint64_t>(a.producers);
      for (uint64_t i = 0; i < n; ++i) {
        const size_t k = rng() % mine.size();
        const int64_t amount = static_cast<int64_t>(rng() % 50'000) + 100;
        const int64_t day = static_cast<int64_t>(19'900 + i * 30 / n);  // a month of days
        const bool withdraw = bal[k] >= amount && rng() % 3 == 0;
        auto ev = withdraw ? withdrawn->encode(bank::Withdrawn{mine[k], amount, day}, buf)
                           : deposited->encode(bank::Deposited{mine[k], amount, day}, buf);
        bal[k] += withdraw ? -amount : amount;
        if (!ev.ok()) {
          std::fprintf(stderr, "producer %d: %s\n", p, ev.status().to_string().c_str());
          return;
        }
        const sluice::AppendResult r = e.submit(ids[k], sluice::ExpectedVersion::any(), *ev);
        if (!r.ok()) {
          std::fprintf(stderr, "producer %d: append failed: %s\n", p, std::string(sluice::to_string(r.code)).c_str());
          return;
        }
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  std::thread printer([&] {
    while (done.load(std::memory_order_relaxed) < a.events / static_cast<uint64_t>(a.producers) * static_cast<uint64_t>(a.producers)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      print_lag(e);
    }
  });
  for (auto& t : producers) t.join();
  printer.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t last = e.committed_position() - 1;
  if (a.overdraft) {  // a withdrawal no account can cover: rejected and parked (dead letter)
    auto s = e.submit_stream(bank::stream_name(0)).value();
    sluice::serialization::EncodeBuffer buf;
    auto ev = withdrawn->encode(bank::Withdrawn{0, int64_t{1} << 50, 19'930}, buf);
    if (ev.ok())
      if (auto r = e.submit(s, sluice::ExpectedVersion::any(), *ev); r.ok()) last = r.position;
  }
  // Read-your-writes: wait until every projection has applied the last event.
  for (auto* r : e.runners())
    if (auto st = r->wait_for(last, std::chrono::seconds(30)); !st.ok()) std::fprintf(stderr, "%s\n", st.to_string().c_str());
  print_lag(e);
  std::printf("appended %" PRIu64 " events in %.2fs (%.0f events/s through the ingress)\n",
              e.committed_position() - start_position, secs, static_cast<double>(e.committed_position() - start_position) / secs);

  auto bm = balances.get();
  int64_t total = 0;
  uint64_t n = 0;
  bm->for_each([&](uint64_t, int64_t b) {
    total += b;
    ++n;
  });
  std::printf("balances: %" PRIu64 " accounts, total %.2f; account 0 holds %.2f\n", n, total / 100.0,
              bm->balance(0).value_or(0) / 100.0);
  auto rm = rich.get();
  auto over = rm->accounts();
  std::printf("rich_accounts (over %.2f): %zu accounts", rm->threshold() / 100.0, over.size());
  for (size_t i = 0; i < over.size() && i < 5; ++i) std::printf("%s %" PRIu64 "=%.2f", i ? "," : "", over[i].first, over[i].second / 100.0);
  std::printf("%s\n", over.size() > 5 ? ", ..." : "");
  std::printf("daily_totals:\n");
  auto days = daily.get()->days();
  for (size_t i = 0; i < days.size(); i += std::max<size_t>(1, days.size() / 5))
    std::printf("  day %" PRIu64 ": deposits %.2f, withdrawals %.2f, %" PRId64 " events\n", days[i].first,
                days[i].second.deposits / 100.0, days[i].second.withdrawals / 100.0, days[i].second.events);
  for (auto* r : e.runners()) {
    auto dl = r->dead_letters();
    std::printf("%s: applied up to %" PRIu64 ", digest %016" PRIx64 ", %zu dead letter(s)", r->name().c_str(),
                r->applied_position(), r->model()->digest(), dl.size());
    if (!dl.empty()) std::printf(" (first: position %" PRIu64 ", stream %" PRIu64 ": %s)", dl[0].position, dl[0].stream, dl[0].reason.c_str());
    std::printf("\n");
  }
  if (auto st = e.stop(); !st.ok()) {
    std::fprintf(stderr, "bank_ledger: stop: %s\n", st.to_string().c_str());
    return 1;
  }
  return 0;
}
