// Schema-driven decoding of raw and JSON payloads, the codec table, documents of a
// registry's records and the upcaster chain.
#include <cstring>
#include <exception>

#include "internal/codecs.h"

namespace sluice::serialization {

namespace {

using nlohmann::json;

// Deepest [ / { nesting of JSON text, ignoring brackets in strings (documents printed by the
// serializer recurse, so an absurdly nested payload is refused before parsing).
size_t nesting_depth(std::string_view text) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

template <class U>
json read_as(const std::byte* p) {
  U v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

namespace internal {

Result<nlohmann::json> RawDocumentCodec::to_document(const Schema& schema,
                                                    std::span<const std::byte> payload) const {
  if (payload.size() != schema.struct_size)
    return Status(StatusCode::invalid_argument,
                  schema.describe() + ": raw payload of " + std::to_string(payload.size()) +
                      " bytes, the struct has " + std::to_string(schema.struct_size));
  json out = json::object();
  for (const FieldDef& f : schema.fields) {
    const std::byte* p = payload.data() + f.offset;  // offsets checked when the schema loaded
    json v;
    switch (f.type) {
      case FieldType::boolean: v = std::to_integer<uint8_t>(*p) != 0; break;
      case FieldType::i8: v = read_as<int8_t>(p); break;
      case FieldType::u8: v = read_as<uint8_t>(p); break;
      case FieldType::i16: v = read_as<int16_t>(p); break;
      case FieldType::u16: v = read_as<uint16_t>(p); break;
      case FieldType::i32: v = read_as<int32_t>(p); break;
      case FieldType::u32: v = read_as<uint32_t>(p); break;
      case FieldType::i64: v = read_as<int64_t>(p); break;
      case FieldType::u64: v = read_as<uint64_t>(p); break;
      case FieldType::f32: v = read_as<float>(p); break;
      case FieldType::f64: v = read_as<double>(p); break;
      case FieldType::string: {
        const char* c = reinterpret_cast<const char*>(p);
        v = std::string(c, strnlen(c, f.size));
        break;
      }
      case FieldType::composite: break;
    }
    out[f.name] = std::move(v);
  }
  return out;
}

Result<nlohmann::json> JsonDocumentCodec::to_document(const Schema& schema,
                                                     std::span<const std::byte> payload) const {
  const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (nesting_depth(text) > static_cast<size_t>(kMaxDepth))
    return Status(StatusCode::invalid_argument,
                  schema.describe() + ": JSON nested deeper than " + std::to_string(kMaxDepth));
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return Status(StatusCode::invalid_argument, schema.describe() + ": malformed JSON (" +
                                                    std::to_string(payload.size()) + " bytes)");
  if (!doc.is_object())
    return Status(StatusCode::invalid_argument, schema.describe() + ": JSON payload is not an object");
  return doc;
}

}  // namespace internal

const Codec* codec_for(CodecId id) noexcept {
  static const internal::RawDocumentCodec raw;
  static const internal::JsonDocumentCodec json_codec;
  static const internal::FlatBuffersDocumentCodec fb;
  switch (id) {
    case CodecId::raw: return &raw;
    case CodecId::json: return &json_codec;
    case CodecId::flatbuffers: return &fb;
  }
  return nullptr;
}

Result<nlohmann::json> to_document(const SchemaRegistry& registry, uint32_t id, uint16_t version,
                                   CodecId codec, std::span<const std::byte> payload) {
  codec = decode_codec(static_cast<uint8_t>(codec));
  const Schema* s = registry.find(id, version, codec);
  if (s == nullptr) {
    const std::string_view name = registry.type_name(id);
    return Status(StatusCode::not_found,
                  "no schema for type id " + std::to_string(id) +
                      (name.empty() ? std::string(" (unknown type)") : " (" + std::string(name) + ")") +
                      " v" + std::to_string(version) + " (" + std::string(to_string(codec)) + ")");
  }
  const Codec* c = codec_for(codec);
  if (c == nullptr) return Status(StatusCode::invalid_argument, s->describe() + ": no such codec");
  return c->to_document(*s, payload);
}

Status upcast(const SchemaRegistry& registry, uint32_t id, uint16_t from, uint16_t to, nlohmann::json* doc) {
  const std::string name(registry.type_name(id));
  for (uint16_t v = from; v < to; ++v) {
    if (const Upcaster* step = registry.upcaster(name, v)) {
      Status st;
      try {
        st = (*step)(*doc);
      } catch (const std::exception& e) {
        st = Status(StatusCode::invalid_argument, std::string("threw: ") + e.what());
      }
      if (!st.ok())
        return Status(st.code(), name + ": upcaster v" + std::to_string(v) + " -> v" +
                                     std::to_string(v + 1) + " failed: " + st.message());
      continue;
    }
    const Schema* older = registry.find(id, v);
    const Schema* newer = registry.find(id, static_cast<uint16_t>(v + 1));
    if (older == nullptr || newer == nullptr)
      return Status(StatusCode::not_found,
                    name + ": no upcaster path from v" + std::to_string(from) + " to v" +
                        std::to_string(to) + ": no upcaster v" + std::to_string(v) + " -> v" +
                        std::to_string(v + 1) + " and no schema of v" +
                        std::to_string(older == nullptr ? v : v + 1) + " to check compatibility");
    if (Status st = check_compatible(*older, *newer); !st.ok())
      return Status(StatusCode::invalid_argument, name + ": no upcaster path from v" +
                                                      std::to_string(from) + " to v" +
                                                      std::to_string(to) + ": " + st.message());
    // Compatible step: fields the newer version adds get their defaults when decoded.
  }
  return Status();
}

}  // namespace sluice::serialization
