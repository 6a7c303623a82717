// check_atomic_writes(): the crash-image check shared by the tests of every file that is
// replaced whole (write_file_atomically and its users: checkpoints, aggregate snapshots,
// sluice.meta). It writes versions 1..n of one file through a CrashFs, with a crash point in
// every file-system call and one after each write returned OK (acknowledged), builds crash
// images of each point, and reads the file back from each image. Allowed outcomes:
//   - the acknowledged version (or, before the first acknowledgement, no file at all);
//   - the version being written, whole (the crash came after its rename reached the disk).
// Anything else is counted: unreadable (torn, empty, corrupt), missing although a version
// was acknowledged, older than the acknowledged version, newer than the one being written.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "bus/crash_fs.h"
#include "sluice/status.h"

namespace sluice::testing {

struct AtomicWriteCrashReport {
  uint64_t crash_points = 0;
  uint64_t images = 0;
  uint64_t old_kept = 0;     // images holding the acknowledged version (or none before any)
  uint64_t new_seen = 0;     // images holding the version being written
  uint64_t unreadable = 0;   // torn, empty or corrupt
  uint64_t missing = 0;      // no file although a version was acknowledged
  uint64_t older = 0;        // a version older than the acknowledged one
  uint64_t newer = 0;        // a version never written by then
  std::string first_failure; // where and what, for the assertion message

  uint64_t failures() const { return unreadable + missing + older + newer; }
  std::string summary() const {
    return std::to_string(images) + " images of " + std::to_string(crash_points) + " crash points: " +
           std::to_string(old_kept) + " old, " + std::to_string(new_seen) + " new, " + std::to_string(unreadable) +
           " unreadable, " + std::to_string(missing) + " missing, " + std::to_string(older) + " older, " +
           std::to_string(newer) + " newer" + (first_failure.empty() ? "" : "; first: " + first_failure);
  }
};

// write(k) -> Status writes version k (k = 1..versions) through `fs`.
// read(image_dir) -> Result<std::optional<uint64_t>>: the version the image holds, nullopt
// when it holds no file, an error when the file cannot be read whole.
template <class Write, class Read>
AtomicWriteCrashReport check_atomic_writes(CrashFs& fs, const std::string& image_dir, uint64_t versions,
                                           int images_per_point, uint64_t seed, Write&& write, Read&& read) {
  AtomicWriteCrashReport r;
  uint64_t acked = 0;  // one thread: the probe is called from this thread's file-system calls
  fs.set_acknowledged_probe([&acked] { return acked; });
  std::mt19937_64 rng(seed);
  auto fail = [&r](uint64_t* counter, const CrashFs::CrashPoint& cp, const std::string& what) {
    ++*counter;
    if (r.first_failure.empty())
      r.first_failure = "crash in '" + cp.where + "' (acknowledged " + std::to_string(cp.acknowledged) + "): " + what;
  };
  for (uint64_t k = 1; k <= versions; ++k) {
    fs.capture_in_calls(1);
    const Status st = write(k);
    fs.capture_in_calls(0);
    if (!st.ok()) {
      r.first_failure = "write of version " + std::to_string(k) + " failed: " + st.to_string();
      ++r.newer;  // counted as a failure: the check cannot go on
      return r;
    }
    acked = k;
    fs.capture("after-ack");
    for (const CrashFs::CrashPoint& cp : fs.take_captures()) {
      ++r.crash_points;
      const uint64_t ack = cp.acknowledged;
      const uint64_t writing = cp.where == "after-ack" ? ack : ack + 1;
      for (int i = 0; i < images_per_point; ++i) {
        CrashFs::build_image(cp, rng, image_dir, nullptr);
        ++r.images;
        auto got = read(image_dir);
        if (!got.ok()) {
          fail(&r.unreadable, cp, got.status().to_string());
        } else if (!got.value().has_value()) {
          if (ack == 0) ++r.old_kept;
          else fail(&r.missing, cp, "no file");
        } else if (*got.value() == ack) {
          ++r.old_kept;
        } else if (*got.value() == writing) {
          ++r.new_seen;
        } else if (*got.value() < ack) {
          fail(&r.older, cp, "version " + std::to_string(*got.value()));
        } else {
          fail(&r.newer, cp, "version " + std::to_string(*got.value()));
        }
      }
    }
  }
  return r;
}

}  // namespace sluice::testing
