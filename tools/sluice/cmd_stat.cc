// sluice stat DIR: the live counters of the engine running on a log, read from its stats
// file (DIR/sluice.stats) without disturbing it. A table refreshed every second; --json
// prints one snapshot; --count N stops after N tables.
//   --prometheus PORT  serves the counters as Prometheus text at http://127.0.0.1:PORT/metrics
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
  return s.pid > 0 && ::kill(static_cast<pid_t>(s.pid), 0) == 0 && realtime_ns() - s.heartbeat_ns < 3'000'000'000;
}

std::string json_string(std::string_view v);

// ,"relays":[...] (connectors' relays: in the engine's file or their own relay.<name>.stats).
std::string relays_json(const std::vector<counters::RelayStat>& relays) {
  std::string o = ",\"relays\":[";
  for (size_t i = 0; i < relays.size(); ++i) {
    const auto& r = relays[i];
    o += std::string(i ? "," : "") + "{\"name\":" + json_string(r.name) + ",\"state\":\"" +
         std::string(counters::to_string(r.state)) + "\",\"connected\":" + (r.connected ? "true" : "false");
    auto num = [&](const char* k, uint64_t v) { o += std::string(",\"") + k + "\":" + std::to_string(v); };
    num("acknowledged_position", r.acknowledged_position);
    num("head_position", r.head_position);
    num("in_flight", r.in_flight);
    num("lag_events", r.lag_events);
    num("lag_bytes", r.lag_bytes);
    num("lag_ns", static_cast<uint64_t>(r.lag_ns));
    num("published", r.published);
    num("duplicates", r.duplicates);
    num("failures", r.failures);
    num("reconnects", r.reconnects);
    num("checkpoint_position", r.checkpoint_position);
    o += ",\"latency_ns\":{\"count\":" + std::to_string(r.latency.count) + ",\"p50\":" + std::to_string(r.latency.p50) +
         ",\"p99\":" + std::to_string(r.latency.p99) + ",\"max\":" + std::to_string(r.latency.max) + "}}";
  }
  return o + "]";
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

// ,"repositories":[...] (aggregate repositories' command counters).
std::string repositories_json(const std::vector<counters::RepositoryStat>& rs) {
  std::string o = ",\"repositories\":[";
  for (size_t i = 0; i < rs.size(); ++i) {
    const auto& r = rs[i];
    auto num = [&](const char* k, uint64_t v) { o += std::string(",\"") + k + "\":" + std::to_string(v); };
    o += std::string(i ? "," : "") + "{\"name\":" + json_string(r.name);
    num("commands", r.commands);
    num("accepted", r.accepted);
    num("rejected", r.rejected);
    num("duplicates", r.duplicates);
    num("conflicts", r.conflicts);
    num("conflict_failures", r.conflict_failures);
    num("snapshots_written", r.snapshots_written);
    num("snapshots_loaded", r.snapshots_loaded);
    num("snapshots_ignored", r.snapshots_ignored);
    num("keys_out_of_window", r.keys_out_of_window);
    num("key_collisions", r.key_collisions);
    o += "}";
  }
  return o + "]";
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

// ,"sagas":[...] (saga agents: counts and the oldest running saga's age).
std::string sagas_json(const std::vector<counters::SagaStat>& gs) {
  std::string o = ",\"sagas\":[";
  for (size_t i = 0; i < gs.size(); ++i) {
    const auto& g = gs[i];
    auto num = [&](const char* k, uint64_t v) { o += std::string(",\"") + k + "\":" + std::to_string(v); };
    o += std::string(i ? "," : "") + "{\"name\":" + json_string(g.name);
    num("running", g.running);
    num("completed", g.completed);
    num("compensated", g.compensated);
    num("compensation_failed", g.compensation_failed);
    num("parked", g.parked);
    o += ",\"oldest_running_age_ms\":" +
         std::to_string(g.oldest_running_started_ns ? (realtime_ns() - g.oldest_running_started_ns) / 1'000'000 : 0);
    num("steps_succeeded", g.steps_succeeded);
    num("attempts_failed", g.attempts_failed);
    num("timers_fired", g.timers_fired);
    o += "}";
  }
  return o + "]";
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

std::string to_json(const counters::EngineStat& s) {
  std::string o = "{\"pid\":" + std::to_string(s.pid) + ",\"running\":" + (engine_alive(s) ? "true" : "false") +
                  ",\"heartbeat_age_ms\":" + std::to_string((realtime_ns() - s.heartbeat_ns) / 1'000'000) +
                  ",\"head_position\":" + std::to_string(s.head_position) + ",\"projections\":[";
  bool first = true;
  for (const auto& p : s.projections) {
    if (!first) o += ",";
    first = false;
    o += "{\"name\":" + json_string(p.name) + ",\"state\":\"" + std::string(counters::to_string(p.state)) + "\"";
    auto num = [&](const char* k, uint64_t v) { o += std::string(",\"") + k + "\":" + std::to_string(v); };
    num("applied_position", p.applied_position);
    num("events_behind", p.events_behind);
    num("bytes_behind", p.bytes_behind);
    num("time_behind_ns", static_cast<uint64_t>(p.time_behind_ns));
    num("events_applied", p.events_applied);
    num("dead_letters", p.dead_letters);
    num("parked_keys", p.parked_keys);
    num("retries", p.retries);
    num("handler_errors", p.handler_errors);
    num("checkpoint_position", p.checkpoint_position);
    num("rebuild_position", p.rebuild_position);
    num("rebuild_target", p.rebuild_target);
    o += std::string(",\"alert\":") + (p.alert_active ? "true" : "false");
    num("alerts_raised", p.alerts_raised);
    o += ",\"latency_ns\":{";
    o += "\"count\":" + std::to_string(p.latency.count) + ",\"p50\":" + std::to_string(p.latency.p50) +
         ",\"p90\":" + std::to_string(p.latency.p90) + ",\"p99\":" + std::to_string(p.latency.p99) +
         ",\"p99.9\":" + std::to_string(p.latency.p999) + ",\"max\":" + std::to_string(p.latency.max) + "}}";
  }
  o += "],\"consumers\":[";
  first = true;
  for (const auto& c : s.consumers) {
    if (!first) o += ",";
    first = false;
    o += "{\"name\":" + json_string(c.name) + ",\"events\":" + std::to_string(c.events) +
         ",\"overruns\":" + std::to_string(c.overruns) + ",\"caught_up\":" + std::to_string(c.caught_up) +
         ",\"rejoins\":" + std::to_string(c.rejoins) + ",\"position\":" + std::to_string(c.position) +
         ",\"cpu\":" + std::to_string(c.cpu) + "}";
  }
  o += "]";
  if (s.ingress.present)
    o += ",\"ingress\":{\"requests\":" + std::to_string(s.ingress.requests) +
         ",\"back_pressured\":" + std::to_string(s.ingress.back_pressured) +
         ",\"queued\":" + std::to_string(s.ingress.queued) + "}";
  return o + relays_json(s.relays) + repositories_json(s.repositories) + sagas_json(s.sagas) + "}";
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

std::string json_string(std::string_view v) {
  std::string o = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') o += std::string("\\") + c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      o += b;
    } else o += c;
  }
  return o + "\"";
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
  std::string out = "{\"projections\":[";
  bool first_p = true;
  for (const std::string& name : checkpointed_projections(dir)) {
    auto st = read_checkpoint_state(dir, name);
    if (!st.ok()) {
      error_line("stat", st.status().to_string());
      rc = kExitFailed;
      continue;
    }
    if (!st.value().has_value()) continue;
    const CheckpointState& c = *st.value();
    if (json) {
      out += std::string(first_p ? "" : ",") + "{\"name\":" + json_string(name) +
             ",\"checkpoint_position\":" + std::to_string(c.position) + ",\"parked_keys\":" +
             std::to_string(c.parked_keys.size()) + ",\"dead_letters\":[";
      first_p = false;
      bool first = true;
      for (const DeadLetter& d : c.dead_letters) {
        out += std::string(first ? "" : ",") + "{\"position\":" + std::to_string(d.position) +
               ",\"key\":" + std::to_string(d.key) + ",\"stream_id\":" + std::to_string(d.stream) +
               ",\"stream\":" + json_string(stream_name(d.stream)) + ",\"type_id\":" + std::to_string(d.type) +
               ",\"type\":" + json_string(registry.type_name(d.type)) + ",\"attempts\":" +
               std::to_string(d.attempts) + ",\"reason\":" + json_string(d.reason) + "}";
        first = false;
      }
      out += "]}";
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
  if (json) std::printf("%s]}\n", out.c_str());
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
      return "# " + f.status().to_string() + "\n# TYPE sluice_engine_up gauge\nsluice_engine_up 0\n";
    auto stats = counters::read_stats(*f.value());
    counters::add_relay_files(dir, &stats);
    return prometheus_text(stats, realtime_ns());
  });
  if (!server.ok()) {
    error_line("stat", server.status().to_string());
    return kExitFailed;
  }
  std::printf("serving %s at http://127.0.0.1:%u/metrics (Ctrl-C stops)\n", path.c_str(), server.value()->port());
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
    int count = 0;
    int interval_ms = 1000;
    int prometheus = -1;
    bool dead_letters = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("DIR", o->dir, "log directory (reads DIR/sluice.stats)")->required();
  cmd->add_flag("--json", o->json, "print one snapshot as JSON and exit");
  cmd->add_option("--count", o->count, "stop after this many tables (default: until interrupted)");
  cmd->add_option("--interval-ms", o->interval_ms, "refresh interval (default 1000)");
  cmd->add_option("--prometheus", o->prometheus,
                  "serve the counters as Prometheus text at http://127.0.0.1:PORT/metrics until interrupted "
                  "(loopback only; 0: a free port)")
      ->check(CLI::Range(0, 65535));
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
        error_line("stat", f.status().to_string());
        *exit_code = kExitFailed;
        return;
      }
      if (o->json) std::printf("{\"running\":false%s}\n", relays_json(relays_only.relays).c_str());
      else print_relays(relays_only.relays);
      return;
    }
    if (o->json) {
      std::printf("%s\n", to_json(with_relays(counters::read_stats(*f.value()))).c_str());
      return;
    }
    for (int i = 0; o->count <= 0 || i < o->count; ++i) {
      if (i > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(o->interval_ms));
        std::printf("\n");
        // Reopen: a restarted engine replaces the file (a new inode).
        auto again = counters::CountersFile::open_read(o->dir + "/" + counters::kFileName);
        if (again.ok()) f = std::move(again);
      }
      print_table(with_relays(counters::read_stats(*f.value())), o->dir);
    }
  });
}

}  // namespace sluice::tools
