// The bus alone from the installed package: write one event, read it back.
#include <cstdio>
#include <filesystem>
#include <string>

#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "bus-consumer-log";
  std::filesystem::remove_all(dir);
  {
    sluice::LogOptions o;
    o.segment_size = 1 << 20;
    auto w = sluice::LogWriter::open(dir, o);
    if (!w.ok()) return 1;
    auto id = (*w)->stream("s");
    const std::byte payload[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
    sluice::EventData e;
    e.type = 1;
    e.payload = payload;
    if (!id.ok() || !(*w)->append(*id, sluice::ExpectedVersion::any(), e).ok() || !(*w)->close().ok()) return 1;
  }
  auto r = sluice::LogReader::open(dir);
  if (!r.ok() || (*r)->end_position() != 1) return 1;
  std::printf("bus consumer: ok\n");
  return 0;
}
