// bank_ledger: several client threads send deposit, withdrawal and transfer commands for
// shared accounts to two command buses (two "front ends", each with its own cache of hot
// accounts; an account's requests mostly go to one of them, some to the other), so that
// real version conflicts happen and are retried. The BankAccount
// aggregate (bank_account.h) enforces the overdraft rule: a rejected withdrawal writes
// nothing. Every request carries an idempotency key, and some are sent twice (a client
// retrying after a timeout): the second answer is the first one and nothing is written
// again. Accounts are snapshotted every --snapshot-every events. Three projections keep read
// models current (balances, accounts over a threshold, per-day totals) with live lag
// printed; at the end the sample asks for a balance at an earlier time and audits every
// account by replaying it against the invariant "balance >= 0". Durability is group (200 µs):
// a client's answer waits for the flush that makes its events durable, so throughput comes
// from many clients sharing each flush.
//
// --codec picks how the events are written (raw structs, FlatBuffers tables or JSON text):
// configuration only — the aggregate, the projections' handlers and the clients are the
// same for every codec, and `sluice dump DIR` decodes any of them.
//
//   bank_ledger [--dir DIR] [--codec raw|flatbuffers|json] [--producers N] [--accounts N]
//               [--events N] [--snapshot-every N] [--no-overdraft] [--metrics-port PORT]
//   bank_ledger rebuild DIR PROJECTION [--dry-run] [--json]   the offline rebuild (what
//                                                  `sluice rebuild --app bank_ledger` runs)
//   bank_ledger --audit ACCOUNT|all [--dir DIR]   replay one account (or every account in log
//                                                  order), offline, step by step
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bank_account.h"
#include "bank_model.h"
#include "sluice/bus/log_reader.h"
#include "sluice/runtime/engine.h"
#include "sluice/runtime/repository.h"

namespace {

using bank::BankAccount;
using Repo = sluice::Repository<BankAccount>;

struct Args {
  std::string dir = "/tmp/sluice-bank";
  int producers = 16;             // client threads: each waits for its answer (a group flush)
  uint64_t accounts = 1000;
  uint64_t events = 100000;       // client requests in all
  uint64_t snapshot_every = 25;   // events per account between snapshots (0: none)
  bool overdraft = true;          // one withdrawal no account can cover, at the end
  sluice::serialization::CodecId codec = sluice::serialization::CodecId::raw;
  int metrics_port = -1;  // Prometheus endpoint on 127.0.0.1 (-1: off)
  int64_t audit = -1;     // --audit ACCOUNT, or kAuditAll
};
constexpr int64_t kAuditAll = -2;

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: bank_ledger [--dir DIR] [--codec raw|flatbuffers|json] [--producers N] [--accounts N] [--events N]\n"
               "                   [--snapshot-every N] [--no-overdraft] [--metrics-port PORT]\n"
               "       bank_ledger --audit ACCOUNT|all [--dir DIR]\n");
  std::exit(2);
}

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
    else if (k == "--snapshot-every") a.snapshot_every = std::strtoull(next(), nullptr, 10);
    else if (k == "--no-overdraft") a.overdraft = false;
    else if (k == "--metrics-port") a.metrics_port = std::atoi(next());
    else if (k == "--audit") {
      const std::string v = next();
      a.audit = v == "all" ? kAuditAll : std::atoll(v.c_str());
      if (a.audit < 0 && a.audit != kAuditAll) usage();
    }
    else if (k == "--codec") {
      const std::string c = next();
      if (!sluice::serialization::parse_codec(c, &a.codec)) {
        std::fprintf(stderr, "bank_ledger: --codec %s: expected raw, flatbuffers or json\n", c.c_str());
        std::exit(2);
      }
    } else {
      usage();
    }
  }
  if (a.producers < 1 || a.accounts < 2) {
    std::fprintf(stderr, "bank_ledger: need producers >= 1 and accounts >= 2\n");
    std::exit(2);
  }
  return a;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string utc(int64_t ns) {
  const std::time_t s = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06" PRId64 "Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, (ns % 1'000'000'000) / 1000);
  return buf;
}

std::string invariant(const BankAccount& s) {
  if (s.balance < 0) return "balance " + std::to_string(s.balance) + " is negative";
  return {};
}

void print_lag(sluice::Engine& e) {
  auto st = sluice::counters::read_stats(*e.stats());
  std::printf("  head %-9" PRIu64, st.head_position);
  for (const auto& p : st.projections)
    std::printf(" | %s behind %" PRIu64 " p99 %.1fus", p.name.c_str(), p.events_behind, p.latency.p99 / 1e3);
  std::printf("\n");
}

// --audit ACCOUNT: offline (no engine, nothing written): replays the account's stream step by
// step against the invariant and prints its history's outcome.
int audit(const Args& a) {
  auto reader = sluice::LogReader::open(a.dir);
  if (!reader.ok()) {
    std::fprintf(stderr, "bank_ledger: %s\n", reader.status().to_string().c_str());
    return reader.status().code() == sluice::StatusCode::not_found ? 2 : 1;
  }
  sluice::serialization::SchemaRegistry registry;
  if (auto st = registry.load(*reader.value()); !st.ok()) std::fprintf(stderr, "bank_ledger: warning: %s\n", st.to_string().c_str());
  if (auto st = bank::register_for_reading(registry); !st.ok() || registry.size() == 0) {
    std::fprintf(stderr, "bank_ledger: %s: no bank event schemas in this log\n", a.dir.c_str());
    return 2;
  }
  auto type = bank::account_type();
  if (auto st = type.resolve(registry); !st.ok()) {
    std::fprintf(stderr, "bank_ledger: %s\n", st.to_string().c_str());
    return 2;
  }
  if (a.audit == kAuditAll) {  // every account, side by side in log order
    auto v = sluice::find_violation_in_log(
        type, *reader.value(), [](std::string_view n) { return n.rfind("account-", 0) == 0; }, invariant);
    if (!v.ok()) {
      std::fprintf(stderr, "bank_ledger: %s\n", v.status().to_string().c_str());
      return 1;
    }
    if (!v.value()) {
      std::printf("audit all accounts: invariant \"balance >= 0\" holds after every event of the log (%" PRIu64 " positions)\n",
                  reader.value()->end_position());
      return 0;
    }
    const auto& [id, x] = *v.value();
    std::printf("audit all accounts: first failure in %s after version %" PRIu64 " (position %" PRIu64 "): %s\n",
                std::string(reader.value()->stream_name(id)).c_str(), x.version, x.position, x.reason.c_str());
    std::printf("  event  %s %s\n", x.event_type.c_str(), x.event_json.c_str());
    return 3;
  }
  const std::string name = bank::stream_name(static_cast<uint64_t>(a.audit));
  auto id = reader.value()->find_stream(name);
  if (!id) {
    std::fprintf(stderr, "bank_ledger: %s: no stream %s\n", a.dir.c_str(), name.c_str());
    return 2;
  }
  auto full = sluice::load_by_replay(type, *reader.value(), *id);
  auto v = sluice::find_violation(type, *reader.value(), *id, invariant);
  if (!full.ok() || !v.ok()) {
    std::fprintf(stderr, "bank_ledger: %s\n", (full.ok() ? v.status() : full.status()).to_string().c_str());
    return 1;
  }
  const BankAccount& s = full.value().state;
  std::printf("audit %s: %" PRIu64 " events (%" PRIu64 " deposits, %" PRIu64 " withdrawals), balance %.2f\n", name.c_str(),
              full.value().version, s.deposits, s.withdrawals, s.balance / 100.0);
  if (!v.value()) {
    std::printf("audit %s: invariant \"balance >= 0\" holds after every event\n", name.c_str());
    return 0;
  }
  const auto& x = *v.value();
  std::printf("audit %s: invariant fails after version %" PRIu64 " (position %" PRIu64 ", %s): %s\n", name.c_str(), x.version,
              x.position, utc(x.timestamp_ns).c_str(), x.reason.c_str());
  std::printf("  event  %s %s\n  before balance %.2f\n  after  balance %.2f\n", x.event_type.c_str(), x.event_json.c_str(),
              x.before.balance / 100.0, x.after.balance / 100.0);
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  // `bank_ledger rebuild DIR PROJECTION`: the offline rebuild of the sample's projections
  // (what `sluice rebuild --app bank_ledger` runs).
  if (argc > 1 && std::string_view(argv[1]) == "rebuild")
    return sluice::rebuild_command(bank::catalog(), argc - 1, argv + 1, "bank_ledger rebuild");
  const Args a = parse(argc, argv);
  if (a.audit != -1) return audit(a);
  sluice::EngineOptions o;
  o.writer = sluice::WriterMode::ingress;  // clients on several threads
  o.worker_cpus = {-1};                    // one worker runs all three projections
  o.log.durability = sluice::Durability::group;  // an answer waits for its group flush
  o.log.group_interval = std::chrono::microseconds(200);
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
  // Two command buses on one engine (two front ends, each with its own cache of accounts).
  // They share the log's idempotency index (rebuilt from the log when the first opens): a
  // retry is recognised wherever it lands.
  sluice::RepositoryOptions ro;
  sluice::SnapshotPolicy snapshots;
  snapshots.every_events = a.snapshot_every;
  std::unique_ptr<Repo> fronts[2];
  for (auto& f : fronts) {
    auto r = Repo::open(e, bank::account_type(snapshots), ro);
    if (!r.ok()) {
      std::fprintf(stderr, "bank_ledger: %s\n", r.status().to_string().c_str());
      return 1;
    }
    f = std::move(r.value());
  }
  std::vector<sluice::StreamId> ids;
  for (uint64_t acc = 0; acc < a.accounts; ++acc) {
    auto id = fronts[0]->stream(bank::stream_name(acc));
    if (!id.ok()) {
      std::fprintf(stderr, "bank_ledger: %s\n", id.status().to_string().c_str());
      return 1;
    }
    ids.push_back(id.value());
  }
  const uint64_t start_position = e.committed_position();
  std::printf("bank_ledger: %d clients, %" PRIu64 " shared accounts, %" PRIu64 " requests (codec %s, snapshot every %" PRIu64
              " events) into %s (log starts at %" PRIu64 ")\n",
              a.producers, a.accounts, a.events, std::string(sluice::serialization::to_string(a.codec)).c_str(),
              a.snapshot_every, a.dir.c_str(), start_position);
  if (e.metrics_port() != 0)
    std::printf("metrics: http://127.0.0.1:%u/metrics, lag page: http://127.0.0.1:%u/\n", e.metrics_port(),
                e.metrics_port());

  // Every client picks any account: clients share accounts, and their front ends conflict.
  std::atomic<uint64_t> done{0};       // relaxed: a progress count for the lag printer
  std::atomic<uint64_t> retried{0}, retry_mismatch{0}, transfers{0}, failed{0};  // relaxed: totals
  std::vector<std::thread> clients;
  const uint64_t per_client = a.events / static_cast<uint64_t>(a.producers);
  const auto t0 = std::chrono::steady_clock::now();
  for (int p = 0; p < a.producers; ++p)
    clients.emplace_back([&, p] {
      std::mt19937_64 rng(static_cast<uint64_t>(p) + 1);
      uint64_t request = 0;
      auto key = [&] { return sluice::IdempotencyKey::make(now_ms(), (static_cast<uint64_t>(p) << 48) | ++request); };
      auto report = [&](const sluice::CommandResult& r) {
        if (r.ok() || r.code == sluice::CommandCode::rejected) return;
        failed.fetch_add(1, std::memory_order_relaxed);
        std::fprintf(stderr, "client %d: %s: %s\n", p, std::string(sluice::to_string(r.code)).c_str(), r.message.c_str());
      };
      for (uint64_t i = 0; i < per_client; ++i) {
        const uint64_t acc = rng() % a.accounts;
        // A load balancer with affinity: an account's requests go to "its" front end, one in
        // ten to the other (whose cached version is then stale: a conflict, caught up, retried).
        Repo& front = *fronts[(acc + (rng() % 10 == 0 ? 1 : 0)) % 2];
        const int64_t amount = static_cast<int64_t>(rng() % 50'000) + 100;
        const int64_t day = static_cast<int64_t>(19'900 + i * 30 / per_client);  // a month of days
        const uint64_t kind = rng() % 100;
        if (kind < 3) {  // a transfer: withdraw here, deposit there, each idempotent
          const uint64_t to = (acc + 1 + rng() % (a.accounts - 1)) % a.accounts;
          auto w = front.execute(ids[acc], bank::Withdraw{acc, amount, day}, sluice::CommandOptions::keyed(key()));
          report(w);
          if (w.code == sluice::CommandCode::ok) {
            report(front.execute(ids[to], bank::Deposit{to, amount, day}, sluice::CommandOptions::keyed(key())));
            transfers.fetch_add(1, std::memory_order_relaxed);
          }
        } else {
          const sluice::CommandOptions opts = sluice::CommandOptions::keyed(key());
          const bool withdraw = kind < 40;
          auto run = [&](Repo& r) {
            return withdraw ? r.execute(ids[acc], bank::Withdraw{acc, amount, day}, opts)
                            : r.execute(ids[acc], bank::Deposit{acc, amount, day}, opts);
          };
          const sluice::CommandResult r = run(front);
          report(r);
          if (kind % 25 == 0 && r.code == sluice::CommandCode::ok) {  // the client retries (a lost answer)
            const sluice::CommandResult again = run(*fronts[(acc + 1) % 2]);  // lands on the other front
            retried.fetch_add(1, std::memory_order_relaxed);
            if (again.code != sluice::CommandCode::duplicate || again.position != r.position)
              retry_mismatch.fetch_add(1, std::memory_order_relaxed);
          }
        }
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  std::thread printer([&] {
    while (done.load(std::memory_order_relaxed) < per_client * static_cast<uint64_t>(a.producers)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      print_lag(e);
    }
  });
  for (auto& t : clients) t.join();
  printer.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.overdraft) {  // a withdrawal no account can cover: rejected, nothing written
    auto r = fronts[0]->execute(ids[0], bank::Withdraw{0, int64_t{1} << 50, 19'930});
    std::printf("overdraft attempt on account 0: %s (%s)\n", std::string(sluice::to_string(r.code)).c_str(), r.message.c_str());
  }
  const uint64_t last = e.committed_position() - 1;
  // Read-your-writes: wait until every projection has applied the last event.
  for (auto* r : e.runners())
    if (auto st = r->wait_for(last, std::chrono::seconds(30)); !st.ok()) std::fprintf(stderr, "%s\n", st.to_string().c_str());
  print_lag(e);
  const uint64_t appended = e.committed_position() - start_position;
  std::printf("%" PRIu64 " requests in %.2fs (%.0f/s): %" PRIu64 " events appended\n", per_client * a.producers, secs,
              static_cast<double>(per_client * a.producers) / secs, appended);
  sluice::RepositoryStats rs[2] = {fronts[0]->stats(), fronts[1]->stats()};
  auto sum = [&](uint64_t sluice::RepositoryStats::*f) { return rs[0].*f + rs[1].*f; };
  std::printf("commands: %" PRIu64 " accepted, %" PRIu64 " rejected (overdraft), %" PRIu64 " version conflicts retried, "
              "%" PRIu64 " transfers\n",
              sum(&sluice::RepositoryStats::accepted), sum(&sluice::RepositoryStats::rejected),
              sum(&sluice::RepositoryStats::conflicts), transfers.load());
  std::printf("idempotent retries: %" PRIu64 " requests sent twice, %" PRIu64 " answered as duplicates, %" PRIu64
              " mismatches; failures: %" PRIu64 "\n",
              retried.load(), sum(&sluice::RepositoryStats::duplicates), retry_mismatch.load(), failed.load());
  std::printf("snapshots: %" PRIu64 " written, %" PRIu64 " loaded, %" PRIu64 " ignored; cache: %" PRIu64 " hits, %" PRIu64
              " loads\n",
              sum(&sluice::RepositoryStats::snapshots_written), sum(&sluice::RepositoryStats::snapshots_loaded),
              sum(&sluice::RepositoryStats::snapshots_ignored), sum(&sluice::RepositoryStats::cache_hits),
              sum(&sluice::RepositoryStats::cache_misses));

  // Balance at time T: account 0 as of the moment the run was half done (the log's time index).
  if (auto reader = sluice::LogReader::open(a.dir); reader.ok()) {
    sluice::RecordView v;
    if (reader.value()->read(start_position + appended / 2, &v)) {
      const int64_t t = v.timestamp_ns();
      auto then = fronts[0]->load(ids[0], sluice::AsOf::time(t));
      auto now = fronts[0]->load(ids[0]);
      if (then.ok() && now.ok())
        std::printf("account 0 at %s: balance %.2f after %" PRIu64 " events; now %.2f after %" PRIu64 " events\n", utc(t).c_str(),
                    then.value().state.balance / 100.0, then.value().version, now.value().state.balance / 100.0,
                    now.value().version);
    }
  }

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

  // Audit: every account replayed from its events (no side effects) against "balance >= 0",
  // and its final balance checked against the balances read model.
  uint64_t violations = 0, mismatches = 0, replayed = 0;
  for (uint64_t acc = 0; acc < a.accounts; ++acc) {
    auto v = fronts[0]->find_violation(ids[acc], invariant);
    auto l = fronts[0]->load(ids[acc], sluice::AsOf::latest());
    if (!v.ok() || !l.ok()) {
      std::fprintf(stderr, "audit account %" PRIu64 ": %s\n", acc, (v.ok() ? l.status() : v.status()).to_string().c_str());
      ++violations;
      continue;
    }
    if (v.value()) {
      ++violations;
      std::printf("audit account %" PRIu64 ": %s after version %" PRIu64 "\n", acc, v.value()->reason.c_str(), v.value()->version);
    }
    replayed += l.value().version;
    if (l.value().version > 0 && bm->balance(acc).value_or(0) != l.value().state.balance) ++mismatches;
  }
  std::printf("audit: %" PRIu64 " accounts, %" PRIu64 " events replayed: %" PRIu64 " invariant violations, %" PRIu64
              " balances differing from the read model\n",
              a.accounts, replayed, violations, mismatches);
  if (auto st = e.stop(); !st.ok()) {
    std::fprintf(stderr, "bank_ledger: stop: %s\n", st.to_string().c_str());
    return 1;
  }
  return violations == 0 && mismatches == 0 && retry_mismatch.load() == 0 && failed.load() == 0 ? 0 : 1;
}
