// Codec ids and the schema-driven side of a codec.
//
// Every event record carries a codec id (log_format::RecordHeader::codec). An event type is
// bound to one codec by configuration (SchemaRegistry::bind<T>(codec)); readers decode each
// record with the codec the record names, so a log may mix codecs and the handler code that
// receives the decoded `const T&` does not change when the configuration does.
//
// Two ways to decode:
//   - typed (EventBinding<T>, binding.h): into the application's struct, on the hot path, no
//     heap allocation for fixed-size fields; raw and FlatBuffers payloads are also readable in
//     place (RawCodec::view, FlatBuffersCodec::access);
//   - schema-driven (Codec::to_document): into a JSON document from the schema stored in the
//     log alone, with no application code. `sluice dump` and upcasters use it (cold path).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sluice/status.h"

namespace sluice::serialization {

// The codec id stored in each record header. Values are part of the log format.
enum class CodecId : uint8_t {
  none = 0,         // opaque bytes: no schema, dumped as base64
  raw = 1,          // a trivially copyable struct, copied byte for byte (little-endian)
  flatbuffers = 2,  // a FlatBuffers table (schema: .bfbs binary schema)
  json = 3,         // UTF-8 JSON object text
};
inline constexpr uint8_t kMaxCodecId = 3;

std::string_view to_string(CodecId id) noexcept;
// "raw", "flatbuffers", "json" (and "none"); false for anything else.
bool parse_codec(std::string_view name, CodecId* out) noexcept;

struct Schema;

// The schema-driven side of a codec. Implementations are stateless and thread-safe.
class Codec {
 public:
  virtual ~Codec() = default;
  virtual CodecId id() const noexcept = 0;
  virtual std::string_view name() const noexcept = 0;
  // Decodes a payload written with `schema` into a JSON object. Never throws; bad bytes give
  // an invalid_argument status naming the type, version and (where known) the field.
  virtual Result<nlohmann::json> to_document(const Schema& schema,
                                             std::span<const std::byte> payload) const = 0;
};

// The built-in codec for `id`; nullptr for CodecId::none and unknown ids.
const Codec* codec_for(CodecId id) noexcept;

// Serializes a document to compact JSON text; invalid UTF-8 in strings is replaced (U+FFFD)
// rather than thrown on.
std::string to_json_text(const nlohmann::json& doc);

}  // namespace sluice::serialization
