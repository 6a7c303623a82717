// sluice stat DIR: the live counters of the engine running on a log, read from its stats
// file (DIR/sluice.stats) without disturbing it. A table refreshed every second; --json
// prints one snapshot; --count N stops after N tables.
#include <signal.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>

#include "commands.h"
#include "sluice/bus/counters_file.h"

namespace sluice::tools {
namespace {

int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

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
  return s.pid > 0 && ::kill(static_cast<pid_t>(s.pid), 0) == 0 && now_ns() - s.heartbeat_ns < 3'000'000'000;
}

std::string to_json(const counters::EngineStat& s) {
  std::string o = "{\"pid\":" + std::to_string(s.pid) + ",\"running\":" + (engine_alive(s) ? "true" : "false") +
                  ",\"heartbeat_age_ms\":" + std::to_string((now_ns() - s.heartbeat_ns) / 1'000'000) +
                  ",\"head_position\":" + std::to_string(s.head_position) + ",\"projections\":[";
  bool first = true;
  for (const auto& p : s.projections) {
    if (!first) o += ",";
    first = false;
    o += "{\"name\":\"" + p.name + "\",\"state\":\"" + std::string(counters::to_string(p.state)) + "\"";
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
  return o + "]}";
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
  std::fflush(stdout);
}

}  // namespace

void add_stat(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("stat", "live per-projection lag, latency and dead letters of a running engine");
  struct Opts {
    std::string dir;
    bool json = false;
    int count = 0;
    int interval_ms = 1000;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("DIR", o->dir, "log directory (reads DIR/sluice.stats)")->required();
  cmd->add_flag("--json", o->json, "print one snapshot as JSON and exit");
  cmd->add_option("--count", o->count, "stop after this many tables (default: until interrupted)");
  cmd->add_option("--interval-ms", o->interval_ms, "refresh interval (default 1000)");
  cmd->callback([o, exit_code] {
    if (!check_log_dir("stat", o->dir, exit_code)) return;
    auto f = counters::CountersFile::open_read(o->dir + "/" + counters::kFileName);
    if (!f.ok()) {
      error_line("stat", f.status().to_string());
      *exit_code = kExitFailed;
      return;
    }
    if (o->json) {
      std::printf("%s\n", to_json(counters::read_stats(*f.value())).c_str());
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
      print_table(counters::read_stats(*f.value()), o->dir);
    }
  });
}

}  // namespace sluice::tools
