// sluice sagas DIR [--json] [--all]: the sagas of a log, folded from their streams (reads
// only: no saga action runs). By default the unfinished and failed ones (running, parked,
// compensation_failed) with their current step, attempts and next deadline.
#include <time.h>

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "sluice/bus/log_reader.h"
#include "sluice/runtime/saga.h"
#include "sluice/serialization/schema_registry.h"

namespace sluice::tools {
namespace {

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// "in 1.5 s" / "overdue 20 ms" / "-".
std::string deadline_text(int64_t due, int64_t now) {
  if (due == 0) return "-";
  const int64_t d = due - now;
  const double ms = static_cast<double>(d < 0 ? -d : d) / 1e6;
  char buf[64];
  if (ms >= 1000)
    std::snprintf(buf, sizeof buf, "%s%.1f s", d < 0 ? "overdue " : "in ", ms / 1000);
  else
    std::snprintf(buf, sizeof buf, "%s%.0f ms", d < 0 ? "overdue " : "in ", ms);
  return buf;
}

int list_sagas(const std::string& dir, bool json, bool all) {
  auto reader = LogReader::open(dir);
  if (!reader.ok()) {
    error_line("sagas", reader.status().to_string());
    return kExitFailed;
  }
  serialization::SchemaRegistry registry;
  if (Status st = registry.load(*reader.value()); !st.ok()) error_line("sagas", "schema: " + st.to_string());
  if (!registry.type_id(serialization::EventTraits<SagaEvent>::name)) {
    if (json)
      std::printf("{\"sagas\":[],\"counts\":{}}\n");
    else
      std::printf("no sagas in %s\n", dir.c_str());
    return kExitOk;
  }
  if (Status st = bind_saga_events(registry, nullptr); !st.ok()) {
    error_line("sagas", st.to_string());
    return kExitFailed;
  }
  auto sagas = load_sagas(*reader.value(), registry);
  if (!sagas.ok()) {
    error_line("sagas", sagas.status().to_string());
    return kExitFailed;
  }
  const int64_t now = now_ns();
  uint64_t counts[5] = {};
  for (const SagaState& s : sagas.value()) ++counts[static_cast<int>(s.status)];
  auto shown = [&](const SagaState& s) { return all || s.status == SagaStatus::running || s.status == SagaStatus::parked ||
                                                s.status == SagaStatus::compensation_failed; };
  if (json) {
    nlohmann::json out;
    out["sagas"] = nlohmann::json::array();
    for (const SagaState& s : sagas.value()) {
      if (!shown(s)) continue;
      nlohmann::json j;
      j["type"] = s.type;
      j["id"] = s.id;
      j["status"] = std::string(to_string(s.status));
      j["direction"] = s.compensating ? "compensating" : "forward";
      j["step"] = s.step;
      j["attempts"] = s.attempt;
      j["completed_steps"] = s.completed_steps;
      j["in_flight"] = s.in_flight;
      j["next_deadline_ns"] = s.next_deadline_ns();
      j["age_ms"] = s.started_ns ? (now - s.started_ns) / 1'000'000 : 0;
      j["events"] = s.version;
      j["reason"] = s.reason;
      out["sagas"].push_back(std::move(j));
    }
    for (int i = 0; i < 5; ++i) out["counts"][std::string(to_string(static_cast<SagaStatus>(i)))] = counts[i];
    std::printf("%s\n", out.dump().c_str());
    return kExitOk;
  }
  std::printf("%-12s %-20s %-20s %-12s %5s %8s %-16s %s\n", "type", "id", "status", "direction", "step", "attempts",
              "next deadline", "reason");
  for (const SagaState& s : sagas.value()) {
    if (!shown(s)) continue;
    std::printf("%-12s %-20s %-20s %-12s %5u %8u %-16s %s\n", s.type.c_str(), s.id.c_str(),
                std::string(to_string(s.status)).c_str(), s.compensating ? "compensating" : "forward", s.step, s.attempt,
                deadline_text(s.next_deadline_ns(), now).c_str(), s.reason.c_str());
  }
  std::printf("running %" PRIu64 ", completed %" PRIu64 ", compensated %" PRIu64 ", compensation_failed %" PRIu64
              ", parked %" PRIu64 "\n",
              counts[0], counts[1], counts[2], counts[3], counts[4]);
  return kExitOk;
}

}  // namespace

void add_sagas(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("sagas", "unfinished and failed sagas of a log: current step, attempts, next deadline");
  struct Opts {
    std::string dir;
    bool json = false;
    bool all = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("DIR", o->dir, "log directory")->required();
  cmd->add_flag("--json", o->json, "print JSON");
  cmd->add_flag("--all", o->all, "list finished sagas too");
  cmd->callback([o, exit_code] {
    if (!check_log_dir("sagas", o->dir, exit_code)) return;
    *exit_code = list_sagas(o->dir, o->json, o->all);
  });
}

}  // namespace sluice::tools
