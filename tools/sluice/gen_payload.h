// The payload `sluice gen` writes for a position: derived from the position alone, so a
// crash test can check that every acknowledged position holds exactly its bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sluice::tools {

inline void gen_payload(uint64_t position, std::byte* out, size_t n) noexcept {
  uint64_t x = position * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    std::memcpy(out + i, &x, n - i < 8 ? n - i : 8);
  }
}

}  // namespace sluice::tools
