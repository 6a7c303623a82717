// sluice: the command-line tool. `sluice --help` lists the commands.
#include <cstdio>
#include <filesystem>

#include "commands.h"

namespace sluice::tools {

void error_line(const char* cmd, const std::string& message) {
  std::fprintf(stderr, "sluice %s: %s\n", cmd, message.c_str());
}

bool check_log_dir(const char* cmd, const std::string& dir, int* exit_code) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    error_line(cmd, "no such directory: " + dir);
    *exit_code = kExitUsage;
    return false;
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    error_line(cmd, dir + " is not a directory");
    *exit_code = kExitUsage;
    return false;
  }
  return true;
}

}  // namespace sluice::tools

int main(int argc, char** argv) {
  using namespace sluice::tools;
  CLI::App app{"sluice: inspect, verify, load and benchmark Sluice event logs"};
  app.require_subcommand(1);
  int exit_code = kExitOk;
  add_gen(app, &exit_code);
  add_info(app, &exit_code);
  add_verify(app, &exit_code);
  add_dump(app, &exit_code);
  add_salvage(app, &exit_code);
  add_bench(app, &exit_code);
  add_stat(app, &exit_code);
  add_rebuild(app, &exit_code);
  add_relay(app, &exit_code);
  add_ingest(app, &exit_code);
  add_sagas(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    std::fprintf(stderr, "sluice: %s (see sluice --help)\n", msg.c_str());
    return kExitUsage;
  }
  return exit_code;
}
