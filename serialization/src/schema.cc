// Schema entries (the payload of a kTypeSchema record), field lists and the compatibility
// check. Everything here is the cold path: registration and loading.
#include "sluice/serialization/schema.h"

#include <flatbuffers/reflection.h>

#include <cstring>

#include "sluice/serialization/document.h"

namespace sluice::serialization {

namespace {

using nlohmann::json;

constexpr size_t align8(size_t n) { return (n + 7) & ~size_t{7}; }

template <class U>
void put(std::vector<std::byte>& out, size_t at, U v) {
  std::memcpy(out.data() + at, &v, sizeof v);
}
template <class U>
U get(std::span<const std::byte> in, size_t at) {
  U v;
  std::memcpy(&v, in.data() + at, sizeof v);
  return v;
}

Status bad_entry(const std::string& what) {
  return Status(StatusCode::invalid_argument, "schema entry: " + what);
}

// Integer types that widen without loss: (from, to).
bool widens(FieldType from, FieldType to) {
  auto rank = [](FieldType t, bool* is_signed) -> int {
    switch (t) {
      case FieldType::i8: *is_signed = true; return 1;
      case FieldType::i16: *is_signed = true; return 2;
      case FieldType::i32: *is_signed = true; return 3;
      case FieldType::i64: *is_signed = true; return 4;
      case FieldType::u8: *is_signed = false; return 1;
      case FieldType::u16: *is_signed = false; return 2;
      case FieldType::u32: *is_signed = false; return 3;
      case FieldType::u64: *is_signed = false; return 4;
      default: return 0;
    }
  };
  if (from == FieldType::f32 && to == FieldType::f64) return true;
  bool fs = false, ts = false;
  const int fr = rank(from, &fs), tr = rank(to, &ts);
  if (fr == 0 || tr == 0) return false;
  if (fs == ts) return tr >= fr;
  return !fs && ts && tr > fr;  // unsigned into a wider signed type
}

bool default_matches_type(FieldType t, const json& v) {
  switch (t) {
    case FieldType::boolean: return v.is_boolean();
    case FieldType::string: return v.is_string() || v.is_null();
    case FieldType::f32:
    case FieldType::f64: return v.is_number();
    case FieldType::composite: return v.is_null();
    default: return v.is_number_integer();
  }
}

std::string field_list_text(const Schema& s) {
  json fields = json::array();
  for (const FieldDef& f : s.fields) {
    json j = {{"name", f.name}, {"type", to_string(f.type)}};
    if (s.codec == CodecId::raw) {
      j["offset"] = f.offset;
      j["size"] = f.size;
    }
    if (f.has_default) j["default"] = f.default_value;
    fields.push_back(std::move(j));
  }
  json doc;
  if (s.codec == CodecId::raw) doc["size"] = s.struct_size;
  doc["fields"] = std::move(fields);
  return to_json_text(doc);
}

Status parse_field_list(std::string_view text, Schema* s) {
  const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  const std::string where = s->describe() + ": field list: ";
  if (doc.is_discarded() || !doc.is_object()) return bad_entry(where + "not a JSON object");
  auto fields = doc.find("fields");
  if (fields == doc.end() || !fields->is_array()) return bad_entry(where + "no \"fields\" array");
  if (s->codec == CodecId::raw) {
    auto size = doc.find("size");
    if (size == doc.end() || !size->is_number_unsigned() || size->get<uint64_t>() > (1u << 20))
      return bad_entry(where + "raw layout needs \"size\" (at most 1 MiB)");
    s->struct_size = size->get<uint32_t>();
  }
  for (const json& j : *fields) {
    if (!j.is_object()) return bad_entry(where + "a field is not an object");
    auto name = j.find("name");
    auto type = j.find("type");
    if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
      return bad_entry(where + "a field has no name");
    FieldDef f;
    f.name = name->get<std::string>();
    std::optional<FieldType> t;
    if (type != j.end() && type->is_string()) t = parse_field_type(type->get_ref<const std::string&>());
    if (!t || *t == FieldType::composite)
      return bad_entry(where + "field '" + f.name + "' has no valid type");
    f.type = *t;
    if (s->field(f.name) != nullptr) return bad_entry(where + "field '" + f.name + "' appears twice");
    if (auto d = j.find("default"); d != j.end()) {
      if (!default_matches_type(f.type, *d))
        return bad_entry(where + "field '" + f.name + "' has a default that is not a " +
                         std::string(to_string(f.type)));
      f.has_default = true;
      f.default_value = *d;
    }
    if (s->codec == CodecId::raw) {
      auto off = j.find("offset");
      auto size = j.find("size");
      if (off == j.end() || size == j.end() || !off->is_number_unsigned() ||
          !size->is_number_unsigned())
        return bad_entry(where + "raw field '" + f.name + "' needs offset and size");
      const uint64_t o = off->get<uint64_t>(), n = size->get<uint64_t>();
      if (o + n > s->struct_size || n == 0 ||
          (f.type != FieldType::string && n != scalar_size(f.type)))
        return bad_entry(where + "raw field '" + f.name + "' at offset " + std::to_string(o) +
                         " size " + std::to_string(n) + " does not fit a " +
                         std::string(to_string(f.type)) + " in " +
                         std::to_string(s->struct_size) + " bytes");
      f.offset = static_cast<uint32_t>(o);
      f.size = static_cast<uint32_t>(n);
    }
    s->fields.push_back(std::move(f));
  }
  return Status();
}

}  // namespace

const FieldDef* Schema::field(std::string_view name) const noexcept {
  for (const FieldDef& f : fields)
    if (f.name == name) return &f;
  return nullptr;
}

const reflection::Schema* Schema::fb_reflection() const noexcept {
  if (codec != CodecId::flatbuffers || fb_schema.empty()) return nullptr;
  return reflection::GetSchema(fb_schema.data());
}

const reflection::Object* Schema::fb_root() const noexcept {
  const reflection::Schema* s = fb_reflection();
  if (s == nullptr || s->objects() == nullptr) return nullptr;
  // Linear, not LookupByKey: a schema from the log is verified, but its sort order is not.
  for (const reflection::Object* o : *s->objects())
    if (o->name() != nullptr && o->name()->string_view() == fb_table) return o;
  return nullptr;
}

std::string Schema::describe() const {
  return type_name + " v" + std::to_string(version) + " (" + std::string(to_string(codec)) + ")";
}

std::vector<std::byte> encode_schema_entry(const Schema& s) {
  const std::string body_text = s.codec == CodecId::flatbuffers ? std::string() : field_list_text(s);
  const size_t body_len = s.codec == CodecId::flatbuffers ? s.fb_schema.size() : body_text.size();
  const size_t root_len = s.codec == CodecId::flatbuffers ? s.fb_table.size() : 0;
  const size_t body_at = align8(kSchemaEntryHeaderSize + s.type_name.size() + root_len);
  std::vector<std::byte> out(body_at + body_len);
  put<uint32_t>(out, 0, kSchemaEntryMagic);
  put<uint8_t>(out, 4, kSchemaEntryFormat);
  put<uint8_t>(out, 5, static_cast<uint8_t>(s.codec));
  put<uint16_t>(out, 6, s.version);
  put<uint32_t>(out, 8, s.type_id);
  put<uint16_t>(out, 12, static_cast<uint16_t>(s.type_name.size()));
  put<uint16_t>(out, 14, static_cast<uint16_t>(root_len));
  put<uint32_t>(out, 16, static_cast<uint32_t>(body_len));
  put<uint32_t>(out, 20, 0);
  std::memcpy(out.data() + kSchemaEntryHeaderSize, s.type_name.data(), s.type_name.size());
  if (root_len) std::memcpy(out.data() + kSchemaEntryHeaderSize + s.type_name.size(), s.fb_table.data(), root_len);
  if (s.codec == CodecId::flatbuffers) {
    if (body_len) std::memcpy(out.data() + body_at, s.fb_schema.data(), body_len);
  } else {
    std::memcpy(out.data() + body_at, body_text.data(), body_len);
  }
  return out;
}

Result<Schema> decode_schema_entry(std::span<const std::byte> in) {
  if (in.size() < kSchemaEntryHeaderSize)
    return bad_entry(std::to_string(in.size()) + " bytes, shorter than its header");
  if (get<uint32_t>(in, 0) != kSchemaEntryMagic) return bad_entry("bad magic");
  if (get<uint8_t>(in, 4) != kSchemaEntryFormat)
    return bad_entry("format " + std::to_string(get<uint8_t>(in, 4)) + " is newer than this reader");
  Schema s;
  const uint8_t codec = get<uint8_t>(in, 5);
  // Entries written before the codec ids were unified hold 1 for raw: read as raw.
  s.codec = decode_codec(codec);
  if (!known_codec(s.codec)) return bad_entry("unknown codec id " + std::to_string(codec));
  s.version = get<uint16_t>(in, 6);
  s.type_id = get<uint32_t>(in, 8);
  const size_t name_len = get<uint16_t>(in, 12);
  const size_t root_len = get<uint16_t>(in, 14);
  const size_t body_len = get<uint32_t>(in, 16);
  const size_t body_at = align8(kSchemaEntryHeaderSize + name_len + root_len);
  if (name_len == 0 || name_len > kMaxTypeNameLength) return bad_entry("bad type name length");
  if (body_len > kMaxSchemaBodySize || body_at + body_len > in.size())
    return bad_entry("lengths overrun the " + std::to_string(in.size()) + "-byte entry");
  if (s.type_id == 0) return bad_entry("type id 0");
  if (s.version == 0) return bad_entry("version 0");
  const char* base = reinterpret_cast<const char*>(in.data());
  s.type_name.assign(base + kSchemaEntryHeaderSize, name_len);
  if (s.codec == CodecId::flatbuffers) {
    if (root_len == 0) return bad_entry(s.describe() + ": no root table name");
    std::string table(base + kSchemaEntryHeaderSize + name_len, root_len);
    auto fb = flatbuffers_schema(s.type_name, s.version,
                                 std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(base) + body_at, body_len),
                                 std::move(table));
    if (!fb.ok()) return bad_entry(fb.status().message());
    fb->type_id = s.type_id;
    return std::move(fb.value());
  }
  if (root_len != 0) return bad_entry(s.describe() + ": a root table name for a non-FlatBuffers schema");
  if (Status st = parse_field_list(std::string_view(base + body_at, body_len), &s); !st.ok()) return st;
  return s;
}

Status check_compatible(const Schema& older, const Schema& newer) {
  auto fail = [&](const std::string& what) {
    return Status(StatusCode::invalid_argument,
                  newer.type_name + " v" + std::to_string(newer.version) + " (" +
                      std::string(to_string(newer.codec)) + ") cannot read v" +
                      std::to_string(older.version) + " (" + std::string(to_string(older.codec)) +
                      ") without an upcaster: " + what);
  };
  for (const FieldDef& f : older.fields) {
    const FieldDef* n = newer.field(f.name);
    if (n == nullptr)
      return fail("field '" + f.name + "' (" + std::string(to_string(f.type)) + ") is removed");
    const bool same = n->type == f.type && n->detail == f.detail;
    if (!same && !widens(f.type, n->type))
      return fail("field '" + f.name + "' changes type from " +
                  (f.detail.empty() ? std::string(to_string(f.type)) : f.detail) + " to " +
                  (n->detail.empty() ? std::string(to_string(n->type)) : n->detail));
  }
  for (const FieldDef& n : newer.fields) {
    if (older.field(n.name) == nullptr && !n.has_default)
      return fail("field '" + n.name + "' (" + std::string(to_string(n.type)) +
                  ") is added without a default");
  }
  return Status();
}

}  // namespace sluice::serialization
