// Framing of one log record (bus/src/internal/record_codec.h): encode / commit / decode,
// alignment and padding, the optional ids, the masked CRC seeded by the segment index.
#include "internal/record_codec.h"
#include "internal/record_encoder_fused.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "bus/log_test_util.h"

namespace sluice::log_internal {
namespace {

namespace lf = log_format;
using sluice::testing::as_chars;

// An 8-byte aligned buffer, filled with a marker byte so that untouched bytes are visible.
class Buffer {
 public:
  explicit Buffer(size_t bytes, uint8_t fill = 0) : words_((bytes + 7) / 8) {
    std::memset(words_.data(), fill, words_.size() * 8);
  }
  std::byte* data() { return reinterpret_cast<std::byte*>(words_.data()); }
  size_t size() const { return words_.size() * 8; }
  lf::RecordHeader* header(size_t offset = 0) {
    return reinterpret_cast<lf::RecordHeader*>(data() + offset);
  }

 private:
  std::vector<uint64_t> words_;
};

RecordFields fields(uint64_t position = 42) {
  RecordFields f;
  f.type = lf::kTypeEvent;
  f.position = position;
  f.stream_id = 3;
  f.stream_version = 7;
  f.timestamp_ns = 1'700'000'000'123'456'789;
  return f;
}

// Encodes and commits `e` at offset 0 of `buf` for segment `index`; returns the length.
uint32_t write_record(Buffer& buf, uint64_t index, const EventData& e, RecordFields f = fields()) {
  const uint32_t len = encode_record(buf.data(), index, f, e);
  commit_record(buf.data(), len);
  return len;
}

RecordView view_of(Buffer& buf, uint64_t index, size_t offset = 0) {
  RecordView v;
  v.header = buf.header(offset);
  v.segment_index = index;
  v.offset = static_cast<uint32_t>(offset);
  return v;
}

// Recomputes the CRC after a header field was changed on purpose, so that decode_record
// judges the header itself rather than the checksum.
void refresh_crc(Buffer& buf, uint64_t index) {
  buf.header()->crc = record_crc(index, buf.data(), buf.header()->length);
}

// The fused encoder (registers + source bytes, two CRC chains) writes exactly what the
// reference encoder writes: every payload size around the word, split and fused-copy
// boundaries, every combination of ids and the batch flag, padding included.
TEST(RecordCodec, FusedEncoderMatchesReference) {
  size_t fused_checked = 0;  // comparisons that ran the fused encoder
  std::vector<std::byte> src(700);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::byte>(i * 131 + 7);
  for (size_t n = 0; n <= 600; n = n < 300 ? n + 1 : n + 37) {
    for (uint8_t ids = 0; ids < 8; ++ids) {
      EventData e;
      e.type = 0xdeadbeef;
      e.schema_version = 0xabcd;
      e.codec = 0x7f;
      // Odd source offsets: the payload need not be aligned.
      e.payload = std::span<const std::byte>(src.data() + (n % 3), n);
      if (ids & 1) e.idempotency_key = Id128{0x1111222233334444ull, 0x5555666677778888ull};
      if (ids & 2) e.correlation_id = Id128{0x0102030405060708ull, 0x1112131415161718ull};
      if (ids & 4) e.causation_id = Id128{0x2122232425262728ull, 0x3132333435363738ull};
      RecordFields f = fields(1000 + n);
      f.extra_flags = (n & 1) ? lf::kFlagBatchContinues : 0;
      Buffer a(n + 256, 0xee), b(n + 256, 0xee);
      const uint32_t la = encode_record(a.data(), 0x0123456789abcdefull + n, f, e);
      const uint32_t lb = encode_record_portable(b.data(), 0x0123456789abcdefull + n, f, e);
      ASSERT_EQ(la, lb) << "payload " << n << " ids " << int(ids);
      ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size())) << "payload " << n << " ids " << int(ids);
      commit_record(a.data(), la);
      uint32_t len = 0;
      ASSERT_EQ(Decode::ok, decode_record(a.data(), a.size(), 0x0123456789abcdefull + n, &len))
          << "payload " << n << " ids " << int(ids);
#if defined(__x86_64__)
      // The writer's fast-path encoder, for the records it takes: no ids, short payloads.
      if (ids == 0 && n <= fused::kFusedPayloadMax && fused_encoder_available()) {
        Buffer c(n + 256, 0xee);
        const uint32_t lc = fused::encode_short_record_fused(c.data(), 0x0123456789abcdefull + n, f, e);
        ASSERT_EQ(lc, lb) << "payload " << n;
        ASSERT_EQ(0, std::memcmp(c.data(), b.data(), c.size())) << "payload " << n;
        ++fused_checked;
      }
#endif
    }
  }
#if defined(__x86_64__)
  // Where the CPU has SSE4.2, the fused encoder must be available and must have been
  // compared: otherwise this test only compares the reference encoder with itself.
  if (__builtin_cpu_supports("sse4.2")) {
    EXPECT_TRUE(fused_encoder_available()) << "the CPU has SSE4.2, the fused encoder is off";
    EXPECT_GT(fused_checked, 100u);
  }
#endif
}

TEST(RecordCodec, RoundTripWithoutOptionalIds) {
  Buffer buf(256);
  const std::string payload = "hello, log";
  EventData e = sluice::testing::event(payload, 9);
  e.schema_version = 4;
  e.codec = 2;
  const uint32_t len = write_record(buf, 5, e);
  EXPECT_EQ(len, lf::kRecordHeaderSize + payload.size());
  EXPECT_EQ(len, record_length(e));

  uint32_t decoded = 0;
  ASSERT_EQ(decode_record(buf.data(), buf.size(), 5, &decoded), Decode::ok);
  EXPECT_EQ(decoded, len);
  const RecordView v = view_of(buf, 5);
  EXPECT_TRUE(v.is_event());
  EXPECT_EQ(v.header->flags, 0);
  EXPECT_EQ(v.header->header_length, lf::kRecordHeaderSize);
  EXPECT_EQ(v.position(), 42u);
  EXPECT_EQ(v.stream_id(), 3u);
  EXPECT_EQ(v.stream_version(), 7u);
  EXPECT_EQ(v.event_type(), 9u);
  EXPECT_EQ(v.schema_version(), 4u);
  EXPECT_EQ(v.codec(), 2u);
  EXPECT_EQ(v.timestamp_ns(), 1'700'000'000'123'456'789);
  EXPECT_EQ(as_chars(v.payload()), payload);
  EXPECT_TRUE(v.idempotency_key().empty());
  EXPECT_TRUE(v.correlation_id().empty());
  EXPECT_TRUE(v.causation_id().empty());
}

TEST(RecordCodec, RoundTripWithAllOptionalIds) {
  Buffer buf(256);
  const std::string payload = "with ids";
  EventData e = sluice::testing::event(payload);
  e.idempotency_key = {1, 2};
  e.correlation_id = {3, 4};
  e.causation_id = {5, 6};
  const uint32_t len = write_record(buf, 0, e);
  EXPECT_EQ(len, lf::kRecordHeaderSize + 3 * lf::kIdSize + payload.size());
  uint32_t decoded = 0;
  ASSERT_EQ(decode_record(buf.data(), buf.size(), 0, &decoded), Decode::ok);
  const RecordView v = view_of(buf, 0);
  EXPECT_EQ(v.header->flags, lf::kFlagIdempotencyKey | lf::kFlagCorrelationId | lf::kFlagCausationId);
  EXPECT_EQ(v.header->header_length, lf::kMaxRecordHeaderSize);
  EXPECT_EQ(v.idempotency_key(), (Id128{1, 2}));
  EXPECT_EQ(v.correlation_id(), (Id128{3, 4}));
  EXPECT_EQ(v.causation_id(), (Id128{5, 6}));
  EXPECT_EQ(as_chars(v.payload()), payload);
}

// Each id alone, and pairs: the ids present are packed in a fixed order, absent ones take no room.
TEST(RecordCodec, RoundTripWithEachSubsetOfOptionalIds) {
  for (int mask = 0; mask < 8; ++mask) {
    SCOPED_TRACE("id mask " + std::to_string(mask));
    Buffer buf(256);
    const std::string payload = "subset";
    EventData e = sluice::testing::event(payload);
    if (mask & 1) e.idempotency_key = {0x11, 0x12};
    if (mask & 2) e.correlation_id = {0x21, 0x22};
    if (mask & 4) e.causation_id = {0x31, 0x32};
    const uint32_t len = write_record(buf, 1, e);
    const int ids = (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1);
    EXPECT_EQ(len, lf::kRecordHeaderSize + ids * lf::kIdSize + payload.size());
    uint32_t decoded = 0;
    ASSERT_EQ(decode_record(buf.data(), buf.size(), 1, &decoded), Decode::ok);
    const RecordView v = view_of(buf, 1);
    EXPECT_EQ(v.header->header_length, lf::header_length_for(v.header->flags));
    EXPECT_EQ(v.idempotency_key(), (mask & 1 ? Id128{0x11, 0x12} : Id128{}));
    EXPECT_EQ(v.correlation_id(), (mask & 2 ? Id128{0x21, 0x22} : Id128{}));
    EXPECT_EQ(v.causation_id(), (mask & 4 ? Id128{0x31, 0x32} : Id128{}));
    EXPECT_EQ(as_chars(v.payload()), payload);
  }
}

TEST(RecordCodec, EmptyPayloadRoundTrips) {
  Buffer buf(128);
  const uint32_t len = write_record(buf, 2, EventData{});
  EXPECT_EQ(len, lf::kRecordHeaderSize);
  uint32_t decoded = 0;
  ASSERT_EQ(decode_record(buf.data(), buf.size(), 2, &decoded), Decode::ok);
  EXPECT_TRUE(view_of(buf, 2).payload().empty());
}

TEST(RecordCodec, PaddingToEightBytesIsZeroedAndNothingPastItIsTouched) {
  for (size_t payload_size = 0; payload_size <= 16; ++payload_size) {
    SCOPED_TRACE("payload " + std::to_string(payload_size));
    Buffer buf(256, 0xAB);
    buf.header()->length = 0;  // free space: only the length has to be zero before a write
    const std::string payload(payload_size, 'x');
    const uint32_t len = write_record(buf, 0, sluice::testing::event(payload));
    const uint64_t padded = lf::align_up(len);
    EXPECT_EQ(padded % lf::kRecordAlignment, 0u);
    EXPECT_LT(padded - len, lf::kRecordAlignment);
    for (uint64_t i = len; i < padded; ++i) EXPECT_EQ(buf.data()[i], std::byte{0}) << "padding byte " << i;
    for (uint64_t i = padded; i < buf.size(); ++i)
      ASSERT_EQ(buf.data()[i], std::byte{0xAB}) << "byte " << i << " after the record was written";
  }
}

TEST(RecordCodec, ConsecutiveRecordsStartOnEightByteBoundaries) {
  Buffer buf(1024);
  uint64_t off = 0;
  std::vector<uint64_t> offsets;
  for (size_t n : {1, 7, 8, 9, 0, 13}) {
    const std::string payload(n, 'p');
    ASSERT_EQ(off % lf::kRecordAlignment, 0u);
    offsets.push_back(off);
    const uint32_t len = encode_record(buf.data() + off, 0, fields(offsets.size()), sluice::testing::event(payload));
    commit_record(buf.data() + off, len);
    off += lf::align_up(len);
  }
  for (size_t i = 0; i < offsets.size(); ++i) {
    uint32_t len = 0;
    ASSERT_EQ(decode_record(buf.data() + offsets[i], buf.size() - offsets[i], 0, &len), Decode::ok);
    EXPECT_EQ(offsets[i] + lf::align_up(len), i + 1 < offsets.size() ? offsets[i + 1] : off);
  }
}

TEST(RecordCodec, RecordIsInvisibleUntilItsLengthIsCommitted) {
  Buffer buf(256);
  const uint32_t len = encode_record(buf.data(), 0, fields(), sluice::testing::event("pending"));
  uint32_t decoded = 0;
  EXPECT_EQ(buf.header()->length, 0u);
  EXPECT_EQ(decode_record(buf.data(), buf.size(), 0, &decoded), Decode::zero);
  commit_record(buf.data(), len);
  EXPECT_EQ(load_length(buf.data()), len);
  EXPECT_EQ(decode_record(buf.data(), buf.size(), 0, &decoded), Decode::ok);
}

TEST(RecordCodec, SameBytesInAnotherSegmentFailTheChecksum) {
  Buffer buf(256);
  write_record(buf, 7, sluice::testing::event("epoch"));
  uint32_t len = 0;
  EXPECT_EQ(decode_record(buf.data(), buf.size(), 7, &len), Decode::ok);
  EXPECT_EQ(decode_record(buf.data(), buf.size(), 6, &len), Decode::bad_crc);
  EXPECT_EQ(decode_record(buf.data(), buf.size(), 8, &len), Decode::bad_crc);
  EXPECT_EQ(decode_record(buf.data(), buf.size(), 7ull << 32, &len), Decode::bad_crc);
}

TEST(RecordCodec, StoredCrcIsTheMaskedCrc32cOfSegmentIndexThenRecordAfterCrc) {
  Buffer buf(256);
  const uint64_t index = 0x0102030405060708ull;
  const uint32_t len = write_record(buf, index, sluice::testing::event("masked"));
  uint32_t c = crc32c::value(&index, sizeof index);
  c = crc32c::extend(c, buf.data() + 8, len - 8);
  EXPECT_EQ(buf.header()->crc, crc32c::mask(c));
  EXPECT_NE(buf.header()->crc, c) << "the CRC must be stored masked";
  EXPECT_EQ(crc32c::unmask(buf.header()->crc), c);
}

TEST(Crc32c, MatchesTheCastagnoliCheckValueAndMaskRoundTrips) {
  const char check[] = "123456789";
  EXPECT_EQ(crc32c::value(check, 9), 0xE3069283u);
  // Extending in pieces gives the same value as one pass.
  EXPECT_EQ(crc32c::extend(crc32c::value(check, 4), check + 4, 5), 0xE3069283u);
  for (uint32_t v : {0u, 1u, 0xE3069283u, 0xFFFFFFFFu, 0x80000000u}) EXPECT_EQ(crc32c::unmask(crc32c::mask(v)), v);
  EXPECT_NE(crc32c::mask(0xE3069283u), 0xE3069283u);
}

TEST(RecordCodec, FlippedPayloadBitIsChecksumMismatch) {
  Buffer buf(256);
  const uint32_t len = write_record(buf, 0, sluice::testing::event("payload bits"));
  for (uint32_t byte = lf::kRecordHeaderSize; byte < len; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      buf.data()[byte] ^= std::byte(1u << bit);
      uint32_t decoded = 0;
      EXPECT_EQ(decode_record(buf.data(), buf.size(), 0, &decoded), Decode::bad_crc) << byte << ":" << bit;
      buf.data()[byte] ^= std::byte(1u << bit);
    }
  }
}

TEST(RecordCodec, ZeroLengthIsFreeSpace) {
  Buffer buf(64);
  uint32_t len = 0;
  EXPECT_EQ(decode_record(buf.data(), buf.size(), 0, &len), Decode::zero);
  EXPECT_EQ(decode_record(buf.data(), 0, 0, &len), Decode::zero);
}

TEST(RecordCodec, FewerThanEightBytesAvailableIsBadLength) {
  Buffer buf(64);
  write_record(buf, 0, EventData{});
  uint32_t len = 0;
  for (size_t avail = 1; avail < 8; ++avail) EXPECT_EQ(decode_record(buf.data(), avail, 0, &len), Decode::bad_length);
}

TEST(RecordCodec, LengthShorterThanHeaderIsBadLength) {
  Buffer buf(128);
  write_record(buf, 0, sluice::testing::event("x"));
  for (uint32_t l : {1u, 8u, lf::kRecordHeaderSize - 1}) {
    buf.header()->length = l;
    uint32_t len = 0;
    EXPECT_EQ(decode_record(buf.data(), buf.size(), 0, &len), Decode::bad_length) << l;
  }
}

TEST(RecordCodec, LengthPastAvailableBytesIsBadLength) {
  Buffer buf(128);
  const uint32_t written = write_record(buf, 0, sluice::testing::event("truncated"));
  uint32_t len = 0;
  EXPECT_EQ(decode_record(buf.data(), written - 1, 0, &len), Decode::bad_length);
  EXPECT_EQ(decode_record(buf.data(), written, 0, &len), Decode::ok);
  for (uint32_t huge : {0xFFFFFFFFu, 0x80000000u, static_cast<uint32_t>(buf.size()) + 8}) {
    buf.header()->length = huge;
    EXPECT_EQ(decode_record(buf.data(), buf.size(), 0, &len), Decode::bad_length) << huge;
  }
}

TEST(RecordCodec, UnknownFlagBitIsBadHeaderEvenWithAValidCrc) {
  for (uint8_t flag : {0x10, 0x20, 0x40, 0x80}) {
    Buffer buf(128);
    write_record(buf, 0, sluice::testing::event("flags"));
    buf.header()->flags |= flag;
    refresh_crc(buf, 0);
    uint32_t len = 0;
    EXPECT_EQ(decode_record(buf.data(), buf.size(), 0, &len), Decode::bad_header) << int(flag);
  }
}

TEST(RecordCodec, HeaderLengthInconsistentWithFlagsIsBadHeader) {
  Buffer buf(256);
  write_record(buf, 0, sluice::testing::event("a payload longer than one id.."));
  buf.header()->header_length = lf::kRecordHeaderSize + lf::kIdSize;  // no id flag set
  refresh_crc(buf, 0);
  uint32_t len = 0;
  EXPECT_EQ(decode_record(buf.data(), buf.size(), 0, &len), Decode::bad_header);
}

TEST(RecordCodec, IdFlagsClaimingMoreThanTheRecordHoldsIsBadHeader) {
  Buffer buf(256);
  write_record(buf, 0, EventData{});  // 56 bytes, no room for ids
  buf.header()->flags = lf::kFlagIdempotencyKey;
  buf.header()->header_length = lf::kRecordHeaderSize + lf::kIdSize;
  refresh_crc(buf, 0);
  uint32_t len = 0;
  EXPECT_EQ(decode_record(buf.data(), buf.size(), 0, &len), Decode::bad_header);
}

TEST(RecordCodec, TypeZeroIsBadHeaderEvenWithAValidCrc) {
  Buffer buf(128);
  write_record(buf, 0, sluice::testing::event("type"));
  buf.header()->type = lf::kTypeZero;
  refresh_crc(buf, 0);
  uint32_t len = 0;
  EXPECT_EQ(decode_record(buf.data(), buf.size(), 0, &len), Decode::bad_header);
}

TEST(RecordCodec, NonZeroReservedFieldsAreBadHeader) {
  for (int which = 0; which < 2; ++which) {
    Buffer buf(128);
    write_record(buf, 0, sluice::testing::event("reserved"));
    if (which == 0) buf.header()->reserved0 = 1;
    else buf.header()->reserved1 = 0x100;
    refresh_crc(buf, 0);
    uint32_t len = 0;
    EXPECT_EQ(decode_record(buf.data(), buf.size(), 0, &len), Decode::bad_header) << which;
  }
}

TEST(RecordCodec, DescribeBadRecordNamesReasonAndLength) {
  Buffer buf(128);
  write_record(buf, 0, sluice::testing::event("x"));
  buf.header()->length = 0xFFFFFFFF;
  const std::string s = describe_bad_record(buf.data(), buf.size(), Decode::bad_length);
  EXPECT_NE(s.find("bad length"), std::string::npos) << s;
  EXPECT_NE(s.find("4294967295"), std::string::npos) << s;
}

}  // namespace
}  // namespace sluice::log_internal
