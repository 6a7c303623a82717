#include "sluice/bus/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace sluice {
namespace {

// Bitwise reference, independent of the implementation's tables and instructions.
uint32_t reference(uint32_t crc, const uint8_t* p, size_t n) {
  uint32_t c = ~crc;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
  }
  return ~c;
}

TEST(Crc32c, KnownVectors) {
  // RFC 3720 B.4: 32 bytes of zeros, of 0xff, and the check value of "123456789".
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff);
  EXPECT_EQ(crc32c::value(zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(crc32c::value(ones.data(), ones.size()), 0x62a8ab43u);
  EXPECT_EQ(crc32c::value("123456789", 9), 0xe3069283u);
}

TEST(Crc32c, MatchesBitwiseReferenceForEveryLengthAndAlignment) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> buf(4096 + 16);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t len = 0; len < 2100; len += (len < 800 ? 1 : 37)) {
    for (size_t align = 0; align < 8; align += 3) {
      const uint8_t* p = buf.data() + align;
      ASSERT_EQ(crc32c::value(p, len), reference(0, p, len)) << "len " << len << " align " << align;
    }
  }
}

TEST(Crc32c, ExtendEqualsWholeBuffer) {
  std::vector<uint8_t> buf(1000);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 7);
  for (size_t split : {0, 1, 8, 97, 500, 1000}) {
    uint32_t c = crc32c::value(buf.data(), split);
    c = crc32c::extend(c, buf.data() + split, buf.size() - split);
    EXPECT_EQ(c, crc32c::value(buf.data(), buf.size())) << split;
  }
}

TEST(Crc32c, MaskRoundTrips) {
  for (uint32_t v : {0u, 1u, 0xe3069283u, 0xffffffffu})
    EXPECT_EQ(crc32c::unmask(crc32c::mask(v)), v);
  EXPECT_NE(crc32c::mask(0xe3069283u), 0xe3069283u);
}

}  // namespace
}  // namespace sluice
