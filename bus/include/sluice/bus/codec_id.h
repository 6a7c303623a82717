// CodecId: how an event record's payload is encoded — the record header's `codec` byte
// (log_format::RecordHeader::codec, docs/log-format.md "Codec ids"). One enum for every
// layer: the bus writes the byte, serialization encodes and decodes by it, projections and
// the tools name it.
//
//   byte  name         payload
//   0     raw          a trivially copyable struct's bytes, little-endian. Described by a
//                      schema record (raw, with field offsets) when the log has one for the
//                      (type, version); otherwise opaque to tools (a plain LogWriter::append,
//                      projections' encode_raw with the kEventType convention).
//   1     (raw)        written only by serialization before the codec ids were unified (its
//                      raw codec was 1 then): read as raw, never written. decode_codec() maps it.
//   2     flatbuffers  a FlatBuffers table (schema: the .bfbs binary schema)
//   3     json         UTF-8 JSON object text
//   4..255             unknown: readers report "unknown codec id N"
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice {

enum class CodecId : uint8_t {
  raw = 0,
  flatbuffers = 2,
  json = 3,
};
// The highest codec id a reader knows.
inline constexpr uint8_t kMaxCodecId = 3;
// The byte serialization wrote for raw before the ids were unified: read as raw.
inline constexpr uint8_t kLegacyRawCodecByte = 1;

// The codec a record header's byte names: 1 (the old raw) reads as raw; unknown bytes are
// returned as they are (known_codec() is false for them).
constexpr CodecId decode_codec(uint8_t byte) noexcept {
  return byte == kLegacyRawCodecByte ? CodecId::raw : static_cast<CodecId>(byte);
}
constexpr bool known_codec(CodecId id) noexcept {
  return id == CodecId::raw || id == CodecId::flatbuffers || id == CodecId::json;
}

// "raw", "flatbuffers", "json"; "unknown" for any other value.
std::string_view to_string(CodecId id) noexcept;
// The name of a record header's codec byte: "raw" for 0 and 1, "flatbuffers", "json", else
// "unknown".
inline std::string_view codec_name(uint8_t byte) noexcept { return to_string(decode_codec(byte)); }
// "raw", "flatbuffers", "json"; false (and *out unchanged) for anything else.
bool parse_codec(std::string_view name, CodecId* out) noexcept;

}  // namespace sluice
