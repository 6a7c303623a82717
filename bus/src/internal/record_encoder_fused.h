// The fused record encoder: encode_record for CPUs with SSE4.2 (crc32) and PCLMULQDQ.
// Same output as encode_record_portable (record_codec.h); tests/bus/record_codec_test.cc
// checks every payload size and id combination against it.
//
// Its functions carry target attributes, so they inline only into functions with the same
// attributes: record_codec.cc's encode_record and the log writer's append_fused(). Call
// them only where fused_encoder_available() is true.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "internal/record_codec.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#include <wmmintrin.h>

#define SLUICE_SSE42 __attribute__((target("sse4.2,pclmul")))

namespace sluice::log_internal::fused {

// Payloads up to this size are copied and checksummed in one pass (copy_and_crc) on a chain
// of their own; larger ones are copied with memcpy and checksummed with the three-way
// interleaved crc32c::extend.
inline constexpr size_t kFusedPayloadMax = 256;

inline void store64(std::byte* p, uint64_t v) noexcept { std::memcpy(p, &v, 8); }

// Two CRC chains, combined. The crc32 instruction has a 3-cycle latency and the record's
// words form one dependency chain; the header (7 words with the segment index) and the
// payload are instead checksummed as two independent chains, A and B, and combined as
// raw(A | B) = shift(raw(A), |B|) ^ raw(0, B), where shift(r, n) = r * x^(8n) mod P.
//
// In the bit-reflected form the instruction uses, crc32_u64(0, v) = V * x^32 mod P, and
// the carry-less product of two 32-bit reflected values is their product times x (one bit
// lower), so shift(r, n) = crc32_u64(0, clmul(r, K(n))) with K(n) = x^(8n - 33) mod P.
inline constexpr uint32_t kPolyReflected = 0x82f63b78u;
constexpr uint32_t times_x(uint32_t k) noexcept { return (k >> 1) ^ ((k & 1) ? kPolyReflected : 0); }
inline constexpr size_t kSplitMin = 16;  // shorter payloads go on chain A: K(n) needs 8n >= 33
constexpr std::array<uint32_t, kFusedPayloadMax + 1> make_shift_constants() {
  std::array<uint32_t, kFusedPayloadMax + 1> t{};
  uint32_t k = 0x80000000u;  // x^0
  for (size_t i = 0; i < 8 * kSplitMin - 33; ++i) k = times_x(k);
  for (size_t n = kSplitMin; n <= kFusedPayloadMax; ++n) {
    t[n] = k;
    for (int i = 0; i < 8; ++i) k = times_x(k);
  }
  return t;
}
inline constexpr auto kShiftConstant = make_shift_constants();

SLUICE_SSE42 inline uint64_t shift_register(uint64_t r, size_t n) noexcept {
  const __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi64_si128(static_cast<int64_t>(r)),
                                            _mm_cvtsi32_si128(static_cast<int>(kShiftConstant[n])), 0);
  return _mm_crc32_u64(0, static_cast<uint64_t>(_mm_cvtsi128_si64(prod)));
}

// c = crc32_u64(c, the 8 bytes at p), with the load folded into the crc32 instruction: GCC
// loads into a register first, one more instruction per word.
SLUICE_SSE42 inline uint64_t crc_word_at(uint64_t c, const std::byte* p) noexcept {
  // An unaligned 8-byte word that may alias anything (the operand names the source bytes
  // themselves: through a local copy GCC would store the word to the stack first).
  typedef uint64_t __attribute__((may_alias, aligned(1))) UnalignedWord;
  asm("crc32q %1, %0" : "+r"(c) : "m"(*reinterpret_cast<const UnalignedWord*>(p)));
  return c;
}

// Copies n bytes from src to dst and extends the raw CRC32C register c over them: 16-byte
// moves for the copy, the CRC from the source words (crc32 with a memory operand), 32 bytes a
// turn. The last partial word is stored zero-padded to 8 bytes (the record's padding).
// (Append, 64-byte payload: 16 bytes a turn with separate loads cost ~1.5 ns more, in a
// throwaway harness.)
SLUICE_SSE42 inline uint64_t copy_and_crc(std::byte* dst, const std::byte* src, size_t n,
                                          uint64_t c) noexcept {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), v);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 16), w);
    c = crc_word_at(c, src + i);
    c = crc_word_at(c, src + i + 8);
    c = crc_word_at(c, src + i + 16);
    c = crc_word_at(c, src + i + 24);
  }
  for (; i + 16 <= n; i += 16) {  // at most once; as a loop, GCC spills less around it
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), v);
    c = crc_word_at(c, src + i);
    c = crc_word_at(c, src + i + 8);
  }
  if (i + 8 <= n) {
    uint64_t w;
    std::memcpy(&w, src + i, 8);
    store64(dst + i, w);
    c = _mm_crc32_u64(c, w);
    i += 8;
  }
  if (const size_t r = n - i; r != 0) {
    const std::byte* s = src + i;
    uint64_t tail = 0;
    unsigned shift = 0;
    if (r & 4) {
      uint32_t x;
      std::memcpy(&x, s, 4);
      c = _mm_crc32_u32(static_cast<uint32_t>(c), x);
      tail = x;
      shift = 32;
      s += 4;
    }
    if (r & 2) {
      uint16_t x;
      std::memcpy(&x, s, 2);
      c = _mm_crc32_u16(static_cast<uint32_t>(c), x);
      tail |= uint64_t{x} << shift;
      shift += 16;
      s += 2;
    }
    if (r & 1) {
      uint8_t x;
      std::memcpy(&x, s, 1);
      c = _mm_crc32_u8(static_cast<uint32_t>(c), x);
      tail |= uint64_t{x} << shift;
    }
    store64(dst + i, tail);
  }
  return c;
}

// Stores the record header (all but length and crc) at dst and returns the raw CRC32C
// register over the segment index and header words [8, 56), computed from the registers the
// words were built in. The layout of the two packed words is the one in log_format.h
// (offsets 8 and 16); encode_record_portable is the reference.
SLUICE_SSE42 inline uint64_t store_header(std::byte* dst, uint64_t segment_index,
                                          const RecordFields& f, const EventData& e,
                                          uint8_t flags, uint32_t hlen) noexcept {
  // type, flags, header_length, event_type
  const uint64_t w1 = uint64_t{f.type} | uint64_t{flags} << 8 | uint64_t{hlen} << 16 |
                      uint64_t{e.type} << 32;
  // schema_version, codec; reserved0 and reserved1 are zero
  const uint64_t w2 = uint64_t{e.schema_version} | uint64_t{e.codec} << 16;
  const uint64_t ts = static_cast<uint64_t>(f.timestamp_ns);
  store64(dst + 8, w1);
  store64(dst + 16, w2);
  store64(dst + 24, f.position);
  store64(dst + 32, f.stream_id);
  store64(dst + 40, f.stream_version);
  store64(dst + 48, ts);
  // The raw register starts at ~0 (crc32c::value's pre-inversion), then the segment index.
  uint64_t c = _mm_crc32_u64(0xffffffffu, segment_index);
  c = _mm_crc32_u64(c, w1);
  c = _mm_crc32_u64(c, w2);
  c = _mm_crc32_u64(c, f.position);
  c = _mm_crc32_u64(c, f.stream_id);
  c = _mm_crc32_u64(c, f.stream_version);
  return _mm_crc32_u64(c, ts);
}

// Copies a payload of at most kFusedPayloadMax bytes to p, extending the header's register
// c: payloads of kSplitMin bytes or more on a chain of their own, joined to c at the end.
SLUICE_SSE42 inline uint64_t copy_short_payload(std::byte* p, const std::byte* src, size_t n,
                                                uint64_t c) noexcept {
  if (n < kSplitMin) return copy_and_crc(p, src, n, c);
  const uint64_t b = copy_and_crc(p, src, n, 0);  // chain B, beside chain A
  return shift_register(c, n) ^ b;
}

// The CRC field from the raw register.
SLUICE_SSE42 inline void store_crc(std::byte* dst, uint64_t c) noexcept {
  const uint32_t crc = crc32c::mask(~static_cast<uint32_t>(c));
  std::memcpy(dst + 4, &crc, 4);
}

// encode_record with the CRC computed from registers and from the source bytes; see
// record_codec.h for why.
SLUICE_SSE42 inline uint32_t encode_record_fused(std::byte* dst, uint64_t segment_index,
                                                 const RecordFields& f,
                                                 const EventData& e) noexcept {
  const uint8_t flags = static_cast<uint8_t>(id_flags(e) | f.extra_flags);
  const uint32_t hlen = lf::header_length_for(flags);
  const size_t n = e.payload.size();
  const uint32_t length = static_cast<uint32_t>(hlen + n);
  uint64_t c = store_header(dst, segment_index, f, e, flags, hlen);
  std::byte* p = dst + lf::kRecordHeaderSize;
  if (hlen != lf::kRecordHeaderSize) [[unlikely]] {
    for (const Id128* id : {&e.idempotency_key, &e.correlation_id, &e.causation_id}) {
      if (!id->empty()) {
        c = copy_and_crc(p, reinterpret_cast<const std::byte*>(id), lf::kIdSize, c);
        p += lf::kIdSize;
      }
    }
  }
  if (n <= kFusedPayloadMax) {
    c = copy_short_payload(p, e.payload.data(), n, c);
  } else {
    std::memcpy(p, e.payload.data(), n);
    const uint64_t padded = lf::align_up(length);
    if (padded != length) std::memset(dst + length, 0, padded - length);
    c = static_cast<uint32_t>(~crc32c::extend(~static_cast<uint32_t>(c), e.payload.data(), n));
  }
  store_crc(dst, c);
  return length;
}

// encode_record_fused for the common record: no ids (id_flags(e) == 0) and a payload of at
// most kFusedPayloadMax bytes, so no test of either. The log writer's single-event fast path.
SLUICE_SSE42 inline uint32_t encode_short_record_fused(std::byte* dst, uint64_t segment_index,
                                                       const RecordFields& f,
                                                       const EventData& e) noexcept {
  const size_t n = e.payload.size();
  uint64_t c = store_header(dst, segment_index, f, e, f.extra_flags, lf::kRecordHeaderSize);
  c = copy_short_payload(dst + lf::kRecordHeaderSize, e.payload.data(), n, c);
  store_crc(dst, c);
  return static_cast<uint32_t>(lf::kRecordHeaderSize + n);
}

}  // namespace sluice::log_internal::fused
#else
#define SLUICE_SSE42
#endif
