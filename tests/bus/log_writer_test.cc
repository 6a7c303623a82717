#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"

namespace sluice {
namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

TEST(LogWriter, AppendsAndReadsBack) {
  auto dir = std::filesystem::temp_directory_path() / "sluice_smoke";
  std::filesystem::remove_all(dir);
  LogOptions o;
  o.segment_size = 64 * 1024;
  {
    auto w = LogWriter::open(dir, o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    auto s = (*w)->stream("acct-1");
    ASSERT_TRUE(s.ok());
    for (int i = 0; i < 2000; ++i) {
      std::string p = "payload-" + std::to_string(i);
      EventData e;
      e.type = 7;
      e.payload = bytes(p);
      auto r = (*w)->append(*s, ExpectedVersion::exact(i), e);
      ASSERT_TRUE(r.ok()) << (*w)->last_error().to_string();
      ASSERT_EQ(r.position, static_cast<uint64_t>(i));
    }
    EXPECT_GT((*w)->stats().segment_rolls, 0u);
  }
  auto r = LogReader::open(dir);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->end_position(), 2000u);
  RecordView v;
  ASSERT_TRUE((*r)->read(1999, &v));
  std::string_view p(reinterpret_cast<const char*>(v.payload().data()), v.payload().size());
  EXPECT_EQ(p, "payload-1999");
  EXPECT_EQ(v.stream_version(), 2000u);
}

}  // namespace
}  // namespace sluice
