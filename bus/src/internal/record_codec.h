// Encoding and validation of single log records. Pure functions over bytes: the writer,
// the scanner, the fuzz target and the encoder benchmark all use them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "sluice/bus/crc32c.h"
#include "sluice/bus/log_format.h"
#include "sluice/bus/log_types.h"

namespace sluice::log_internal {

namespace lf = log_format;

// crc32c seeded with the segment index (the epoch), then over bytes [8, length).
inline uint32_t record_crc(uint64_t segment_index, const std::byte* rec, uint32_t length) noexcept {
  return crc32c::mask(crc32c::value_after_word(segment_index, rec + 8, length - 8));
}

// True when the event carries any of the three optional ids.
inline bool has_ids(const EventData& e) noexcept {
  const Id128& k = e.idempotency_key;
  const Id128& c = e.correlation_id;
  const Id128& z = e.causation_id;
  return (k.hi | k.lo | c.hi | c.lo | z.hi | z.lo) != 0;
}

inline uint8_t id_flags(const EventData& e) noexcept {
  const Id128& k = e.idempotency_key;
  const Id128& c = e.correlation_id;
  const Id128& z = e.causation_id;
  // Most events carry no id: one test for all three.
  if (!has_ids(e)) [[likely]] return 0;
  return static_cast<uint8_t>((k.empty() ? 0 : lf::kFlagIdempotencyKey) |
                              (c.empty() ? 0 : lf::kFlagCorrelationId) |
                              (z.empty() ? 0 : lf::kFlagCausationId));
}

// Bytes the record occupies without padding.
inline uint64_t record_length(const EventData& e) noexcept {
  return lf::header_length_for(id_flags(e)) + e.payload.size();
}

struct RecordFields {
  uint8_t type = lf::kTypeEvent;
  uint8_t extra_flags = 0;  // kFlagBatchContinues
  uint64_t position = 0;
  uint64_t stream_id = 0;
  uint64_t stream_version = 0;
  int64_t timestamp_ns = 0;
};

// Writes the whole record except `length` at dst (8-byte aligned, room for
// align_up(record_length(e)) bytes) and returns the length to commit with commit_record().
// The padding after the record is zeroed, so the bytes after a record are deterministic.
//
// Where the CPU has SSE4.2 this runs encode_record_fused (record_codec.cc): the header words
// are built in registers, stored whole and fed to the CRC from those registers; ids and
// payload are copied word by word and fed to the CRC from their source. Computing the CRC
// over the just-written bytes instead (encode_record_portable) reads 8-byte words that were
// stored as 1-, 2- and 4-byte fields, which the CPU cannot forward from its store buffer:
// BM_EncodeRecord/64 went from 23.7 ns to 10.7 ns (bench/results/log-micro-2026-11-27.md).
uint32_t encode_record(std::byte* dst, uint64_t segment_index, const RecordFields& f,
                       const EventData& e) noexcept;
// True where encode_record uses the fused encoder (record_encoder_fused.h); log writers
// opened while it is true append through it.
bool fused_encoder_available() noexcept;
// Tests: makes fused_encoder_available() false (writers opened afterwards take the portable
// append path), or true again where the CPU has the instructions.
void set_fused_encoder_enabled_for_testing(bool enabled) noexcept;

// The reference encoder: fields stored one by one, then the CRC over the written bytes.
// Same output as encode_record (checked by tests/bus/record_codec_test.cc).
inline uint32_t encode_record_portable(std::byte* dst, uint64_t segment_index,
                                       const RecordFields& f, const EventData& e) noexcept {
  const uint8_t flags = static_cast<uint8_t>(id_flags(e) | f.extra_flags);
  const uint32_t hlen = lf::header_length_for(flags);
  const uint32_t length = static_cast<uint32_t>(hlen + e.payload.size());
  auto* h = reinterpret_cast<lf::RecordHeader*>(dst);
  h->type = f.type;
  h->flags = flags;
  h->header_length = static_cast<uint16_t>(hlen);
  h->event_type = e.type;
  h->schema_version = e.schema_version;
  h->codec = e.codec;
  h->reserved0 = 0;
  h->reserved1 = 0;
  h->position = f.position;
  h->stream_id = f.stream_id;
  h->stream_version = f.stream_version;
  h->timestamp_ns = f.timestamp_ns;
  std::byte* p = dst + lf::kRecordHeaderSize;
  for (const Id128* id : {&e.idempotency_key, &e.correlation_id, &e.causation_id}) {
    if (!id->empty()) {
      std::memcpy(p, id, lf::kIdSize);
      p += lf::kIdSize;
    }
  }
  if (!e.payload.empty()) std::memcpy(p, e.payload.data(), e.payload.size());
  const uint64_t padded = lf::align_up(length);
  if (padded != length) std::memset(dst + length, 0, padded - length);
  h->crc = record_crc(segment_index, dst, length);
  return length;
}

// Commits a record written by encode_record.
// Release: publishes every byte of the record written above to a reader (in this process or
// another one mapping the same file) that acquires `length` in load_length().
inline void commit_record(std::byte* dst, uint32_t length) noexcept {
  std::atomic_ref<uint32_t>(reinterpret_cast<lf::RecordHeader*>(dst)->length)
      .store(length, std::memory_order_release);
}

// Acquire: pairs with the release in commit_record; after a non-zero result every byte of the
// record is visible.
inline uint32_t load_length(const std::byte* rec) noexcept {
  return __atomic_load_n(&reinterpret_cast<const lf::RecordHeader*>(rec)->length, __ATOMIC_ACQUIRE);
}

enum class Decode : uint8_t {
  ok,
  zero,        // length 0: free (not yet written) space
  bad_length,  // shorter than a header, or past the end of the available bytes
  bad_header,  // reserved bits set, header length inconsistent with the flags
  bad_crc,
};
const char* to_string(Decode d) noexcept;

// Validates the record at p with `available` readable bytes after it. On ok, *length is set.
Decode decode_record(const std::byte* p, size_t available, uint64_t segment_index,
                     uint32_t* length) noexcept;

// Human-readable reason for a bad record, for error messages.
std::string describe_bad_record(const std::byte* p, size_t available, Decode d);

}  // namespace sluice::log_internal
