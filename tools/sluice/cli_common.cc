// What the `sluice` and `sluice-bench` executables share: messages, JSON output, progress,
// and the parse step with its errors (unknown command or suite named, the subcommand's help).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "commands.h"

namespace sluice::tools {

void error_line(const char* cmd, const std::string& message) {
  std::fprintf(stderr, "sluice %s: %s\n", cmd, message.c_str());
}

std::string describe(const Status& st) {
  if (st.message().empty()) return std::string(to_string(st.code()));
  // Damage is worth a word of its own; other codes are internal names the message already explains.
  return st.code() == StatusCode::corruption ? "corruption found: " + st.message() : st.message();
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

std::string json_text(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void print_json(const Json& j) {
  std::string s = json_text(j);
  s += '\n';
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

namespace {
int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Progress::Progress(const char* what, bool quiet) : what_(what), enabled_(!quiet && ::isatty(STDERR_FILENO)) {}
Progress::~Progress() { finish(); }

void Progress::update(uint64_t done, uint64_t total) {
  if (!enabled_) return;
  const int64_t now = mono_ns();
  if (drawn_ && now - last_ns_ < 100'000'000) return;
  last_ns_ = now;
  drawn_ = true;
  if (total > 0)
    std::fprintf(stderr, "\r%s %llu/%llu (%.0f%%)\x1b[K", what_, static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total), 100.0 * static_cast<double>(done) / static_cast<double>(total));
  else
    std::fprintf(stderr, "\r%s %llu\x1b[K", what_, static_cast<unsigned long long>(done));
}

void Progress::finish() {
  if (drawn_) std::fprintf(stderr, "\r\x1b[K");
  drawn_ = false;
}

namespace {

// The subcommands named on the command line, and the first word in a command position that
// names none (CLI11 would only say "A subcommand is required").
struct CommandWalk {
  std::string path;             // "sluice bench" for `sluice bench nosuch`
  std::string unknown;          // the word that names no command
  std::string kind;             // "command", "bench suite"
  std::string known;            // what it could have been, comma-separated
};

// What the words under `cur` are called in messages.
std::string kind_of(CLI::App& app, CLI::App* cur) {
  if (cur == &app) return app.get_name() == "sluice bench" ? "bench suite" : "command";
  return cur->get_name() + " subcommand";
}

CommandWalk walk_commands(CLI::App& app, int argc, char** argv) {
  CommandWalk w;
  w.path = app.get_name();  // "sluice", or "sluice bench" for the bench executable
  CLI::App* cur = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.empty() || a[0] == '-') continue;
    auto subs = cur->get_subcommands([](CLI::App*) { return true; });
    if (subs.empty()) break;
    CLI::App* next = nullptr;
    for (CLI::App* s : subs)
      if (s->get_name() == a) next = s;
    if (next == nullptr) {
      w.unknown = a;
      w.kind = kind_of(app, cur);
      for (CLI::App* s : subs) w.known += (w.known.empty() ? "" : ", ") + s->get_name();
      return w;
    }
    w.path += " " + a;
    cur = next;
  }
  // What could come next: for "a command is required".
  for (CLI::App* s : cur->get_subcommands([](CLI::App*) { return true; }))
    w.known += (w.known.empty() ? "" : ", ") + s->get_name();
  w.kind = kind_of(app, cur);
  return w;
}

}  // namespace

int run_cli(CLI::App& app, int argc, char** argv, const int* exit_code) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const CommandWalk w = walk_commands(app, argc, argv);
    if (!w.unknown.empty()) {
      std::fprintf(stderr, "%s: unknown %s '%s' (%s: %s; see %s --help)\n", w.path.c_str(), w.kind.c_str(),
                   w.unknown.c_str(), w.kind == "command" ? "commands" : "choices", w.known.c_str(), w.path.c_str());
      return kExitUsage;
    }
    std::string msg = e.what();
    if (msg.find("subcommand is required") != std::string::npos && !w.known.empty())
      msg = "a " + w.kind + " is required (" + (w.kind == "command" ? "commands" : "choices") + ": " + w.known + ")";
    std::fprintf(stderr, "%s: %s (see %s --help)\n", w.path.c_str(), msg.c_str(), w.path.c_str());
    return kExitUsage;
  }
  return *exit_code;
}

}  // namespace sluice::tools

