#include "common/figures.h"

#include <pthread.h>
#include <sched.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>
#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace sluice::bench {

void Figures::add(const std::string& name, double value, const std::string& unit,
                  const std::string& note) {
  for (auto& r : rows_)
    if (r.name == name) {
      r = Row{name, value, unit, note};
      return;
    }
  rows_.push_back(Row{name, value, unit, note});
}

double Figures::get(const std::string& name) const {
  for (const auto& r : rows_)
    if (r.name == name) return r.value;
  return NAN;
}

void Figures::print_table() const {
  size_t w = 10;
  for (const auto& r : rows_) w = std::max(w, r.name.size());
  for (const auto& r : rows_) {
    std::printf("  %-*s %16.4g %-10s %s\n", static_cast<int>(w), r.name.c_str(), r.value,
                r.unit.c_str(), r.note.c_str());
  }
  std::fflush(stdout);
}

bool Figures::write_json(const std::string& path, const std::string& suite) const {
  // ordered: the keys in the order the suite reported them; a figure that is not finite is null.
  nlohmann::ordered_json j;
  j["suite"] = suite;
  j["date"] = iso_date_utc();
  j["config"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : config_) j["config"][k] = v;
  j["figures"] = nlohmann::ordered_json::object();
  j["units"] = nlohmann::ordered_json::object();
  j["notes"] = nlohmann::ordered_json::object();
  for (const auto& r : rows_) {
    j["figures"][r.name] = std::isfinite(r.value) ? nlohmann::ordered_json(r.value) : nlohmann::ordered_json();
    j["units"][r.name] = r.unit;
    if (!r.note.empty()) j["notes"][r.name] = r.note;
  }
  std::ofstream f(path);
  if (!f) {
    std::fprintf(stderr, "sluice bench: cannot write %s\n", path.c_str());
    return false;
  }
  // Bytes that are not UTF-8 (a path in a note) become U+FFFD instead of throwing.
  f << j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
  if (!f) std::fprintf(stderr, "sluice bench: cannot write %s\n", path.c_str());
  return static_cast<bool>(f);
}

void check_workload(const SuiteArgs& args, const char* suite, unsigned honoured) {
  const Workload& w = args.workload;
  const struct {
    unsigned bit;
    bool given;
    const char* flag;
  } opts[] = {{kOptRate, w.rate != 0, "--rate"},
              {kOptEvents, w.events != 0, "--events"},
              {kOptPayload, w.payload_bytes != 0, "--payload-bytes"},
              {kOptProducers, w.producers != 0, "--producers"},
              {kOptWorkers, w.workers != 0, "--workers"},
              {kOptDurability, !w.durability.empty(), "--durability"},
              {kOptCodec, !w.codec.empty(), "--codec"},
              {kOptWorkload, !w.kind.empty() && w.kind != "synthetic", "--workload"}};
  std::string takes;
  for (const auto& o : opts)
    if ((honoured & o.bit) != 0) takes += (takes.empty() ? "" : ", ") + std::string(o.flag);
  for (const auto& o : opts)
    if (o.given && (honoured & o.bit) == 0)
      std::fprintf(stderr, "sluice bench %s: ignores %s (it takes %s)\n", suite, o.flag,
                   takes.empty() ? "no workload option" : takes.c_str());
}

void progress(const char* suite, const std::string& phase) {
  // SLUICE_BENCH_PROGRESS_TTY: set by `bench all`, whose terminal the suite's stderr reaches
  // through a pipe.
  static const bool tty = ::isatty(STDERR_FILENO) != 0 || std::getenv("SLUICE_BENCH_PROGRESS_TTY") != nullptr;
  static std::string last_suite;
  if (tty) {
    // Redraw one line per suite; a new suite starts on a fresh line.
    if (!last_suite.empty() && last_suite != suite) std::fputc('\n', stderr);
    std::fprintf(stderr, "\r\033[K[%s] %s ...", suite, phase.c_str());
  } else {
    std::fprintf(stderr, "[%s] %s ...\n", suite, phase.c_str());
  }
  last_suite = suite;
  std::fflush(stderr);
}

std::string filesystem_name(const std::string& dir) {
  struct statfs sf {};
  if (::statfs(dir.c_str(), &sf) != 0) return "?";
  switch (static_cast<unsigned long>(sf.f_type)) {
    case 0xEF53: return "ext4";
    case 0x01021994: return "tmpfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "fs-0x%lx", static_cast<unsigned long>(sf.f_type));
      return buf;
    }
  }
}

std::string machine_description(const std::string& dir) {
  std::string cpu = "unknown CPU";
  std::ifstream ci("/proc/cpuinfo");
  for (std::string line; std::getline(ci, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  utsname u{};
  ::uname(&u);
  const std::string fs = filesystem_name(dir);
  return cpu + ", " + std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs, Linux " +
         u.release + ", " + fs + " at " + dir;
}

std::string iso_date_utc() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

[[noreturn]] static void report_and_exit(const char* prefix, int code, const char* fmt, va_list ap) {
  std::fflush(stdout);
  std::fputs(prefix, stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  std::exit(code);
}

void bench_skip(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_and_exit("bench SKIPPED: ", kExitSkipped, fmt, ap);
}

void bench_fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_and_exit("bench FAILED: ", 2, fmt, ap);
}

double percentile(std::vector<double> s, double pct) {
  if (s.empty()) return NAN;
  std::sort(s.begin(), s.end());
  double rank = pct / 100.0 * static_cast<double>(s.size() - 1);
  size_t i = static_cast<size_t>(rank);
  if (i + 1 >= s.size()) return s.back();
  double frac = rank - static_cast<double>(i);
  return s[i] + (s[i + 1] - s[i]) * frac;
}

ScratchDir::ScratchDir(const std::string& base, const std::string& name) {
  std::string b = base;
  if (b.empty()) {
    const char* t = std::getenv("TMPDIR");
    b = t ? t : "/tmp";
  }
  path_ = b + "/sluice-bench-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

bool pin_this_thread(int cpu) {
  if (cpu < 0) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) == 0;
}

}  // namespace sluice::bench

namespace sluice::bench {

double atomic_rtt_p50(int cpu_a, int cpu_b, uint64_t rounds) {
  using Clock = std::chrono::steady_clock;
  struct alignas(64) Line {
    std::atomic<uint64_t> v{0};
  };
  Line ping, pong;
  std::thread echo([&] {
    pin_this_thread(cpu_b);
    for (uint64_t i = 1; i <= rounds; ++i) {
      while (ping.v.load(std::memory_order_acquire) != i) {  // pairs with the release below
      }
      pong.v.store(i, std::memory_order_release);  // pairs with the main thread's acquire
    }
  });
  pin_this_thread(cpu_a);
  std::vector<double> rtt;
  rtt.reserve(rounds);
  for (uint64_t i = 1; i <= rounds; ++i) {
    const auto t0 = Clock::now();
    ping.v.store(i, std::memory_order_release);  // pairs with the echo thread's acquire
    while (pong.v.load(std::memory_order_acquire) != i) {
    }
    rtt.push_back(static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
  }
  echo.join();
  return percentile(rtt, 50);
}

}  // namespace sluice::bench
