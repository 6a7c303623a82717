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

static std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += c;
    }
  }
  return o;
}

bool Figures::write_json(const std::string& path, const std::string& suite) const {
  std::ofstream f(path);
  if (!f) {
    std::fprintf(stderr, "sluice bench: cannot write %s\n", path.c_str());
    return false;
  }
  f << "{\n  \"suite\": \"" << json_escape(suite) << "\",\n  \"date\": \"" << iso_date_utc()
    << "\",\n  \"config\": {";
  bool first = true;
  for (const auto& [k, v] : config_) {
    f << (first ? "\n" : ",\n") << "    \"" << json_escape(k) << "\": \"" << json_escape(v) << "\"";
    first = false;
  }
  f << "\n  },\n  \"figures\": {";
  first = true;
  char buf[64];
  for (const auto& r : rows_) {
    if (std::isfinite(r.value)) std::snprintf(buf, sizeof buf, "%.6g", r.value);
    else std::snprintf(buf, sizeof buf, "null");
    f << (first ? "\n" : ",\n") << "    \"" << json_escape(r.name) << "\": " << buf;
    first = false;
  }
  f << "\n  },\n  \"units\": {";
  first = true;
  for (const auto& r : rows_) {
    f << (first ? "\n" : ",\n") << "    \"" << json_escape(r.name) << "\": \"" << json_escape(r.unit)
      << "\"";
    first = false;
  }
  f << "\n  }\n}\n";
  return static_cast<bool>(f);
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
  std::string fs = "?";
  struct statfs sf {};
  if (::statfs(dir.c_str(), &sf) == 0) {
    switch (static_cast<unsigned long>(sf.f_type)) {
      case 0xEF53: fs = "ext4"; break;
      case 0x01021994: fs = "tmpfs"; break;
      case 0x58465342: fs = "xfs"; break;
      case 0x9123683E: fs = "btrfs"; break;
      default: fs = "fs-0x" + std::to_string(sf.f_type);
    }
  }
  return cpu + ", " + std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs, Linux " +
         u.release + ", " + fs + " at " + dir;
}

std::string iso_date_utc() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void bench_fail(const char* fmt, ...) {
  std::fflush(stdout);
  std::fputs("bench FAILED: ", stderr);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  std::exit(2);
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
