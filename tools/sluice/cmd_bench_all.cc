// `sluice bench all`: runs every suite of bench/suites.h as a child process of this executable
// (`/proc/self/exe SUITE --json TMP ...`), so that a suite that fails (bench_fail: exit 2),
// crashes or is skipped (bench_skip: exit 3, e.g. no nats-server) is reported and the others
// go on; then merges their JSON files into one, prints one summary (each figure with a target
// marked met or missed) and, with --plots, draws the plots.
//
// Merged JSON: {"figures": {name: value}, "machine": {...}, "config": {...}, "suites": {...},
// "date": ...}. A figure keeps its suite's name unless two suites report that name: then every
// one of them is "SUITE.name". The e2e suite runs twice, synthetic and --workload order_book;
// the second run's figures are "order_book.name" (suite key "e2e:order_book").
#include <fcntl.h>
#include <poll.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_cli.h"
#include "commands.h"
#include "common/plots.h"
#include "common/targets.h"
#include "suites.h"

#ifndef SLUICE_BUILD_TYPE
#define SLUICE_BUILD_TYPE "unknown"
#endif

namespace sluice::tools {
namespace {

// The process group of the suite running now (0: none). A suite runs in a group of its own,
// so a Ctrl-C at the terminal reaches only `all`: its handler takes the suite's group down
// with it, then ends `all` the way the signal would have.
volatile std::sig_atomic_t g_child_group = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_child_group > 0) ::kill(-static_cast<pid_t>(g_child_group), SIGKILL);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

namespace fs = std::filesystem;

// The scale each suite runs at in `all` and `all --quick`, chosen from the durations measured
// on a 2-CPU VM (docs/performance.md, "Reproduce"): `all` within 15 minutes, `all --quick`
// within 3, with margin. --scale on `all` multiplies these. A suite not listed (one added
// later) runs at 1 and 0.1.
struct SuiteScale {
  const char* suite;
  double full, quick;
};
// bus: its 3:1 part (3 yielding producers time-sliced on one CPU) did not finish in 5 minutes
// at scale 0.1 on the loaded 2-CPU VM, and took 0.6 s at 0.05.
constexpr SuiteScale kScales[] = {
    {"log", 1, 0.02},  {"bus", 0.5, 0.02},  {"codec", 1, 0.05},  {"e2e", 1, 0.01},
    {"relay", 1, 0.05},  {"aggregate", 1, 0.02}, {"saga", 1, 0.05},
};

double suite_scale(const std::string& suite, bool quick) {
  for (const SuiteScale& s : kScales)
    if (suite == s.suite) return quick ? s.quick : s.full;
  return quick ? 0.1 : 1.0;
}

struct AllArgs {
  bench::SuiteArgs suite;  // --dir, --cpus, --scale (a multiplier here), --quick, workload
  std::string json_path, plots_dir;
  std::vector<std::string> only;  // --suites
  double timeout_s = 0;           // --timeout: per run (0: 300 s, --quick 90 s)
};

// One child run: a suite, or the e2e suite with a workload.
struct Run {
  std::string suite;     // the subcommand
  std::string key;       // in "suites" of the JSON: the suite, or "e2e:order_book"
  std::string prefix;    // for the run's figures ("" or "order_book.")
  std::string workload;  // --workload for this run ("" = none given)
  double scale = 1;
  std::string status;  // ok | skipped | failed
  std::string reason;
  double seconds = 0;
  Json result;  // the suite's JSON file
};

std::string self_exe() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/proc/self/exe";
  buf[n] = '\0';
  return buf;
}

std::string fmt_double(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

// The child's command line: the suite, its scale, and the options `all` was given.
std::vector<std::string> child_argv(const AllArgs& a, const Run& r, const std::string& json) {
  const bench::SuiteArgs& s = a.suite;
  const bench::Workload& w = s.workload;
  std::vector<std::string> v = {"sluice-bench", r.suite, "--json", json, "--scale", fmt_double(r.scale)};
  if (s.quick) v.push_back("--quick");
  if (!s.dir.empty()) v.insert(v.end(), {"--dir", s.dir});
  if (!s.data_dir.empty()) v.insert(v.end(), {"--data", s.data_dir});
  if (!s.cpus.empty()) {
    std::string c;
    for (int cpu : s.cpus) c += (c.empty() ? "" : ",") + std::to_string(cpu);
    v.insert(v.end(), {"--cpus", c});
  }
  if (w.rate != 0) v.insert(v.end(), {"--rate", fmt_double(w.rate)});
  if (w.events != 0) v.insert(v.end(), {"--events", std::to_string(w.events)});
  if (w.payload_bytes != 0) v.insert(v.end(), {"--payload-bytes", std::to_string(w.payload_bytes)});
  if (w.producers != 0) v.insert(v.end(), {"--producers", std::to_string(w.producers)});
  if (w.workers != 0) v.insert(v.end(), {"--workers", std::to_string(w.workers)});
  if (!w.durability.empty()) v.insert(v.end(), {"--durability", w.durability});
  if (!w.codec.empty()) v.insert(v.end(), {"--codec", w.codec});
  if (!r.workload.empty()) v.insert(v.end(), {"--workload", r.workload});
  return v;
}

// The last line of `text` that starts with `prefix`, without it ("" if none).
std::string last_line_with(const std::string& text, const std::string& prefix) {
  std::string found;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find(prefix);
    if (at != std::string::npos) found = line.substr(at + prefix.size());
  }
  return found;
}

std::string last_nonempty_line(const std::string& text) {
  std::string found;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t cr = line.find_last_of('\r');
    if (cr != std::string::npos) line = line.substr(cr + 1);
    if (!line.empty()) found = line;
  }
  return found;
}

// Runs the child: its stdout (the suite's table) into `log_path`, its stderr passed through
// to ours as it comes (the progress lines) and kept to find why it failed or was skipped.
void run_child(const AllArgs& a, Run& r, const std::string& tmp, const std::string& log_path) {
  const std::string json = tmp + "/" + r.key + ".json";
  std::vector<std::string> args = child_argv(a, r, json);
  std::vector<char*> argv;
  for (std::string& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    r.status = "failed";
    r.reason = std::string("pipe: ") + std::strerror(errno);
    return;
  }
  const int out_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const std::string exe = self_exe();
  std::fflush(stdout);
  std::fflush(stderr);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);  // its own process group: a timeout ends the suite and what it started (nats-server)
    if (out_fd >= 0) ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::execv(exe.c_str(), argv.data());
    std::fprintf(stderr, "bench FAILED: cannot run %s: %s\n", exe.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(err_pipe[1]);
  if (out_fd >= 0) ::close(out_fd);
  if (pid > 0) ::setpgid(pid, pid);  // as the child does: whichever runs first
  std::string err_text;
  char buf[4096];
  bool timed_out = false;
  const auto deadline = t0 + std::chrono::duration<double>(a.timeout_s);
  if (pid > 0) g_child_group = pid;  // Ctrl-C / SIGTERM end the suite's group too (on_stop_signal)
  auto over_time = [&] { return std::chrono::steady_clock::now() >= deadline; };
  for (;;) {
    if (pid > 0 && over_time()) {  // over its time: the whole group goes
      timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{err_pipe[0], POLLIN, 0};
    const int ready = pid > 0 ? ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count()))) : 1;
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // 0: the deadline, checked above; an error: look again
    const ssize_t n = ::read(err_pipe[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    (void)!::write(STDERR_FILENO, buf, static_cast<size_t>(n));
    err_text.append(buf, static_cast<size_t>(n));
    if (err_text.size() > (1u << 16)) err_text.erase(0, err_text.size() - (1u << 15));
  }
  ::close(err_pipe[0]);
  int st = 0;
  // A child that closed its stderr may still run: it gets the rest of its time, then the group goes.
  while (pid > 0) {
    const pid_t w = ::waitpid(pid, &st, timed_out ? 0 : WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) break;
    if (w == 0) {
      if (over_time()) {
        timed_out = true;
        ::kill(-pid, SIGKILL);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  // The group outlives its leader: whatever the suite started (nats-server) goes with it,
  // also when the suite failed or crashed.
  if (pid > 0) ::kill(-pid, SIGKILL);
  g_child_group = 0;
  r.seconds = bench::seconds_since(t0);
  if (pid < 0) {
    r.status = "failed";
    r.reason = std::string("fork: ") + std::strerror(errno);
    return;
  }
  if (timed_out) {
    r.status = "failed";
    r.reason = "timed out after " + fmt_double(a.timeout_s) + " s (--timeout), killed; last: " + last_nonempty_line(err_text);
    return;
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == bench::kExitSkipped) {
    r.status = "skipped";
    r.reason = last_line_with(err_text, "bench SKIPPED: ");
    if (r.reason.empty()) r.reason = last_nonempty_line(err_text);
    return;
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    r.status = "failed";
    r.reason = WIFSIGNALED(st) ? std::string("killed by signal ") + ::strsignal(WTERMSIG(st))
                               : "exit " + std::to_string(WEXITSTATUS(st));
    std::string why = last_line_with(err_text, "bench FAILED: ");
    if (why.empty()) why = last_nonempty_line(err_text);
    if (!why.empty()) r.reason += ": " + why;
    return;
  }
  std::ifstream in(json);
  r.result = Json::parse(in, nullptr, false);
  if (r.result.is_discarded() || !r.result.contains("figures")) {
    r.status = "failed";
    r.reason = "no valid JSON in " + json;
    return;
  }
  r.status = "ok";
}

std::string read_first_line_with(const char* file, const char* key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) {
      const size_t colon = line.find(':');
      return colon == std::string::npos ? "" : line.substr(std::min(line.size(), colon + 2));
    }
  return "";
}

Json machine_json(const AllArgs& a, const std::string& scratch) {
  Json m;
  m["cpu"] = read_first_line_with("/proc/cpuinfo", "model name");
  m["cpus_online"] = ::sysconf(_SC_NPROCESSORS_ONLN);
  utsname u{};
  ::uname(&u);
  m["kernel"] = std::string(u.sysname) + " " + u.release + " " + u.version;
#ifdef __clang__
  m["compiler"] = "clang " __clang_version__;
#else
  m["compiler"] = "g++ " __VERSION__;
#endif
  m["build_type"] = SLUICE_BUILD_TYPE;
  m["scratch_dir"] = scratch;
  m["scratch_filesystem"] = bench::filesystem_name(scratch);
  std::string mem = read_first_line_with("/proc/meminfo", "MemTotal");
  mem.erase(0, mem.find_first_not_of(' '));
  m["memory"] = mem;
  std::ifstream la("/proc/loadavg");
  std::string load;
  std::getline(la, load);
  m["loadavg_at_start"] = load;
  const int cpu_a = a.suite.cpus.size() > 0 ? a.suite.cpus[0] : 0;
  const int cpu_b = a.suite.cpus.size() > 1 ? a.suite.cpus[1] : (::sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0);
  // In a thread of its own: atomic_rtt_p50 leaves the calling thread pinned.
  double rtt = 0;
  std::thread t([&] { rtt = bench::atomic_rtt_p50(cpu_a, cpu_b, a.suite.quick ? 20'000 : 200'000); });
  t.join();
  m["atomic_rtt_p50_ns"] = rtt;
  m["atomic_rtt_cpus"] = std::to_string(cpu_a) + "," + std::to_string(cpu_b);
  return m;
}

Json workload_json(const bench::Workload& w) {
  Json j = Json::object();
  if (w.rate != 0) j["rate"] = w.rate;
  if (w.events != 0) j["events"] = w.events;
  if (w.payload_bytes != 0) j["payload_bytes"] = w.payload_bytes;
  if (w.producers != 0) j["producers"] = w.producers;
  if (w.workers != 0) j["workers"] = w.workers;
  if (!w.durability.empty()) j["durability"] = w.durability;
  if (!w.codec.empty()) j["codec"] = w.codec;
  if (!w.kind.empty()) j["workload"] = w.kind;
  return j;
}

// "met" / "missed" / "" (no target) for a figure as its suite names it.
std::string target_mark(const std::string& name, const Json& value, std::string* target_text) {
  const bench::Target* t = bench::find_target(name);
  if (t == nullptr) return "";
  *target_text = std::string(t->at_least ? ">= " : "<= ") + fmt_double(t->value);
  if (!value.is_number()) return "missed";
  const double v = value.get<double>();
  return (t->at_least ? v >= t->value : v <= t->value) ? "met" : "missed";
}

// The merged document, and the summary text.
Json merge(const AllArgs& a, std::vector<Run>& runs, const Json& machine, std::string* summary) {
  // Names reported by more than one (non-prefixed) run get the suite's prefix.
  std::map<std::string, int> seen;
  for (const Run& r : runs)
    if (r.status == "ok" && r.prefix.empty())
      for (const auto& [name, v] : r.result["figures"].items()) ++seen[name];
  Json doc;
  doc["figures"] = Json::object();
  doc["machine"] = machine;
  doc["config"] = Json::object();  // filled below, keeps its place in the document
  doc["suites"] = Json::object();
  Json config;
  config["quick"] = a.suite.quick;
  config["scale_multiplier"] = a.suite.scale;
  config["cpus"] = a.suite.cpus.empty() ? Json("suite defaults") : Json(a.suite.cpus);
  config["workload"] = workload_json(a.suite.workload);
  config["suites"] = Json::object();
  size_t width = 52;
  for (const Run& r : runs)
    if (r.status == "ok")
      for (const auto& [name, v] : r.result["figures"].items())
        if (name.rfind("ratio_", 0) == 0 || bench::find_target(name) != nullptr)  // the lines the summary prints
          width = std::max(width, r.prefix.size() + r.key.size() + 1 + name.size());
  std::ostringstream out;
  int met = 0, missed = 0;
  out << "\nsluice bench all — summary (" << machine["cpu"].get<std::string>() << ", "
      << machine["cpus_online"].get<long>() << " CPUs, atomic round trip p50 "
      << fmt_double(std::round(machine["atomic_rtt_p50_ns"].get<double>())) << " ns)\n";
  for (Run& r : runs) {
    Json s;
    s["status"] = r.status;
    if (!r.reason.empty()) s["reason"] = r.reason;
    s["seconds"] = std::round(r.seconds * 10) / 10;
    s["scale"] = r.scale;
    if (!r.workload.empty()) s["workload"] = r.workload;
    Json suite_config = r.result.contains("config") ? r.result["config"] : Json::object();
    suite_config["scale"] = r.scale;
    suite_config["quick"] = a.suite.quick;
    if (!r.workload.empty()) suite_config["workload"] = r.workload;
    config["suites"][r.key] = suite_config;
    char head[160];
    std::snprintf(head, sizeof head, "\n%-16s %-8s %6.1f s  scale %g", r.key.c_str(), r.status.c_str(), r.seconds,
                  r.scale);
    out << head;
    if (!r.reason.empty()) out << "  (" << r.reason << ")";
    out << "\n";
    if (r.status == "ok") {
      Json targets = Json::object();
      for (const auto& [name, v] : r.result["figures"].items()) {
        const std::string flat = !r.prefix.empty() ? r.prefix + name : (seen[name] > 1 ? r.key + "." + name : name);
        doc["figures"][flat] = v;
        std::string target_text;
        const std::string mark = target_mark(name, v, &target_text);
        if (!mark.empty()) {
          targets[flat] = {{"target", target_text}, {"result", mark}};
          (mark == "met" ? met : missed)++;
        }
        if (mark.empty() && name.rfind("ratio_", 0) != 0) continue;  // the summary: ratios and targets
        char line[256];
        const std::string value = v.is_number() ? fmt_double(v.get<double>()) : "null";
        std::snprintf(line, sizeof line, "  %-*s %14s", static_cast<int>(width), flat.c_str(), value.c_str());
        out << line;
        if (!mark.empty()) out << "  target " << target_text << ": " << mark;
        out << "\n";
      }
      s["targets"] = targets;
      s["figures"] = r.result["figures"];
      if (r.result.contains("units")) s["units"] = r.result["units"];
    }
    doc["suites"][r.key] = s;
  }
  doc["config"] = config;
  doc["targets"] = {{"met", met}, {"missed", missed}};
  doc["date"] = bench::iso_date_utc();
  out << "\ntargets: " << met << " met, " << missed << " missed\n";
  *summary = out.str();
  return doc;
}

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return static_cast<bool>(f);
}

int run_all(AllArgs& a) {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
  // Which runs: every suite (or --suites), e2e twice unless --workload chose one.
  std::set<std::string> known;
  for (const bench::Suite& s : bench::kSuites) known.insert(s.name);
  for (const std::string& o : a.only)
    if (known.count(o) == 0) {
      std::string names;
      for (const bench::Suite& s : bench::kSuites) names += (names.empty() ? "" : ", ") + std::string(s.name);
      error_line("bench all", "unknown suite '" + o + "' in --suites (suites: " + names + ")");
      return kExitUsage;
    }
  const std::string kind = a.suite.workload.kind;
  std::vector<Run> runs;
  for (const bench::Suite& s : bench::kSuites) {
    if (!a.only.empty() && std::find(a.only.begin(), a.only.end(), s.name) == a.only.end()) continue;
    Run r;
    r.suite = r.key = s.name;
    r.scale = suite_scale(s.name, a.suite.quick) * a.suite.scale;
    if (r.suite != "e2e") {
      runs.push_back(r);
      continue;
    }
    if (kind.empty() || kind == "synthetic") runs.push_back(r);
    if (kind.empty() || kind == "order_book") {
      r.key = "e2e:order_book";
      r.prefix = "order_book.";
      r.workload = "order_book";
      runs.push_back(r);
    }
  }
  // Where things go: --plots DIR holds data/, the JSON (unless --json), the summary and logs.
  std::error_code ec;
  std::string tmp = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + std::string("/sluice-bench-all-") +
                    std::to_string(::getpid());
  fs::create_directories(tmp, ec);
  std::string log_dir = tmp;
  if (!a.plots_dir.empty()) {
    a.suite.data_dir = a.plots_dir + "/data";
    log_dir = a.plots_dir + "/logs";
    fs::create_directories(a.suite.data_dir, ec);
    if (!ec) fs::create_directories(log_dir, ec);
    if (ec) {
      error_line("bench all", "cannot create " + a.plots_dir + ": " + ec.message());
      std::error_code ignored;
      fs::remove_all(tmp, ignored);
      return kExitUsage;
    }
    if (a.json_path.empty()) a.json_path = a.plots_dir + "/results.json";
  }
  const std::string scratch = a.suite.dir.empty() ? (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") : a.suite.dir;
  if (a.timeout_s <= 0) a.timeout_s = a.suite.quick ? 90 : 300;
  const Json machine = machine_json(a, scratch);
  if (::isatty(STDERR_FILENO)) ::setenv("SLUICE_BENCH_PROGRESS_TTY", "1", 1);  // progress redrawn in place
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < runs.size(); ++i) {
    Run& r = runs[i];
    std::fprintf(stderr, "sluice bench all: [%zu/%zu] %s (scale %g)\n", i + 1, runs.size(), r.key.c_str(), r.scale);
    std::string log_name = r.key;
    std::replace(log_name.begin(), log_name.end(), ':', '-');
    run_child(a, r, tmp, log_dir + "/" + log_name + ".txt");
    if (::isatty(STDERR_FILENO)) std::fputc('\n', stderr);  // after the suite's last progress line
    std::fprintf(stderr, "sluice bench all: %s %s in %.1f s%s%s\n", r.key.c_str(), r.status.c_str(), r.seconds,
                 r.reason.empty() ? "" : ": ", r.reason.c_str());
  }
  std::string summary;
  Json doc = merge(a, runs, machine, &summary);
  doc["seconds"] = std::round(bench::seconds_since(t0) * 10) / 10;
  summary += "total " + fmt_double(doc["seconds"].get<double>()) + " s\n";
  std::fputs(summary.c_str(), stdout);
  std::fflush(stdout);
  int rc = kExitOk;
  if (!a.json_path.empty()) {
    if (!write_text(a.json_path, doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n")) {
      error_line("bench all", "cannot write " + a.json_path);
      rc = kExitFailed;
    }
  }
  if (!a.plots_dir.empty()) {
    if (!write_text(a.plots_dir + "/summary.txt", summary)) error_line("bench all", "cannot write the summary");
    std::string err;
    if (!bench::write_plots(a.suite.data_dir, a.plots_dir, &err)) {
      error_line("bench all", "plots: " + err);
      rc = kExitFailed;
    }
  }
  fs::remove_all(tmp, ec);
  for (const Run& r : runs)
    if (r.status == "failed") rc = kExitFailed;
  return rc;
}

}  // namespace

void add_bench_all(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<AllArgs>();
  CLI::App* c = app.add_subcommand(
      "all", "every suite, one summary (figures, ratios, targets met/missed) and one JSON; --plots draws the plots");
  add_suite_options(c, &a->suite);
  // `all` has its own --json (the merged document) and no --data (--plots sets it).
  c->remove_option(c->get_option("--json"));
  c->remove_option(c->get_option("--data"));
  c->get_option("--scale")->description("multiply every suite's scale in `all` (docs/performance.md)");
  c->add_option("--json", a->json_path, "write the merged {\"figures\", \"machine\", \"config\", \"suites\"} here");
  c->add_option("--plots", a->plots_dir, "write data (.hgrm, .dat), plots (PNG, SVG), the JSON and the summary here");
  c->add_option("--suites", a->only, "run only these suites (default: all)")->delimiter(',');
  c->add_option("--timeout", a->timeout_s, "seconds a suite may run before it is killed and reported failed")
      ->check(CLI::Range(1.0, 86400.0))
      ->default_str("300, --quick 90");
  c->callback([a, exit_code] { *exit_code = run_all(*a); });
}

}  // namespace sluice::tools
