// rebuild_command: the offline rebuild behind `sluice rebuild --app` and an application's
// own `rebuild` command.
#include "sluice/projections/catalog.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "sluice/projections/rebuild.h"
#include "sluice/serialization/schema_registry.h"

namespace sluice {
namespace {

bool log_in_use(const std::string& dir) {
  const std::string lock = dir + "/LOCK";
  const int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool busy = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
  ::close(fd);
  return busy;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

int rebuild_command(const ProjectionCatalog& catalog, int argc, char** argv, std::string_view program) {
  const std::string prog(program);
  auto fail = [&](int code, const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), message.c_str());
    return code;
  };
  std::vector<std::string> positional;
  bool dry_run = false, json = false, quiet = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dry-run") dry_run = true;
    else if (a == "--json") json = true;
    else if (a == "--quiet") quiet = true;
    else if (a == "--help" || a == "-h") {
      std::printf("usage: %s DIR PROJECTION [--dry-run] [--json] [--quiet]\nprojections: %s\n", prog.c_str(),
                  joined(catalog.names()).c_str());
      return 0;
    } else if (!a.empty() && a[0] == '-') return fail(2, "unknown option " + a + " (see " + prog + " --help)");
    else positional.push_back(a);
  }
  if (positional.size() != 2)
    return fail(2, "DIR and PROJECTION are required (see " + prog + " --help)");
  const std::string& dir = positional[0];
  const std::string& name = positional[1];
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return fail(2, "no such directory: " + dir);
  const ProjectionFactory* factory = catalog.find(name);
  if (factory == nullptr)
    return fail(2, "unknown projection '" + name + "' (known: " + joined(catalog.names()) + ")");
  if (!dry_run && log_in_use(dir))
    return fail(1, "log " + dir + " is open by a running engine; rebuild it there (Engine::rebuild) or stop it first");
  // The log's event types: events written with any codec decode through them (a log written
  // without schemas uses the raw convention).
  serialization::SchemaRegistry registry;
  Status st = registry.load(dir);
  if (st.code() == StatusCode::not_found) return fail(2, st.message());
  if (st.ok()) st = catalog.register_types(registry);
  if (!st.ok()) return fail(1, st.message());
  RebuildOptions ro;
  ro.registry = &registry;
  ro.write_checkpoint = !dry_run;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  if (!quiet && tty)
    ro.on_progress = [](const RebuildProgress& p) {
      const double frac = p.target ? static_cast<double>(p.position) / static_cast<double>(p.target) : 1.0;
      const int bar = static_cast<int>(frac * 30);
      std::fprintf(stderr, "\r[%.*s%*s] %5.1f%%  %llu/%llu events  %.2f M/s  ETA %.1fs", bar,
                   "##############################", 30 - bar, "", frac * 100,
                   static_cast<unsigned long long>(p.position), static_cast<unsigned long long>(p.target),
                   p.events_per_s / 1e6, p.eta_s);
    };
  auto r = rebuild_projection(dir, name, *factory, ProjectionOptions{}, ro);
  if (!quiet && tty) std::fprintf(stderr, "\n");
  if (!r.ok()) return fail(r.status().code() == StatusCode::not_found ? 2 : 1, r.status().message());
  char digest[20];
  std::snprintf(digest, sizeof digest, "%016llx", static_cast<unsigned long long>(r->digest));
  if (json) {
    nlohmann::ordered_json j;
    j["projection"] = name;
    j["events"] = r->events;
    j["seconds"] = r->seconds;
    j["digest"] = digest;
    j["dead_letters"] = r->dead_letters;
    j["checkpoint_replaced"] = !dry_run;
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s: %llu events in %.3fs (%.2f M events/s), digest %s, %llu dead letters%s\n", name.c_str(),
                static_cast<unsigned long long>(r->events), r->seconds,
                r->seconds > 0 ? static_cast<double>(r->events) / r->seconds / 1e6 : 0.0, digest,
                static_cast<unsigned long long>(r->dead_letters), dry_run ? "" : ", checkpoint replaced");
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace sluice
