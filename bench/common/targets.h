// The targets the issues set for benchmark figures, in one table: `sluice bench all` marks
// each figure met or missed, and `sluice bench compare` knows from it which way is better.
#pragma once

#include <span>
#include <string_view>

namespace sluice::bench {

struct Target {
  const char* figure;  // figure name as the suite reports it, e.g. "ratio_pingpong_p50_vs_atomic"
  bool at_least;       // true: the figure must be >= value; false: <= value
  double value;
};

std::span<const Target> targets();
const Target* find_target(std::string_view figure);  // nullptr when the figure has none

}  // namespace sluice::bench
