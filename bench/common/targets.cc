#include "common/targets.h"

namespace sluice::bench {

namespace {
constexpr Target kTargets[] = {
    {"ratio_pingpong_p50_vs_atomic", false, 1.1},
};
}  // namespace

std::span<const Target> targets() { return kTargets; }

const Target* find_target(std::string_view figure) {
  for (const Target& t : kTargets)
    if (figure == t.figure) return &t;
  return nullptr;
}

}  // namespace sluice::bench
