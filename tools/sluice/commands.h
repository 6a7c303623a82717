// Subcommands of the `sluice` tool. Each add_* registers one subcommand on the CLI11 app;
// the callback it sets stores the command's exit code in *exit_code.
//
// Exit codes a script can rely on: 0 success; 1 the operation failed on a real log
// (corruption found, I/O error); 2 usage error (bad arguments, a missing directory, a
// directory that is not a log).
#pragma once

#include <CLI/CLI.hpp>

namespace sluice::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

void add_gen(CLI::App& app, int* exit_code);
void add_info(CLI::App& app, int* exit_code);
void add_verify(CLI::App& app, int* exit_code);
void add_dump(CLI::App& app, int* exit_code);
void add_salvage(CLI::App& app, int* exit_code);
void add_bench(CLI::App& app, int* exit_code);
void add_stat(CLI::App& app, int* exit_code);
void add_rebuild(CLI::App& app, int* exit_code);
void add_relay(CLI::App& app, int* exit_code);   // cmd_relay.cc (connectors)
void add_ingest(CLI::App& app, int* exit_code);  // cmd_relay.cc (connectors)
void add_sagas(CLI::App& app, int* exit_code);   // cmd_sagas.cc

// "sluice <cmd>: <message>" on stderr, one line.
void error_line(const char* cmd, const std::string& message);
// Usage-level check shared by the commands that read a log directory.
bool check_log_dir(const char* cmd, const std::string& dir, int* exit_code);

}  // namespace sluice::tools
