// Built against the installed package only: writes a log, reads it back, and compiles a
// projection against the public projection API. Exit 0 on success.
#include <cstdio>
#include <filesystem>
#include <string>

#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "sluice/projections/projection.h"

struct Deposited {
  static constexpr uint32_t kEventType = 1;
  int64_t amount;
};

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "consumer-log";
  std::filesystem::remove_all(dir);
  {
    sluice::LogOptions o;
    o.segment_size = 1 << 20;
    auto w = sluice::LogWriter::open(dir, o);
    if (!w.ok()) return std::fprintf(stderr, "open: %s\n", w.status().message().c_str()), 1;
    auto id = (*w)->stream("account-1");
    if (!id.ok()) return 1;
    const Deposited d{42};
    sluice::EventData e;
    e.type = Deposited::kEventType;
    e.payload = std::as_bytes(std::span(&d, 1));
    if (!(*w)->append(*id, sluice::ExpectedVersion::any(), e).ok()) return 1;
    if (!(*w)->close().ok()) return 1;
  }
  auto r = sluice::LogReader::open(dir);
  if (!r.ok() || (*r)->end_position() != 1) return std::fprintf(stderr, "read back failed\n"), 1;
  std::printf("consumer: 1 event written and read back through the installed sluice package\n");
  return 0;
}
