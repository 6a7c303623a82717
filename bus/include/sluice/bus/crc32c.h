// CRC32C (Castagnoli), computed with the SSE4.2 crc32 instruction where the CPU has it
// (about 8-9 GB/s on one stream here), with a table fallback otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::crc32c {

// Extends `crc` (the value returned by an earlier call, or 0 to start) over n bytes.
uint32_t extend(uint32_t crc, const void* data, size_t n) noexcept;
inline uint32_t value(const void* data, size_t n) noexcept { return extend(0, data, n); }
// value() of the 8 little-endian bytes of `word` followed by n bytes of data, in one call.
uint32_t value_after_word(uint64_t word, const void* data, size_t n) noexcept;

// leveldb's masking: a CRC stored next to the data it covers is rotated and offset, so that
// a CRC computed over bytes that contain CRCs does not collide with them.
inline constexpr uint32_t kMaskDelta = 0xa282ead8u;
constexpr uint32_t mask(uint32_t crc) noexcept { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
constexpr uint32_t unmask(uint32_t masked) noexcept {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// True when the hardware instruction is in use.
bool hardware_accelerated() noexcept;

}  // namespace sluice::crc32c
