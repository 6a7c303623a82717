// sluice stat DIR: the live counters of the engine running on a log, read from its stats
// file (DIR/sluice.stats) without disturbing it. A table refreshed every second; --json
// prints one snapshot; --count N stops after N tables.
//   --prometheus PORT  serves the counters as Prometheus text at http://127.0.0.1:PORT/metrics
//                      and the live lag page at / (polling /stats.json)
//                      until interrupted (loopback only; 0 picks a free port, printed)
//   --dead-letters     lists each projection's parked events (position, key, stream, type,
//                      attempts, reason) as of its last checkpoint; with --json as JSON
#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "sluice/bus/clock.h"
#include "sluice/stats/counters_file.h"
#include "sluice/bus/log_reader.h"
#include "sluice/projections/checkpoint.h"
#include "sluice/stats/metrics_server.h"
#include "sluice/projections/projection_runner.h"
#include "sluice/serialization/schema_registry.h"

namespace sluice::tools {
namespace {

std::string human_ns(double ns) {
  char b[32];
  if (ns < 1e3) std::snprintf(b, sizeof b, "%.0fns", ns);
  else if (ns < 1e6) std::snprintf(b, sizeof b, "%.1fus", ns / 1e3);
  else if (ns < 1e9) std::snprintf(b, sizeof b, "%.1fms", ns / 1e6);
  else std::snprintf(b, sizeof b, "%.1fs", ns / 1e9);
  return b;
}

std::string human_bytes(uint64_t n) {
  char b[32];
  if (n < 1024) std::snprintf(b, sizeof b, "%" PRIu64 "B", n);
  else if (n < (1u << 20)) std::snprintf(b, sizeof b, "%.1fK", n / 1024.0);
  else if (n < (1u << 30)) std::snprintf(b, sizeof b, "%.1fM", n / 1048576.0);
  else std::snprintf(b, sizeof b, "%.1fG", n / 1073741824.0);
  return b;
}

bool engine_alive(const counters::EngineStat& s) {
  return s.pid > 0 && ::kill(static_cast<pid_t>(s.pid), 0) == 0 && s.up(realtime_ns());
}

Json latency_json(const counters::HistogramSummary& l) {
  return {{"count", l.count}, {"p50", l.p50}, {"p90", l.p90}, {"p99", l.p99}, {"p99.9", l.p999}, {"max", l.max}};
}

// "relays": connectors' relays (in the engine's file or their own relay.<name>.stats).
Json relays_json(const std::vector<counters::RelayStat>& relays) {
  Json a = Json::array();
  for (const auto& r : relays)
    a.push_back({{"name", r.name},
                 {"state", std::string(counters::to_string(r.state))},
                 {"connected", r.connected},
                 {"acknowledged_position", r.acknowledged_position},
                 {"head_position", r.head_position},
                 {"in_flight", r.in_flight},
                 {"lag_events", r.lag_events},
                 {"lag_bytes", r.lag_bytes},
                 {"lag_ns", r.lag_ns},
                 {"published", r.published},
                 {"duplicates", r.duplicates},
                 {"failures", r.failures},
                 {"reconnects", r.reconnects},
                 {"checkpoint_position", r.checkpoint_position},
                 {"latency_ns", latency_json(r.latency)}});
  return a;
}

void print_relays(const std::vector<counters::RelayStat>& relays) {
  if (relays.empty()) return;
  std::printf("%-16s %-11s %12s %10s %9s %9s %9s %9s %9s %s\n", "relay", "state", "acked", "behind", "bytes", "time",
              "in flight", "p50", "p99", "");
  for (const auto& r : relays)
    std::printf("%-16s %-11s %12" PRIu64 " %10" PRIu64 " %9s %9s %9" PRIu64 " %9s %9s %s\n", r.name.c_str(),
                std::string(counters::to_string(r.state)).c_str(), r.acknowledged_position, r.lag_events,
                human_bytes(r.lag_bytes).c_str(), human_ns(static_cast<double>(r.lag_ns)).c_str(), r.in_flight,
                human_ns(static_cast<double>(r.latency.p50)).c_str(), human_ns(static_cast<double>(r.latency.p99)).c_str(),
                r.connected ? "" : "disconnected");
}

// "repositories": aggregate repositories' command counters.
Json repositories_json(const std::vector<counters::RepositoryStat>& rs) {
  Json a = Json::array();
  for (const auto& r : rs)
    a.push_back({{"name", r.name},
                 {"commands", r.commands},
                 {"accepted", r.accepted},
                 {"rejected", r.rejected},
                 {"duplicates", r.duplicates},
                 {"conflicts", r.conflicts},
                 {"conflict_failures", r.conflict_failures},
                 {"snapshots_written", r.snapshots_written},
                 {"snapshots_loaded", r.snapshots_loaded},
                 {"snapshots_ignored", r.snapshots_ignored},
                 {"keys_out_of_window", r.keys_out_of_window},
                 {"key_collisions", r.key_collisions}});
  return a;
}

void print_repositories(const std::vector<counters::RepositoryStat>& rs) {
  if (rs.empty()) return;
  std::printf("%-20s %10s %10s %9s %10s %9s %10s %s\n", "repository", "commands", "rejected", "dupl.", "conflicts",
              "snap w/l", "snap ign.", "");
  for (const auto& r : rs)
    std::printf("%-20s %10" PRIu64 " %10" PRIu64 " %9" PRIu64 " %10" PRIu64 " %4" PRIu64 "/%-4" PRIu64 " %10" PRIu64 " %s\n",
                r.name.c_str(), r.commands, r.rejected, r.duplicates, r.conflicts, r.snapshots_written,
                r.snapshots_loaded, r.snapshots_ignored, r.snapshots_ignored ? "WARNING: snapshots ignored" : "");
}

// "sagas": saga agents' counts and the oldest running saga's age.
Json sagas_json(const std::vector<counters::SagaStat>& gs) {
  Json a = Json::array();
  for (const auto& g : gs)
    a.push_back({{"name", g.name},
                 {"running", g.running},
                 {"completed", g.completed},
                 {"compensated", g.compensated},
                 {"compensation_failed", g.compensation_failed},
                 {"parked", g.parked},
                 {"oldest_running_age_ms",
                  g.oldest_running_started_ns ? (realtime_ns() - g.oldest_running_started_ns) / 1'000'000 : 0},
                 {"steps_succeeded", g.steps_succeeded},
                 {"attempts_failed", g.attempts_failed},
                 {"timers_fired", g.timers_fired}});
  return a;
}

void print_sagas(const std::vector<counters::SagaStat>& gs) {
  if (gs.empty()) return;
  std::printf("%-20s %9s %10s %11s %9s %7s %11s %s\n", "sagas", "running", "completed", "compensated", "comp.fail",
              "parked", "oldest run.", "");
  for (const auto& g : gs)
    std::printf("%-20s %9" PRIu64 " %10" PRIu64 " %11" PRIu64 " %9" PRIu64 " %7" PRIu64 " %11s %s\n", g.name.c_str(),
                g.running, g.completed, g.compensated, g.compensation_failed, g.parked,
                g.oldest_running_started_ns
                    ? human_ns(static_cast<double>(realtime_ns() - g.oldest_running_started_ns)).c_str()
                    : "-",
                g.compensation_failed || g.parked ? "WARNING: see sluice sagas" : "");
}

Json to_json(const counters::EngineStat& s) {
  Json o;
  o["pid"] = s.pid;
  o["running"] = engine_alive(s);
  const double age = s.heartbeat_age_s(realtime_ns());
  o["heartbeat_age_ms"] = s.heartbeat_ns > 0 ? static_cast<int64_t>(age * 1000) : int64_t{-1};  // -1: no beat yet
  o["head_position"] = s.head_position;
  Json ps = Json::array();
  for (const auto& p : s.projections)
    ps.push_back({{"name", p.name},
                  {"state", std::string(counters::to_string(p.state))},
                  {"applied_position", p.applied_position},
                  {"events_behind", p.events_behind},
                  {"bytes_behind", p.bytes_behind},
                  {"time_behind_ns", p.time_behind_ns},
                  {"events_applied", p.events_applied},
                  {"dead_letters", p.dead_letters},
                  {"parked_keys", p.parked_keys},
                  {"retries", p.retries},
                  {"handler_errors", p.handler_errors},
                  {"checkpoint_position", p.checkpoint_position},
                  {"rebuild_position", p.rebuild_position},
                  {"rebuild_target", p.rebuild_target},
                  {"alert", p.alert_active},
                  {"alerts_raised", p.alerts_raised},
                  {"latency_ns", latency_json(p.latency)}});
  o["projections"] = ps;
  Json cs = Json::array();
  for (const auto& c : s.consumers)
    cs.push_back({{"name", c.name},
                  {"events", c.events},
                  {"overruns", c.overruns},
                  {"caught_up", c.caught_up},
                  {"rejoins", c.rejoins},
                  {"position", c.position},
                  {"cpu", c.cpu}});
  o["consumers"] = cs;
  if (s.ingress.present)
    o["ingress"] = {{"requests", s.ingress.requests},
                    {"back_pressured", s.ingress.back_pressured},
                    {"queued", s.ingress.queued}};
  o["relays"] = relays_json(s.relays);
  o["repositories"] = repositories_json(s.repositories);
  o["sagas"] = sagas_json(s.sagas);
  return o;
}

void print_table(const counters::EngineStat& s, const std::string& dir) {
  const bool alive = engine_alive(s);
  std::printf("%s  engine pid %" PRId64 " %s  head %" PRIu64 "\n", dir.c_str(), s.pid,
              alive ? "running" : "NOT RUNNING (stale heartbeat)", s.head_position);
  std::printf("%-16s %-11s %12s %10s %9s %9s %9s %9s %9s %6s %s\n", "projection", "state", "position", "behind",
              "bytes", "time", "p50", "p99", "p99.9", "dead", "");
  for (const auto& p : s.projections) {
    std::string note = p.alert_active ? "ALERT" : "";
    if (p.state == counters::SlotState::rebuilding && p.rebuild_target > 0)
      note += " rebuild " + std::to_string(100 * p.rebuild_position / p.rebuild_target) + "%";
    std::printf("%-16s %-11s %12" PRIu64 " %10" PRIu64 " %9s %9s %9s %9s %9s %6" PRIu64 " %s\n", p.name.c_str(),
                std::string(counters::to_string(p.state)).c_str(), p.applied_position, p.events_behind,
                human_bytes(p.bytes_behind).c_str(), human_ns(static_cast<double>(p.time_behind_ns)).c_str(),
                human_ns(static_cast<double>(p.latency.p50)).c_str(), human_ns(static_cast<double>(p.latency.p99)).c_str(),
                human_ns(static_cast<double>(p.latency.p999)).c_str(), p.dead_letters, note.c_str());
  }
  if (!s.consumers.empty()) {
    std::printf("%-32s %12s %10s %12s %8s %4s\n", "ring consumer", "events", "overruns", "caught up", "rejoins", "cpu");
    for (const auto& c : s.consumers)
      std::printf("%-32s %12" PRIu64 " %10" PRIu64 " %12" PRIu64 " %8" PRIu64 " %4" PRId64 "\n", c.name.c_str(), c.events,
                  c.overruns, c.caught_up, c.rejoins, c.cpu);
  }
  if (s.ingress.present)
    std::printf("ingress: %" PRIu64 " submissions, %" PRIu64 " back-pressured, %" PRIu64 " queued\n", s.ingress.requests,
                s.ingress.back_pressured, s.ingress.queued);
  print_relays(s.relays);
  print_repositories(s.repositories);
  print_sagas(s.sagas);
  std::fflush(stdout);
}

// Projections with a checkpoint in DIR/checkpoints, sorted.
std::vector<std::string> checkpointed_projections(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(checkpoint_dir(dir).c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string f = e->d_name;
      constexpr std::string_view ext = ".ckpt";
      if (f.size() > ext.size() && f.compare(f.size() - ext.size(), ext.size(), ext) == 0)
        names.push_back(f.substr(0, f.size() - ext.size()));
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The dead letters recorded in each projection's checkpoint, with stream and type names
// from the log where it has them.
int print_dead_letters(const std::string& dir, bool json) {
  std::unique_ptr<LogReader> reader;
  if (auto r = LogReader::open(dir); r.ok()) reader = std::move(r.value());
  serialization::SchemaRegistry registry;
  if (reader) registry.load(*reader).ignore();  // names only: a bad schema entry just goes unnamed
  auto stream_name = [&](uint64_t id) { return reader ? std::string(reader->stream_name(id)) : std::string(); };
  int rc = kExitOk;
  Json out = Json::array();
  for (const std::string& name : checkpointed_projections(dir)) {
    auto st = read_checkpoint_state(dir, name);
    if (!st.ok()) {
      error_line("stat", describe(st.status()));
      rc = kExitFailed;
      continue;
    }
    if (!st.value().has_value()) continue;
    const CheckpointState& c = *st.value();
    if (json) {
      Json dls = Json::array();
      for (const DeadLetter& d : c.dead_letters)
        dls.push_back({{"position", d.position},
                       {"key", d.key},
                       {"stream_id", d.stream},
                       {"stream", stream_name(d.stream)},
                       {"type_id", d.type},
                       {"type", std::string(registry.type_name(d.type))},
                       {"attempts", d.attempts},
                       {"reason", d.reason}});
      out.push_back({{"name", name},
                     {"checkpoint_position", c.position},
                     {"parked_keys", c.parked_keys.size()},
                     {"dead_letters", dls}});
      continue;
    }
    std::printf("%s: %zu dead letter(s), %zu parked key(s), as of its checkpoint at position %" PRIu64 "\n",
                name.c_str(), c.dead_letters.size(), c.parked_keys.size(), c.position);
    if (c.dead_letters.empty()) continue;
    std::printf("  %12s %20s %-20s %-20s %8s  %s\n", "position", "key", "stream", "type", "attempts", "reason");
    for (const DeadLetter& d : c.dead_letters) {
      std::string s = stream_name(d.stream);
      if (s.empty()) s = "#" + std::to_string(d.stream);
      std::string t(registry.type_name(d.type));
      t = t.empty() ? "#" + std::to_string(d.type) : t + " (#" + std::to_string(d.type) + ")";
      std::printf("  %12" PRIu64 " %20" PRIu64 " %-20s %-20s %8u  %s\n", d.position, d.key, s.c_str(), t.c_str(),
                  d.attempts, d.reason.c_str());
    }
  }
  if (json) print_json(Json{{"projections", out}});
  std::fflush(stdout);
  return rc;
}

// Serves DIR/sluice.stats as Prometheus text until SIGINT or SIGTERM.
int serve_prometheus(const std::string& dir, int port) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the server thread starts: it inherits the mask
  const std::string path = dir + "/" + counters::kFileName;
  auto server = MetricsServer::start(static_cast<uint16_t>(port), [path, dir] {
    // Reopened per scrape: a restarted engine replaces the file.
    auto f = counters::CountersFile::open_read(path);
    if (!f.ok())
      return "# " + describe(f.status()) + "\n# TYPE sluice_engine_up gauge\nsluice_engine_up 0\n";
    auto stats = counters::read_stats(*f.value());
    counters::add_relay_files(dir, &stats);
    return prometheus_text(stats, realtime_ns());
  }, [path] {
    // The live lag page's snapshot (GET / serves the page, which polls /stats.json).
    auto f = counters::CountersFile::open_read(path);
    if (!f.ok()) return Json{{"error", describe(f.status())}}.dump();
    return stats_json(*f.value(), realtime_ns());
  });
  if (!server.ok()) {
    error_line("stat", describe(server.status()));
    return kExitFailed;
  }
  std::printf("serving %s at http://127.0.0.1:%u/metrics, the live lag page at / (Ctrl-C stops)\n", path.c_str(),
              server.value()->port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  server.value()->stop();
  return kExitOk;
}

}  // namespace

void add_stat(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("stat", "live per-projection lag, latency and dead letters of a running engine");
  struct Opts {
    std::string dir;
    bool json = false;
    bool watch = false;
    int count = 0;
    int interval_ms = 1000;
    int prometheus = -1;
    bool dead_letters = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("DIR", o->dir, "log directory (reads DIR/sluice.stats)")->required();
  cmd->add_flag("--json", o->json, "JSON: one snapshot, or with --watch/--count one JSON object per line");
  cmd->add_flag("--watch", o->watch, "refresh every --interval-ms until interrupted (the default without --json)");
  cmd->add_option("--count", o->count, "stop after this many snapshots (0: until interrupted)");
  cmd->add_option("--interval-ms", o->interval_ms, "refresh interval")->check(CLI::Range(1, 3600000));
  cmd->add_option("--prometheus", o->prometheus,
                  "serve the counters as Prometheus text at http://127.0.0.1:PORT/metrics until interrupted "
                  "(loopback only; 0: a free port)")
      ->check(CLI::Range(0, 65535))
      ->default_str("off");
  cmd->add_flag("--dead-letters", o->dead_letters,
                "list each projection's parked events (position, key, stream, type, reason) from its checkpoint");
  cmd->callback([o, exit_code] {
    if (!check_log_dir("stat", o->dir, exit_code)) return;
    if (o->dead_letters) {
      *exit_code = print_dead_letters(o->dir, o->json);
      return;
    }
    if (o->prometheus >= 0) {
      *exit_code = serve_prometheus(o->dir, o->prometheus);
      return;
    }
    auto f = counters::CountersFile::open_read(o->dir + "/" + counters::kFileName);
    auto with_relays = [&](counters::EngineStat e) {
      counters::add_relay_files(o->dir, &e);
      return e;
    };
    if (!f.ok()) {
      // No engine: a relay run on its own (`sluice relay`) may still have its file.
      counters::EngineStat relays_only;
      counters::add_relay_files(o->dir, &relays_only);
      if (relays_only.relays.empty()) {
        error_line("stat", "no counters file " + o->dir + "/" + counters::kFileName +
                               " (no engine has run on this log, or it runs elsewhere): " + describe(f.status()));
        *exit_code = kExitUsage;
        return;
      }
      if (o->json) print_json(Json{{"running", false}, {"relays", relays_json(relays_only.relays)}});
      else print_relays(relays_only.relays);
      return;
    }
    // --json alone: one snapshot. --json with --watch or --count: JSON lines (one object per
    // snapshot, flushed) for a watcher. Without --json: a table every interval.
    const bool once = o->json && !o->watch && o->count <= 0;
    const int count = once ? 1 : o->count;
    ::signal(SIGPIPE, SIG_IGN);  // a watcher that goes away ends the loop (the write fails)
    for (int i = 0; count <= 0 || i < count; ++i) {
      if (i > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(o->interval_ms));
        if (!o->json) std::printf("\n");
        // Reopen: a restarted engine replaces the file (a new inode).
        auto again = counters::CountersFile::open_read(o->dir + "/" + counters::kFileName);
        if (again.ok()) f = std::move(again);
      }
      const auto stats = with_relays(counters::read_stats(*f.value()));
      if (o->json) print_json(to_json(stats));
      else print_table(stats, o->dir);
      if (std::ferror(stdout)) return;
    }
  });
}

}  // namespace sluice::tools
