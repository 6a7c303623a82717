// libFuzzer target: arbitrary bytes as a projection's checkpoint file, read by
// read_checkpoint(). A hostile or truncated file must give a value or a clear error naming
// the file, never a crash or an out-of-bounds read; a file that is accepted holds the payload
// its header declares.
//   SLUICE_FUZZ_SEED_DIR=corpus ./projections_checkpoint_reader_fuzz -runs=0   # seeds
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz_files.h"
#include "sluice/projections/checkpoint.h"

namespace {

#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

const std::string& log_dir() {
  static const std::string d = [] {
    const std::string dir = sluice::fuzz::scratch_dir() + "/log";
    std::filesystem::create_directories(sluice::checkpoint_dir(dir));
    // Seeds: real checkpoints, empty and with a payload.
    for (const char* payload : {"", "a read model's snapshot bytes"}) {
      sluice::CheckpointData c;
      c.position = 42;
      c.applied_address = 4096;
      c.events_applied = 42;
      c.digest = 0x1234;
      c.written_ns = 1;
      c.payload = payload;
      if (sluice::write_checkpoint(dir, "seed", c).ok()) {
        std::ifstream in(sluice::checkpoint_path(dir, "seed"), std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        sluice::fuzz::write_seed(*payload ? "checkpoint_payload" : "checkpoint_empty", bytes);
      }
    }
    return dir;
  }();
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = log_dir();
  sluice::fuzz::write_bytes(sluice::checkpoint_path(dir, "p"), data, size);
  auto r = sluice::read_checkpoint(dir, "p");
  if (!r.ok()) {
    FUZZ_CHECK(r.status().message().find("p.ckpt") != std::string::npos);
    return 0;
  }
  if (r.value().has_value()) FUZZ_CHECK(r.value()->payload.size() + 72 <= size);
  return 0;
}
