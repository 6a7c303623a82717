// sluice: the command-line tool. `sluice --help` lists the commands; docs/cli.md is its guide.
// `sluice bench ...` runs the separate sluice-bench executable (the suites and what they
// compare against are no dependency of the other commands).
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "commands.h"
#include "sluice/bus/log_format.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif

namespace sluice::tools {
namespace {

// sluice-bench beside this executable (build tree and install alike), else on PATH.
std::string bench_executable() {
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    const auto beside = std::filesystem::path(self).parent_path() / "sluice-bench";
    if (::access(beside.c_str(), X_OK) == 0) return beside.string();
  }
  return "sluice-bench";
}

// `sluice bench ARGS...`: every argument goes to sluice-bench, --help included.
void add_bench_passthrough(CLI::App& app, int* exit_code) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks with same-run baselines (`sluice bench --help`: the suites)");
  bench->prefix_command();
  bench->set_help_flag();
  bench->callback([bench, exit_code] {
    std::vector<std::string> args = {"sluice-bench"};
    for (const std::string& a : bench->remaining()) args.push_back(a);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string exe = bench_executable();
    std::fflush(stdout);
    ::execvp(exe.c_str(), argv.data());
    error_line("bench", "cannot run " + exe + ": " + std::strerror(errno) + " (sluice-bench is installed beside sluice)");
    *exit_code = kExitFailed;
  });
}

}  // namespace
}  // namespace sluice::tools

int main(int argc, char** argv) {
  using namespace sluice::tools;
  CLI::App app{"sluice: inspect, verify, follow, rebuild and benchmark Sluice event logs", "sluice"};
  app.option_defaults()->always_capture_default();  // --help shows every default
  app.set_version_flag("--version",
                       std::string("sluice " SLUICE_VERSION " (log format version ") +
                           std::to_string(sluice::log_format::kFormatVersion) + ")",
                       "print the library version and the log format version, then exit");
  app.require_subcommand(1);
  app.footer("Exit codes: 0 ok; 1 the operation failed on a log (corruption, I/O); 2 usage: bad arguments, "
             "not a log, no such stream or counters file. `sluice COMMAND --help` describes a command.");
  int exit_code = kExitOk;
  add_gen(app, &exit_code);
  add_info(app, &exit_code);
  add_verify(app, &exit_code);
  add_dump(app, &exit_code);
  add_salvage(app, &exit_code);
  add_bench_passthrough(app, &exit_code);
  add_stat(app, &exit_code);
  add_rebuild(app, &exit_code);
  add_relay(app, &exit_code);
  add_ingest(app, &exit_code);
  add_sagas(app, &exit_code);
  return run_cli(app, argc, argv, &exit_code);
}
