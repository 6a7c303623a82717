// Subcommands of the `sluice` tool. Each add_* registers one subcommand on the CLI11 app;
// the callback it sets stores the command's exit code in *exit_code.
//
// Exit codes a script can rely on (docs/cli.md):
//   0  success
//   1  the operation failed on a real log: corruption found, I/O error, a rebuild that failed,
//      a log held by a running engine
//   2  the tool cannot use what it was given: bad arguments, an unknown command, suite or
//      projection, a missing directory, a directory that is not a log, no such stream or
//      event type, no counters file
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "sluice/status.h"

namespace sluice::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

void add_gen(CLI::App& app, int* exit_code);
void add_info(CLI::App& app, int* exit_code);
void add_verify(CLI::App& app, int* exit_code);
void add_dump(CLI::App& app, int* exit_code);
void add_salvage(CLI::App& app, int* exit_code);
void add_stat(CLI::App& app, int* exit_code);
void add_rebuild(CLI::App& app, int* exit_code);
void add_relay(CLI::App& app, int* exit_code);   // cmd_relay.cc (connectors)
void add_ingest(CLI::App& app, int* exit_code);  // cmd_relay.cc (connectors)
void add_sagas(CLI::App& app, int* exit_code);   // cmd_sagas.cc
void add_bench_compare(CLI::App& app, int* exit_code);  // cmd_bench_compare.cc (sluice-bench)

// Parses the command line and runs the chosen command's callback; returns the exit code. A
// parse error is one line on stderr naming an unknown command or suite as such, or the
// problem and the help to read (`see sluice dump --help`): exit 2.
int run_cli(CLI::App& app, int argc, char** argv, const int* exit_code);

// "sluice <cmd>: <message>" on stderr, one line.
void error_line(const char* cmd, const std::string& message);
// A status as a user reads it: its message (which names the file, offset, stream or type),
// without the internal code name.
std::string describe(const Status& st);
// Usage-level check shared by the commands that read a log directory.
bool check_log_dir(const char* cmd, const std::string& dir, int* exit_code);

// JSON output: every document the tool prints goes through nlohmann/json (keys in insertion
// order; bytes that are not UTF-8 become U+FFFD, so every line is valid JSON).
using Json = nlohmann::ordered_json;
std::string json_text(const Json& j);
void print_json(const Json& j);  // one line on stdout, flushed

// A progress line on stderr for long work, redrawn in place; silent unless stderr is a
// terminal and --quiet was not given (so scripts and pipes see nothing).
class Progress {
 public:
  Progress(const char* what, bool quiet);
  ~Progress();
  // At most ~10 redraws a second whatever the call rate.
  void update(uint64_t done, uint64_t total);
  void finish();

 private:
  const char* what_;
  bool enabled_;
  bool drawn_ = false;
  int64_t last_ns_ = 0;
};

}  // namespace sluice::tools
