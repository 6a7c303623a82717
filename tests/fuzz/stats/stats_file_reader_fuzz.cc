// libFuzzer target: arbitrary bytes as a stats (counters) file, opened by
// CountersFile::open_read and read by read_stats() (what `sluice stat` shows). A hostile or
// truncated file must give a clear error or a reading, never a crash or an out-of-bounds
// read.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_files.h"
#include "sluice/stats/counters_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    const std::string p = sluice::fuzz::scratch_dir() + "/stats";
    // Seed: a real file with one projection slot.
    const std::string seed_path = sluice::fuzz::scratch_dir() + "/seed.stats";
    sluice::counters::CountersFile::Meta meta;
    meta.log_dir = "/var/log/sluice";
    meta.segment_size = 1 << 20;
    meta.slot_count = 2;
    if (auto f = sluice::counters::CountersFile::create(seed_path, meta); f.ok()) {
      (void)(*f)->allocate(sluice::counters::SlotKind::projection, "balances");
      FILE* in = std::fopen(seed_path.c_str(), "rb");
      std::string bytes;
      for (int c; in != nullptr && (c = std::fgetc(in)) != EOF;) bytes.push_back(static_cast<char>(c));
      if (in != nullptr) std::fclose(in);
      sluice::fuzz::write_seed("stats_one_slot", bytes);
    }
    return p;
  }();
  sluice::fuzz::write_bytes(path, data, size);
  auto f = sluice::counters::CountersFile::open_read(path);
  if (!f.ok()) {
    if (f.status().message().find(path) == std::string::npos) std::abort();
    return 0;
  }
  (void)sluice::counters::read_stats(**f);
  return 0;
}
