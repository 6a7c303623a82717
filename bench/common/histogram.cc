#include "common/histogram.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace sluice::bench {

// The layout of HdrHistogram with unit magnitude 0 (1 ns is the smallest distinct value):
// bucket 0 holds 0..2047 one by one; bucket b >= 1 holds its upper half (1024..2047) << b,
// so each value is kept to within 1/1024 of itself (better than 3 significant digits).
Histogram::Histogram(int64_t highest) : highest_(std::max<int64_t>(highest, 2)) {
  const int64_t single_unit_resolution = 2 * static_cast<int64_t>(std::pow(10, kSignificantDigits));
  const int sub_bucket_count_magnitude =
      static_cast<int>(std::ceil(std::log2(static_cast<double>(single_unit_resolution))));
  sub_bucket_half_count_magnitude_ = std::max(sub_bucket_count_magnitude, 1) - 1;
  sub_bucket_count_ = 1 << (sub_bucket_half_count_magnitude_ + 1);
  sub_bucket_half_count_ = sub_bucket_count_ / 2;
  sub_bucket_mask_ = static_cast<int64_t>(sub_bucket_count_) - 1;
  int64_t smallest_untrackable = sub_bucket_count_;
  int buckets = 1;
  while (smallest_untrackable <= highest_) {
    if (smallest_untrackable > std::numeric_limits<int64_t>::max() / 2) {
      ++buckets;
      break;
    }
    smallest_untrackable <<= 1;
    ++buckets;
  }
  bucket_count_ = buckets;
  counts_.assign(static_cast<size_t>(bucket_count_ + 1) * static_cast<size_t>(sub_bucket_half_count_), 0);
  if (highest_ >= smallest_untrackable) highest_ = smallest_untrackable - 1;
}

int Histogram::bucket_index(int64_t v) const noexcept {
  const int pow2ceiling = 64 - __builtin_clzll(static_cast<uint64_t>(v | sub_bucket_mask_));
  return pow2ceiling - (sub_bucket_half_count_magnitude_ + 1);
}

size_t Histogram::counts_index(int64_t v) const noexcept {
  const int b = bucket_index(v);
  const int64_t sub = v >> b;
  return (static_cast<size_t>(b + 1) << sub_bucket_half_count_magnitude_) +
         static_cast<size_t>(sub - sub_bucket_half_count_);
}

int64_t Histogram::value_from_index(size_t index) const noexcept {
  int b = static_cast<int>(index >> sub_bucket_half_count_magnitude_) - 1;
  int64_t sub = static_cast<int64_t>(index & static_cast<size_t>(sub_bucket_half_count_ - 1)) + sub_bucket_half_count_;
  if (b < 0) {
    sub -= sub_bucket_half_count_;
    b = 0;
  }
  return sub << b;
}

int64_t Histogram::size_of_equivalent_range(int64_t v) const noexcept {
  const int b = bucket_index(v);
  const int64_t sub = v >> b;
  return int64_t{1} << (sub >= sub_bucket_count_ ? b + 1 : b);
}

int64_t Histogram::lowest_equivalent(int64_t v) const noexcept {
  const int b = bucket_index(v);
  return (v >> b) << b;
}

int64_t Histogram::highest_equivalent(int64_t v) const noexcept {
  return lowest_equivalent(v) + size_of_equivalent_range(v) - 1;
}

void Histogram::record_n(int64_t value_ns, uint64_t n) noexcept {
  const int64_t v = std::clamp<int64_t>(value_ns, 0, highest_);
  const size_t i = counts_index(v);
  counts_[i] += n;
  total_ += n;
  min_index_ = std::min(min_index_, i);
  max_index_ = std::max(max_index_, i);
}

void Histogram::record_corrected(int64_t value_ns, int64_t expected_interval_ns) noexcept {
  value_ns = std::clamp<int64_t>(value_ns, 0, highest_);  // a bogus huge value: bounded work
  record(value_ns);
  if (expected_interval_ns <= 0 || value_ns <= expected_interval_ns) return;
  for (int64_t missing = value_ns - expected_interval_ns; missing >= expected_interval_ns;
       missing -= expected_interval_ns)
    record(missing);
}

void Histogram::add(const Histogram& other) noexcept {
  if (other.counts_.size() != counts_.size()) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  min_index_ = std::min(min_index_, other.min_index_);
  max_index_ = std::max(max_index_, other.max_index_);
}

void Histogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = 0;
  min_index_ = SIZE_MAX;
  max_index_ = 0;
}

int64_t Histogram::min() const noexcept { return total_ == 0 ? 0 : lowest_equivalent(value_from_index(min_index_)); }

int64_t Histogram::max() const noexcept { return total_ == 0 ? 0 : highest_equivalent(value_from_index(max_index_)); }

double Histogram::mean() const noexcept {
  if (total_ == 0) return 0;
  double sum = 0;
  for (size_t i = min_index_; i <= max_index_; ++i) {
    if (counts_[i] == 0) continue;
    const int64_t v = value_from_index(i);
    const double median = static_cast<double>(lowest_equivalent(v) + (size_of_equivalent_range(v) >> 1));
    sum += median * static_cast<double>(counts_[i]);
  }
  return sum / static_cast<double>(total_);
}

double Histogram::stddev() const noexcept {
  if (total_ == 0) return 0;
  const double m = mean();
  double sq = 0;
  for (size_t i = min_index_; i <= max_index_; ++i) {
    if (counts_[i] == 0) continue;
    const int64_t v = value_from_index(i);
    const double d = static_cast<double>(lowest_equivalent(v) + (size_of_equivalent_range(v) >> 1)) - m;
    sq += d * d * static_cast<double>(counts_[i]);
  }
  return std::sqrt(sq / static_cast<double>(total_));
}

// HdrHistogram's getValueAtPercentile: the sample at rank ceil(p/100 * count) (p nudged down
// by one ulp, so that 50 % of 10 samples is the 5th), at least the first.
int64_t Histogram::value_at_percentile(double p) const noexcept {
  if (total_ == 0) return 0;
  const double requested = std::clamp(std::nextafter(p, -std::numeric_limits<double>::infinity()), 0.0, 100.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(requested * static_cast<double>(total_) / 100.0));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t cum = 0;
  for (size_t i = min_index_; i <= max_index_; ++i) {
    cum += counts_[i];
    if (cum >= rank) {
      const int64_t v = value_from_index(i);
      return p <= 0 ? lowest_equivalent(v) : highest_equivalent(v);
    }
  }
  return max();
}

// outputPercentileDistribution(out, 5 ticks per half distance, unit): one row each time the
// cumulative percentile reaches the next reporting level; the levels get denser towards 100 %
// (5 per halving of the distance to 100 %), and a last row at 100 %.
std::string Histogram::hgrm_text(double unit_ns) const {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
  out += line;
  constexpr int kTicksPerHalfDistance = 5;
  if (total_ > 0) {
    double level = 0;
    uint64_t cum = 0;
    for (size_t i = min_index_; i <= max_index_; ++i) {
      if (counts_[i] == 0) continue;
      cum += counts_[i];
      const double value = static_cast<double>(highest_equivalent(value_from_index(i))) / unit_ns;
      const double reached = 100.0 * static_cast<double>(cum) / static_cast<double>(total_);
      while (reached >= level) {
        std::snprintf(line, sizeof line, "%12.*f %2.12f %10llu %14.2f\n", kSignificantDigits, value, level / 100.0,
                      static_cast<unsigned long long>(cum), 1.0 / (1.0 - level / 100.0));
        out += line;
        const auto ticks = static_cast<int64_t>(
            kTicksPerHalfDistance *
            std::pow(2.0, static_cast<double>(static_cast<int64_t>(std::log2(100.0 / (100.0 - level)))) + 1));
        level += 100.0 / static_cast<double>(ticks);
        if (cum == total_) break;  // the last value: one row, then the 100 % row below
      }
      if (cum == total_) {
        std::snprintf(line, sizeof line, "%12.*f %2.12f %10llu\n", kSignificantDigits, value, 1.0,
                      static_cast<unsigned long long>(cum));
        out += line;
        break;
      }
    }
  }
  std::snprintf(line, sizeof line, "#[Mean    = %12.*f, StdDeviation   = %12.*f]\n", kSignificantDigits,
                mean() / unit_ns, kSignificantDigits, stddev() / unit_ns);
  out += line;
  std::snprintf(line, sizeof line, "#[Max     = %12.*f, Total count    = %12llu]\n", kSignificantDigits,
                static_cast<double>(max()) / unit_ns, static_cast<unsigned long long>(total_));
  out += line;
  std::snprintf(line, sizeof line, "#[Buckets = %12d, SubBuckets     = %12d]\n", bucket_count_, sub_bucket_count_);
  out += line;
  return out;
}

namespace {

bool write_file(const std::string& path, const std::string& text, std::string* error) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    *error = "cannot create " + path + ": " + std::strerror(errno);
    return false;
  }
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace

bool Histogram::write_hgrm(const std::string& path, std::string* error, double unit_ns) const {
  return write_file(path, hgrm_text(unit_ns), error);
}

bool make_dirs(const std::string& dir) {
  if (dir.empty()) return false;
  for (size_t pos = 1;; ++pos) {
    pos = dir.find('/', pos);
    const std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) return false;
    if (pos == std::string::npos) return true;
  }
}

void write_distribution(const std::string& data_dir, const std::string& name, const Histogram& h) {
  if (data_dir.empty()) return;
  std::string err;
  if (!make_dirs(data_dir) || !h.write_hgrm(data_dir + "/" + name + ".hgrm", &err))
    std::fprintf(stderr, "warning: distribution %s not written: %s\n", name.c_str(),
                 err.empty() ? ("cannot create " + data_dir).c_str() : err.c_str());
}

void write_distribution(const std::string& data_dir, const std::string& name, const std::vector<double>& samples_ns) {
  if (data_dir.empty()) return;
  Histogram h;
  for (double s : samples_ns) h.record(std::llround(s));
  write_distribution(data_dir, name, h);
}

Series::Series(const std::string& data_dir, const std::string& name, const std::string& comment,
               const std::vector<std::string>& columns) {
  if (data_dir.empty()) {
    written_ = true;
    return;
  }
  path_ = data_dir + "/" + name + ".dat";
  text_ = "# " + comment + "\n#";
  for (const std::string& c : columns) text_ += " " + c;
  text_ += "\n";
}

void Series::row(const std::vector<double>& values) {
  if (written_) return;
  char buf[64];
  for (size_t i = 0; i < values.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.9g", i == 0 ? "" : " ", values[i]);
    text_ += buf;
  }
  text_ += "\n";
}

void Series::note(const std::string& text) {
  if (!written_) text_ += "# " + text + "\n";
}

void Series::flush() {
  if (written_) return;
  written_ = true;
  std::string err;
  const std::string dir = path_.substr(0, path_.rfind('/'));
  if (!make_dirs(dir) || !write_file(path_, text_, &err))
    std::fprintf(stderr, "warning: series %s not written: %s\n", path_.c_str(),
                 err.empty() ? ("cannot create " + dir).c_str() : err.c_str());
}

Series::~Series() { flush(); }

}  // namespace sluice::bench
