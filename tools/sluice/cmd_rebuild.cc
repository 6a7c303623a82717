// sluice rebuild DIR PROJECTION: replays the whole log into a fresh read model of a
// projection the tool knows (the samples'), with a progress bar and ETA, and replaces the
// projection's checkpoint with the result, so the next engine start uses it. Refused while
// an engine (a writer) holds the log: a running engine rebuilds with Engine::rebuild().
// Events are decoded with the schemas the log carries, whatever codec wrote them.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "bank_model.h"
#include "commands.h"
#include "sluice/projections/rebuild.h"

namespace sluice::tools {
namespace {

bool log_in_use(const std::string& dir) {
  const std::string lock = dir + "/LOCK";
  const int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool busy = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
  ::close(fd);
  return busy;
}

}  // namespace

void add_rebuild(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("rebuild", "replay the log into a fresh read model and replace its checkpoint");
  struct Opts {
    std::string dir, projection;
    bool dry_run = false;
    bool quiet = false;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("DIR", o->dir, "log directory")->required();
  std::string known;
  for (auto n : bank::kProjectionNames) known += (known.empty() ? "" : ", ") + std::string(n);
  cmd->add_option("PROJECTION", o->projection, "projection name (known: " + known + ")")->required();
  cmd->add_flag("--dry-run", o->dry_run, "rebuild and print the digest, leave the checkpoint alone");
  cmd->add_flag("--quiet", o->quiet, "no progress bar (there is none unless stderr is a terminal)");
  cmd->add_flag("--json", o->json, "print the result as one JSON object");
  cmd->callback([o, exit_code, known] {
    if (!check_log_dir("rebuild", o->dir, exit_code)) return;
    ProjectionFactory f = bank::factory_for(o->projection);
    if (!f) {
      error_line("rebuild", "unknown projection '" + o->projection + "' (known: " + known + ")");
      *exit_code = kExitUsage;
      return;
    }
    if (!o->dry_run && log_in_use(o->dir)) {
      error_line("rebuild", "log " + o->dir + " is open by a running engine; rebuild it there (Engine::rebuild) or stop it first");
      *exit_code = kExitFailed;
      return;
    }
    // The log's event types: bank events written with any codec decode through them (a log
    // written without schemas uses the raw convention).
    serialization::SchemaRegistry registry;
    Status st = registry.load(o->dir);
    if (st.ok()) st = bank::bind_for_reading(registry);
    if (!st.ok()) {
      error_line("rebuild", describe(st));
      *exit_code = kExitFailed;
      return;
    }
    RebuildOptions ro;
    ro.registry = &registry;
    ro.write_checkpoint = !o->dry_run;
    const bool tty = ::isatty(STDERR_FILENO);
    if (!o->quiet && tty)
      ro.on_progress = [tty](const RebuildProgress& p) {
        const double frac = p.target ? static_cast<double>(p.position) / static_cast<double>(p.target) : 1.0;
        const int bar = static_cast<int>(frac * 30);
        std::fprintf(stderr, "%s[%.*s%*s] %5.1f%%  %llu/%llu events  %.2f M/s  ETA %.1fs%s", tty ? "\r" : "", bar,
                     "##############################", 30 - bar, "", frac * 100,
                     static_cast<unsigned long long>(p.position), static_cast<unsigned long long>(p.target),
                     p.events_per_s / 1e6, p.eta_s, "");
      };
    auto r = rebuild_projection(o->dir, o->projection, f, ProjectionOptions{}, ro);
    if (!o->quiet && tty) std::fprintf(stderr, "\n");
    if (!r.ok()) {
      error_line("rebuild", describe(r.status()));
      *exit_code = kExitFailed;
      return;
    }
    if (o->json) {
      print_json(Json{{"projection", o->projection},
                      {"events", r->events},
                      {"seconds", r->seconds},
                      {"digest", [&] {
                         char b[20];
                         std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(r->digest));
                         return std::string(b);
                       }()},
                      {"dead_letters", r->dead_letters},
                      {"checkpoint_replaced", !o->dry_run}});
      return;
    }
    std::printf("%s: %llu events in %.3fs (%.2f M events/s), digest %016llx, %llu dead letters%s\n",
                o->projection.c_str(), static_cast<unsigned long long>(r->events), r->seconds,
                r->seconds > 0 ? static_cast<double>(r->events) / r->seconds / 1e6 : 0.0,
                static_cast<unsigned long long>(r->digest), static_cast<unsigned long long>(r->dead_letters),
                o->dry_run ? "" : ", checkpoint replaced");
  });
}

}  // namespace sluice::tools
