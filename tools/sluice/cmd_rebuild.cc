// sluice rebuild DIR PROJECTION --app BINARY: replays the whole log into a fresh read model of
// one of an application's projections and replaces its checkpoint. The tool links no
// application's projections: it runs `BINARY rebuild DIR PROJECTION ...`, the command an
// application's binary offers through sluice::rebuild_command and its ProjectionCatalog
// (sluice/projections/catalog.h; the bank ledger sample does). Exit codes are the tool's.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"

namespace sluice::tools {

void add_rebuild(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "rebuild",
      "replay the log into a fresh read model of an application's projection and replace its checkpoint "
      "(runs APP rebuild ...: the application's binary knows its projections)");
  struct Opts {
    std::string dir, projection, app;
    bool dry_run = false, quiet = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("DIR", o->dir, "log directory")->required();
  cmd->add_option("PROJECTION", o->projection, "projection name (APP rebuild --help lists them)")->required();
  cmd->add_option("--app", o->app,
                  "the application's binary, which offers `rebuild` through sluice::rebuild_command "
                  "(e.g. bank_ledger)")
      ->required();
  cmd->add_flag("--dry-run", o->dry_run, "rebuild and print the digest, leave the checkpoint alone");
  cmd->add_flag("--quiet", o->quiet, "no progress bar (there is none unless stderr is a terminal)");
  cmd->add_flag("--json", o->json, "print the result as one JSON object");
  cmd->callback([o, exit_code] {
    if (!check_log_dir("rebuild", o->dir, exit_code)) return;
    std::vector<std::string> args = {o->app, "rebuild", o->dir, o->projection};
    if (o->dry_run) args.push_back("--dry-run");
    if (o->quiet) args.push_back("--quiet");
    if (o->json) args.push_back("--json");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    ::execvp(o->app.c_str(), argv.data());
    error_line("rebuild", "cannot run --app " + o->app + ": " + std::strerror(errno));
    *exit_code = kExitUsage;
  });
}

}  // namespace sluice::tools
