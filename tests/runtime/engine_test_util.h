// Helpers shared by the runtime tests: a fresh scratch directory and small engine options.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "sluice/runtime/engine.h"

namespace sluice::testing {

// An empty directory under the system temp dir, unique per test binary (`suite`) and case.
inline std::string fresh_engine_dir(const std::string& suite, const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("sluice-" + suite + "-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

// 4 MiB segments (rolls happen within a test), two unpinned workers.
inline EngineOptions small_engine_options() {
  EngineOptions o;
  o.log.segment_size = 4 << 20;
  o.worker_cpus = {-1, -1};
  return o;
}

}  // namespace sluice::testing
