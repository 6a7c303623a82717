// The options every `sluice bench` suite subcommand and `sluice bench all` share, and the
// `all` subcommand (cmd_bench_all.cc).
#pragma once

#include <CLI/CLI.hpp>

#include "common/figures.h"

namespace sluice::tools {

// --json, --dir, --cpus, --scale, --quick, --data and the workload options (--rate, --events,
// --payload-bytes, --producers, --workers, --durability, --codec, --workload), each checked
// as it is parsed: a bad value is a usage error (exit 2).
void add_suite_options(CLI::App* cmd, bench::SuiteArgs* args);

// `sluice bench all`: every suite of bench/suites.h, each in a child process of this
// executable, then one summary and one merged JSON (docs/performance.md, "Reproduce").
void add_bench_all(CLI::App& app, int* exit_code);

}  // namespace sluice::tools
