// follower: a second process — on this machine or another — that follows a leader's log
// through NATS JetStream. The leader's log is relayed (`sluice relay LEADER --nats URL`);
// the follower ingests the stream into its own log and rebuilds the bank ledger's read
// models from it. Their digests equal the leader's: same events, same per-stream order.
//
//   follower --dir DIR --nats URL [--stream NAME] [--leader LEADER_DIR] [--follow]
//
// Without --follow it stops once it has taken everything the stream held when it started,
// prints the digests of balances, rich_accounts and daily_totals, and — with --leader —
// compares them with the leader log's (exit 1 when they differ). With --follow it keeps
// following, printing progress every second, until interrupted.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bank_model.h"
#include "sluice/connectors/jetstream_ingest.h"
#include "sluice/connectors/message.h"
#include "sluice/projections/rebuild.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

int usage(const char* why) {
  std::fprintf(stderr, "follower: %s\nusage: follower --dir DIR --nats URL [--stream NAME] [--leader DIR] [--follow]\n", why);
  return 2;
}

bool digests(const std::string& log, uint64_t out[3]) {
  for (size_t i = 0; i < 3; ++i) {
    const std::string_view name = bank::kProjectionNames[i];
    auto r = sluice::rebuild_projection(log, name, bank::factory_for(name), sluice::ProjectionOptions{});
    if (!r.ok()) {
      std::fprintf(stderr, "follower: rebuild %.*s of %s: %s\n", static_cast<int>(name.size()), name.data(),
                   log.c_str(), r.status().to_string().c_str());
      return false;
    }
    out[i] = r->digest;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, urls, leader, stream = "SLUICE";
  bool follow = false;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (k == "--dir") dir = value();
    else if (k == "--nats") urls = value();
    else if (k == "--stream") stream = value();
    else if (k == "--leader") leader = value();
    else if (k == "--follow") follow = true;
    else return usage(("unknown argument " + k).c_str());
  }
  if (dir.empty() || urls.empty()) return usage("--dir and --nats are required");
  auto servers = sluice::connectors::parse_nats_urls(urls);
  if (!servers.ok()) return usage(servers.status().message().c_str());
  sluice::connectors::JetStreamIngestOptions o;
  o.servers = *servers;
  o.stream = stream;
  auto in = sluice::connectors::JetStreamIngest::open(dir, o);
  if (!in.ok()) {
    std::fprintf(stderr, "follower: %s\n", in.status().to_string().c_str());
    return 1;
  }
  if (auto st = (*in)->connect(); !st.ok()) {
    std::fprintf(stderr, "follower: %s\n", st.to_string().c_str());
    return 1;
  }
  if (follow) {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    auto last = std::chrono::steady_clock::now();
    while (!g_stop) {
      (*in)->poll(std::chrono::milliseconds(200));
      if (std::chrono::steady_clock::now() - last >= std::chrono::seconds(1)) {
        const auto s = (*in)->status();
        std::printf("follower: sequence %llu/%llu, %llu appended, %llu duplicates, %llu parked%s%s\n",
                    static_cast<unsigned long long>(s.next_sequence - 1),
                    static_cast<unsigned long long>(s.stream_last_sequence),
                    static_cast<unsigned long long>(s.appended), static_cast<unsigned long long>(s.duplicates),
                    static_cast<unsigned long long>(s.parked), s.last_error.empty() ? "" : "; ",
                    s.last_error.c_str());
        std::fflush(stdout);
        last = std::chrono::steady_clock::now();
      }
    }
  } else if (auto st = (*in)->catch_up(std::chrono::minutes(10)); !st.ok()) {
    std::fprintf(stderr, "follower: %s\n", st.to_string().c_str());
    return 1;
  }
  const auto s = (*in)->status();
  if (auto st = (*in)->close(); !st.ok()) {
    std::fprintf(stderr, "follower: close: %s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("follower: %llu events appended, %llu duplicates skipped, %llu parked (source %s)\n",
              static_cast<unsigned long long>(s.appended), static_cast<unsigned long long>(s.duplicates),
              static_cast<unsigned long long>(s.parked), s.source_id.c_str());
  uint64_t mine[3];
  if (!digests(dir, mine)) return 1;
  uint64_t theirs[3];
  const bool compare = !leader.empty();
  if (compare && !digests(leader, theirs)) return 1;
  bool same = true;
  for (size_t i = 0; i < 3; ++i) {
    const std::string_view name = bank::kProjectionNames[i];
    std::printf("  %-14.*s digest %016llx", static_cast<int>(name.size()), name.data(),
                static_cast<unsigned long long>(mine[i]));
    if (compare) {
      std::printf("  leader %016llx  %s", static_cast<unsigned long long>(theirs[i]),
                  mine[i] == theirs[i] ? "equal" : "DIFFERENT");
      same = same && mine[i] == theirs[i];
    }
    std::printf("\n");
  }
  return same ? 0 : 1;
}
