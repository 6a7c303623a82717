// Shared pieces of the `sluice bench <suite>` harness: a figures table that prints as text
// and writes `{"figures": {name: number}, "machine": ..., "config": ..., "date": ...}` with
// --json, percentile helpers, and the description of the machine the run is on.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sluice::bench {

// Workload options in the style of `nats bench` / `kafka-producer-perf-test`. A zero or an
// empty string means "the suite's default"; a suite that cannot honour an option it was
// given says so on stderr and ignores it (docs/performance.md lists which suite takes which).
struct Workload {
  double rate = 0;              // --rate: events/s offered (open loop, CO-corrected latency)
  uint64_t events = 0;          // --events: events per measured run
  uint32_t payload_bytes = 0;   // --payload-bytes
  int producers = 0;            // --producers: submitting threads
  int workers = 0;              // --workers: projection worker threads
  std::string durability;       // --durability none|group|sync
  std::string codec;            // --codec raw|flatbuffers|json
  std::string kind;             // --workload synthetic|order_book (e2e)
};

// The Workload options, as bits: what a suite honours (check_workload).
enum WorkloadOption : unsigned {
  kOptRate = 1u << 0,
  kOptEvents = 1u << 1,
  kOptPayload = 1u << 2,
  kOptProducers = 1u << 3,
  kOptWorkers = 1u << 4,
  kOptDurability = 1u << 5,
  kOptCodec = 1u << 6,
  kOptWorkload = 1u << 7,
};

struct SuiteArgs {
  std::string json_path;       // --json FILE ("" = none)
  std::string dir;             // --dir: scratch directory for files (default: a temp dir)
  std::vector<int> cpus;       // --cpus 0,1: CPUs to pin to, in the order the suite uses them
  double scale = 1.0;          // --scale: multiply the work (0.1 for a quick run)
  bool quick = false;          // --quick: the short mode (`bench all --quick` within 3 min)
  // --data DIR: where the suite writes every latency distribution (HdrHistogram .hgrm text)
  // and the time series the plots are drawn from (.dat); "" = none.
  std::string data_dir;
  Workload workload;
};

class Figures {
 public:
  // A figure reported in the JSON (and the table): name, value, unit, note.
  void add(const std::string& name, double value, const std::string& unit = "",
           const std::string& note = "");
  void config(const std::string& key, const std::string& value) { config_[key] = value; }
  double get(const std::string& name) const;
  void print_table() const;
  // Writes the JSON file; returns false (and prints why) on failure.
  bool write_json(const std::string& path, const std::string& suite) const;

 private:
  struct Row {
    std::string name;
    double value;
    std::string unit, note;
  };
  std::vector<Row> rows_;
  std::map<std::string, std::string> config_;
};

// For each workload option given in args.workload that `honoured` (WorkloadOption bits)
// lacks: one line on stderr, "sluice bench SUITE: ignores --OPT (it takes ...)". Each suite
// calls it first.
void check_workload(const SuiteArgs& args, const char* suite, unsigned honoured);
// --events when given, else `scaled` (the suite's default count times --scale).
inline uint64_t events_or(const SuiteArgs& args, uint64_t scaled) {
  return args.workload.events != 0 ? args.workload.events : scaled;
}
// True when --durability was not given or names `d` (a suite runs only that durability's part).
inline bool durability_wanted(const SuiteArgs& args, const char* d) {
  return args.workload.durability.empty() || args.workload.durability == d;
}

// A progress line on stderr at a phase boundary of a suite: "[suite] phase..." — redrawn in
// place (\r) on a terminal, one line each otherwise (so `bench all` logs show where a run was).
void progress(const char* suite, const std::string& phase);

// "ext4", "tmpfs", "xfs", "btrfs", "overlayfs" or "fs-0x..." for the filesystem holding `dir`.
std::string filesystem_name(const std::string& dir);
// "AMD EPYC ... , 2 CPUs, Linux 6.x, ext4 on /tmp"
std::string machine_description(const std::string& dir);
std::string iso_date_utc();

// Percentile (0..100) of a sample, by sorting a copy.
double percentile(std::vector<double> samples, double pct);

// A directory under $TMPDIR (or --dir) that is removed when the object dies.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& base, const std::string& name);
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A benchmark whose result is wrong must not yield a figure: prints "bench FAILED: ..."
// (printf format) to stderr and exits the process with status 2. Every suite calls it when
// a consumer's sum, a decode status, an acknowledgement or a count does not verify.
[[noreturn]] void bench_fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// A suite that cannot run here (a prerequisite is missing, an option it does not know):
// prints "bench SKIPPED: ..." to stderr and exits with kExitSkipped; `bench all` reports the
// suite as skipped with that reason instead of failed.
inline constexpr int kExitSkipped = 3;
[[noreturn]] void bench_skip(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Sum of 0 + 1 + ... + (n - 1), what a consumer of the values 0..n-1 must have added up.
inline uint64_t sum_below(uint64_t n) { return n == 0 ? 0 : (n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2)); }

// Pins the calling thread to `cpu` (no-op for cpu < 0). Returns false if it failed.
bool pin_this_thread(int cpu);

// Bare std::atomic cache-line ping-pong: the calling thread (pinned to cpu_a, and left
// pinned) and an echo thread on cpu_b; p50 of one round trip (ns). The baseline every
// latency figure is reported beside.
double atomic_rtt_p50(int cpu_a, int cpu_b, uint64_t rounds);

}  // namespace sluice::bench
