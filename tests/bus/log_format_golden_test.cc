// The worked example of docs/log-format.md, byte for byte: if the format changes, this test
// and the document change together.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "sluice/bus/log_writer.h"

namespace sluice {
namespace {

int64_t fixed_clock() { return 1795000000123456789; }

TEST(LogFormat, WorkedExampleOfTheDocumentation) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "sluice_golden";
  std::filesystem::remove_all(dir);
  {
    LogOptions o;
    o.segment_size = 65536;
    o.clock_ns = fixed_clock;
    o.prefault = false;
    auto w = LogWriter::open(dir, o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    auto s = (*w)->stream("acct-1");
    ASSERT_TRUE(s.ok());
    const char* p = "hello";
    EventData e;
    e.type = 7;
    e.payload = std::as_bytes(std::span(p, 5));
    AppendResult r = (*w)->append(*s, ExpectedVersion::no_stream(), e);
    ASSERT_TRUE(r.ok());
  }
  std::ifstream f(dir / "00000000000000000000.seg", std::ios::binary);
  std::vector<unsigned char> got(0xd0);
  f.read(reinterpret_cast<char*>(got.data()), static_cast<std::streamsize>(got.size()));
  const char* expected_hex =
      "534c43455f5345470100000040000000" "00000000000000000000000000000000"
      "0000010000000000154d2f63fd1ee918" "00000000000000000000000093cc9956"
      "3e0000000ec866b50300380000000000" "01000000000000000000000000000000"
      "01000000000000000000000000000000" "154d2f63fd1ee918616363742d310000"
      "3d00000002ccb7e50100380007000000" "01000000000000000000000000000000"
      "01000000000000000100000000000000" "154d2f63fd1ee91868656c6c6f000000"
      "00000000000000000000000000000000";
  std::string hex;
  for (unsigned char c : got) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", c);
    hex += b;
  }
  EXPECT_EQ(hex, expected_hex);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice
