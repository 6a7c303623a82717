// A latency histogram for the benchmark suites, laid out like HdrHistogram (Gil Tene's
// log-linear buckets): values in nanoseconds, 3 significant decimal digits (every value is
// kept within 0.1 % of itself), from 1 ns up to `highest` (default one hour; a larger value
// counts as `highest`). All memory is taken in the constructor: record() never allocates,
// locks or makes a syscall, so a suite can record on its measured path.
//
// Debian 12 ships no C/C++ HdrHistogram library; this one reproduces the parts the suites
// need, with HdrHistogram's semantics so the output reads the same:
//   - value_at_percentile(p): the highest value equivalent to the sample at rank
//     max(1, ceil(p/100 * count)) — HdrHistogram's getValueAtPercentile.
//   - record_corrected(v, interval): recordValueWithExpectedInterval — coordinated-omission
//     correction for a closed-loop sampler that meant to take one sample every `interval` ns:
//     a sample v > interval also records v - interval, v - 2*interval, ... down to interval,
//     the samples the stall kept from being taken. A suite that keeps an intended send time
//     per event (the e2e suite's fixed-rate schedule) is corrected already and uses record().
//   - write_hgrm(path): HdrHistogram's outputPercentileDistribution text (5 ticks per half
//     distance), so the existing HdrHistogram plotters read the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::bench {

class Histogram {
 public:
  static constexpr int kSignificantDigits = 3;
  static constexpr int64_t kDefaultHighest = 3'600'000'000'000;  // one hour in ns

  explicit Histogram(int64_t highest = kDefaultHighest);

  // Records one value (ns). Negative values count as 0, values above highest() as highest().
  void record(int64_t value_ns) noexcept { record_n(value_ns, 1); }
  void record_n(int64_t value_ns, uint64_t n) noexcept;
  // HdrHistogram's recordValueWithExpectedInterval (see above). interval <= 0: record(value).
  void record_corrected(int64_t value_ns, int64_t expected_interval_ns) noexcept;
  // Adds every count of `other` (same highest()) into this one.
  void add(const Histogram& other) noexcept;
  void reset() noexcept;

  uint64_t count() const noexcept { return total_; }
  int64_t min() const noexcept;
  int64_t max() const noexcept;  // the highest equivalent value of the largest sample
  double mean() const noexcept;
  double stddev() const noexcept;
  // p in 0..100. 0 -> the lowest equivalent value of the smallest sample; no samples -> 0.
  int64_t value_at_percentile(double p) const noexcept;
  int64_t highest() const noexcept { return highest_; }

  // The bucket layout (as in the .hgrm footer) and the equivalence of values in it.
  int bucket_count() const noexcept { return bucket_count_; }
  int sub_bucket_count() const noexcept { return sub_bucket_count_; }
  int64_t lowest_equivalent(int64_t v) const noexcept;
  int64_t highest_equivalent(int64_t v) const noexcept;

  // Writes the percentile distribution in HdrHistogram's text layout, values divided by
  // `unit_ns` (default 1000: the file is in microseconds, 3 decimals = nanoseconds).
  // Returns false and sets *error if the file cannot be written.
  bool write_hgrm(const std::string& path, std::string* error, double unit_ns = 1000.0) const;
  std::string hgrm_text(double unit_ns = 1000.0) const;

 private:
  int bucket_index(int64_t v) const noexcept;
  size_t counts_index(int64_t v) const noexcept;
  int64_t value_from_index(size_t index) const noexcept;
  int64_t size_of_equivalent_range(int64_t v) const noexcept;

  int64_t highest_;
  int sub_bucket_count_ = 0, sub_bucket_half_count_ = 0, sub_bucket_half_count_magnitude_ = 0;
  int64_t sub_bucket_mask_ = 0;
  int bucket_count_ = 0;
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  size_t min_index_ = SIZE_MAX, max_index_ = 0;
};

// Writes `h` as `<data_dir>/<name>.hgrm` when data_dir is not empty (SuiteArgs::data_dir);
// prints a warning and carries on when it cannot (a missing distribution is no bench failure).
void write_distribution(const std::string& data_dir, const std::string& name, const Histogram& h);
// The same from a vector of samples in ns (the suites that keep their samples).
void write_distribution(const std::string& data_dir, const std::string& name, const std::vector<double>& samples_ns);

// A gnuplot-ready time series: `<data_dir>/<name>.dat`, a `# ` comment naming the columns and
// what they are, then one whitespace-separated row per line. Nothing when data_dir is "".
class Series {
 public:
  Series(const std::string& data_dir, const std::string& name, const std::string& comment,
         const std::vector<std::string>& columns);
  void row(const std::vector<double>& values);
  // A comment line among the rows (e.g. "# roll at 1.25 s"); gnuplot skips it.
  void note(const std::string& text);
  // Writes the file; warns on stderr when it cannot. Called by the destructor if not before.
  void flush();
  ~Series();

 private:
  std::string path_;
  std::string text_;
  bool written_ = false;
};

// Creates `dir` (and its parents); false when it cannot.
bool make_dirs(const std::string& dir);

}  // namespace sluice::bench
