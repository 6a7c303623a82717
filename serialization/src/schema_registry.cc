// SchemaRegistry: registration, loading from the log, binding and upcasting.
#include "sluice/serialization/schema_registry.h"

#include <cstring>
#include <map>
#include <tuple>
#include <unordered_map>

#include "internal/codecs.h"
#include "internal/fields.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "sluice/serialization/document.h"
#include "sluice/serialization/schema.h"

namespace sluice::serialization {

// (type id, version, codec)
using Key = std::tuple<uint32_t, uint16_t, uint8_t>;

struct SchemaRegistry::State {
  std::map<Key, std::unique_ptr<Schema>> schemas;
  std::unordered_map<std::string, uint32_t> ids;
  std::map<uint32_t, std::string> id_names;
  std::map<std::pair<std::string, uint16_t>, Upcaster, std::less<>> upcasters;
  // Schema records already loaded, by (segment, offset), so load() can be called again.
  std::map<std::pair<uint64_t, uint32_t>, bool> loaded;
};

namespace {

constexpr CodecId kCodecs[] = {CodecId::raw, CodecId::flatbuffers, CodecId::json};

using nlohmann::json;
using detail::BoundField;

Status bind_error(std::string_view name, uint16_t version, CodecId codec, const std::string& what) {
  return Status(StatusCode::invalid_argument, std::string(name) + " v" + std::to_string(version) +
                                                  " (" + std::string(to_string(codec)) + "): " + what);
}

// The declared default of a bound field as a JSON value (for the stored field list).
json default_json(const BoundField& f, uint64_t bits) {
  auto as = [&](auto zero) {
    decltype(zero) v;
    std::memcpy(&v, &bits, sizeof v);
    return json(v);
  };
  switch (f.type) {
    case FieldType::boolean: return (bits & 0xff) != 0;
    case FieldType::i8: return as(int8_t{});
    case FieldType::u8: return as(uint8_t{});
    case FieldType::i16: return as(int16_t{});
    case FieldType::u16: return as(uint16_t{});
    case FieldType::i32: return as(int32_t{});
    case FieldType::u32: return as(uint32_t{});
    case FieldType::i64: return as(int64_t{});
    case FieldType::u64: return as(uint64_t{});
    case FieldType::f32: return as(float{});
    case FieldType::f64: return as(double{});
    case FieldType::string: return std::string(f.default_text);
    case FieldType::composite: return nullptr;
  }
  return nullptr;
}

// A FlatBuffers default as the bit pattern of the member type.
uint64_t default_bits_of(FieldType t, const json& v) {
  uint64_t bits = 0;
  auto set = [&](auto x) { std::memcpy(&bits, &x, sizeof x); };
  switch (t) {
    case FieldType::boolean: set(static_cast<uint8_t>(v.is_boolean() && v.get<bool>())); break;
    case FieldType::i8: set(static_cast<int8_t>(v.get<int64_t>())); break;
    case FieldType::u8: set(static_cast<uint8_t>(v.get<int64_t>())); break;
    case FieldType::i16: set(static_cast<int16_t>(v.get<int64_t>())); break;
    case FieldType::u16: set(static_cast<uint16_t>(v.get<int64_t>())); break;
    case FieldType::i32: set(static_cast<int32_t>(v.get<int64_t>())); break;
    case FieldType::u32: set(static_cast<uint32_t>(v.get<int64_t>())); break;
    case FieldType::i64: set(v.get<int64_t>()); break;
    case FieldType::u64: set(v.get<uint64_t>()); break;
    case FieldType::f32: set(static_cast<float>(v.get<double>())); break;
    case FieldType::f64: set(v.get<double>()); break;
    default: break;
  }
  return bits;
}

bool same_layout(const Schema& a, const Schema& b) {
  return a.fields == b.fields && a.struct_size == b.struct_size && a.fb_table == b.fb_table;
}

// First difference between two field lists, for the error message.
std::string first_difference(const Schema& have, const Schema& want) {
  for (const FieldDef& f : have.fields) {
    const FieldDef* g = want.field(f.name);
    if (g == nullptr) return "field '" + f.name + "' is gone";
    if (!(*g == f)) return "field '" + f.name + "' differs (type, offset, size or default)";
  }
  for (const FieldDef& g : want.fields)
    if (have.field(g.name) == nullptr) return "field '" + g.name + "' is new";
  if (have.struct_size != want.struct_size) return "struct size differs";
  if (have.fb_table != want.fb_table) return "root table differs";
  return "field order differs";
}

bool plain_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
  return true;
}

}  // namespace

SchemaRegistry::SchemaRegistry() : state_(std::make_unique<State>()) {}
SchemaRegistry::~SchemaRegistry() = default;

size_t SchemaRegistry::size() const noexcept { return state_->schemas.size(); }

Status SchemaRegistry::load(const LogReader& reader) {
  Status first;
  for (const RecordView& v : reader.system_records()) {
    if (v.type() != log_format::kTypeSchema) continue;
    if (!state_->loaded.emplace(std::make_pair(v.segment_index, v.offset), true).second) continue;
    auto where = [&] {
      return "schema record in segment " + std::to_string(v.segment_index) + " at offset " +
             std::to_string(v.offset) + " of " + reader.dir() + ": ";
    };
    auto s = decode_schema_entry(v.payload());
    Status st = s.status();
    if (s.ok() && s->type_id != v.event_type())
      st = Status(StatusCode::invalid_argument,
                  "entry type id " + std::to_string(s->type_id) + " but record type id " +
                      std::to_string(v.event_type()));
    if (st.ok()) st = add_impl(std::move(s.value()), nullptr, /*from_log=*/true).status();
    if (!st.ok() && first.ok()) first = Status(StatusCode::corruption, where() + st.message());
  }
  return first;
}

Status SchemaRegistry::load(const std::string& dir) {
  auto r = LogReader::open(dir);
  if (!r.ok()) return r.status().code() == StatusCode::not_found ? Status() : r.status();
  return load(**r);
}

Result<uint32_t> SchemaRegistry::add(Schema schema, LogWriter* writer) {
  return add_impl(std::move(schema), writer, /*from_log=*/false);
}

Result<uint32_t> SchemaRegistry::add_impl(Schema schema, LogWriter* writer, bool from_log) {
  if (schema.type_name.empty() || schema.type_name.size() > kMaxTypeNameLength)
    return Status(StatusCode::invalid_argument, "type name must be 1.." +
                                                    std::to_string(kMaxTypeNameLength) + " bytes");
  if (schema.version == 0) return bind_error(schema.type_name, 0, schema.codec, "versions start at 1");
  schema.codec = decode_codec(static_cast<uint8_t>(schema.codec));
  if (!known_codec(schema.codec))
    return bind_error(schema.type_name, schema.version, schema.codec, "a schema needs codec raw, json or flatbuffers");

  uint32_t id = 0;
  if (auto it = state_->ids.find(schema.type_name); it != state_->ids.end()) {
    id = it->second;
    if (from_log && schema.type_id != id)
      return Status(StatusCode::invalid_argument, "type '" + schema.type_name + "' has id " +
                                                      std::to_string(schema.type_id) + ", earlier " +
                                                      std::to_string(id));
  } else if (from_log) {
    id = schema.type_id;
    if (state_->id_names.count(id) != 0)
      return Status(StatusCode::invalid_argument, "type id " + std::to_string(id) + " names both '" +
                                                      state_->id_names[id] + "' and '" + schema.type_name + "'");
  } else {
    id = state_->id_names.empty() ? 1 : state_->id_names.rbegin()->first + 1;
  }
  schema.type_id = id;

  const Key key{id, schema.version, static_cast<uint8_t>(schema.codec)};
  if (auto it = state_->schemas.find(key); it != state_->schemas.end()) {
    if (same_layout(*it->second, schema)) return id;
    return bind_error(schema.type_name, schema.version, schema.codec,
                      "differs from the schema already in the log (" +
                          first_difference(*it->second, schema) +
                          "): a changed schema needs a new version");
  }
  if (!from_log) {
    // The same version in another codec must have the same fields.
    for (CodecId c : kCodecs) {
      auto it = state_->schemas.find(Key{id, schema.version, static_cast<uint8_t>(c)});
      if (it == state_->schemas.end()) continue;
      if (Status st = check_compatible(*it->second, schema); !st.ok()) return st;
      if (Status st = check_compatible(schema, *it->second); !st.ok()) return st;
    }
    // A new version must read the previous one, or come with upcasters from it.
    if (const Schema* prev = previous_version(id, schema.version); prev != nullptr) {
      bool chain = true;
      for (uint16_t v = prev->version; v < schema.version; ++v) chain = chain && has_upcaster(schema.type_name, v);
      if (!chain) {
        if (Status st = check_compatible(*prev, schema); !st.ok())
          return Status(StatusCode::invalid_argument,
                        st.message() + "; register one with add_upcaster(\"" + schema.type_name +
                            "\", " + std::to_string(schema.version - 1) + ", ...) before binding");
      }
    }
    if (writer != nullptr) {
      const std::vector<std::byte> entry = encode_schema_entry(schema);
      if (Status st = writer->append_system(log_format::kTypeSchema, id, entry); !st.ok()) return st;
    }
  }
  state_->ids.emplace(schema.type_name, id);
  state_->id_names.emplace(id, schema.type_name);
  state_->schemas.emplace(key, std::make_unique<Schema>(std::move(schema)));
  return id;
}

const Schema* SchemaRegistry::previous_version(uint32_t type_id, uint16_t version) const noexcept {
  const Schema* best = nullptr;
  for (const auto& [key, s] : state_->schemas)
    if (std::get<0>(key) == type_id && std::get<1>(key) < version && (best == nullptr || s->version > best->version))
      best = s.get();
  return best;
}

void SchemaRegistry::add_upcaster(std::string_view type_name, uint16_t from_version, Upcaster upcaster) {
  state_->upcasters[std::make_pair(std::string(type_name), from_version)] = std::move(upcaster);
}

const Upcaster* SchemaRegistry::upcaster(std::string_view type_name, uint16_t from_version) const {
  auto it = state_->upcasters.find(std::make_pair(std::string(type_name), from_version));
  return it == state_->upcasters.end() ? nullptr : &it->second;
}

bool SchemaRegistry::has_upcaster(std::string_view type_name, uint16_t from_version) const {
  return state_->upcasters.count(std::make_pair(std::string(type_name), from_version)) != 0;
}

const Schema* SchemaRegistry::find(uint32_t type_id, uint16_t version, CodecId codec) const noexcept {
  auto it = state_->schemas.find(Key{type_id, version, static_cast<uint8_t>(decode_codec(static_cast<uint8_t>(codec)))});
  return it == state_->schemas.end() ? nullptr : it->second.get();
}

const Schema* SchemaRegistry::find(uint32_t type_id, uint16_t version) const noexcept {
  for (CodecId c : kCodecs)
    if (const Schema* s = find(type_id, version, c)) return s;
  return nullptr;
}

std::optional<uint32_t> SchemaRegistry::type_id(std::string_view name) const {
  auto it = state_->ids.find(std::string(name));
  if (it == state_->ids.end()) return std::nullopt;
  return it->second;
}

std::string_view SchemaRegistry::type_name(uint32_t id) const noexcept {
  auto it = state_->id_names.find(id);
  return it == state_->id_names.end() ? std::string_view() : std::string_view(it->second);
}

std::vector<const Schema*> SchemaRegistry::schemas() const {
  std::vector<const Schema*> out;
  for (const auto& [key, s] : state_->schemas) out.push_back(s.get());
  return out;
}

Result<std::string> SchemaRegistry::to_json(uint32_t id, uint16_t version, CodecId codec,
                                            std::span<const std::byte> payload) const {
  auto doc = to_document(*this, id, version, codec, payload);
  if (!doc.ok()) return doc.status();
  return to_json_text(*doc);
}

CodecId SchemaRegistry::reading_codec(std::string_view name, uint16_t version) const {
  if (auto id = type_id(name))
    if (const Schema* stored = find(*id, version)) return stored->codec;
  return CodecId::json;
}

Result<std::shared_ptr<detail::BindingCore>> SchemaRegistry::bind_core(detail::TypeDescription desc,
                                                                       CodecId codec, LogWriter* writer) {
  auto core = std::make_shared<detail::BindingCore>();
  const std::string_view name = desc.name;
  const uint16_t version = desc.version;
  auto fail = [&](const std::string& what) { return bind_error(name, version, codec, what); };
  if (!known_codec(codec))
    return fail("unknown codec id " + std::to_string(static_cast<unsigned>(codec)) +
                ": bind raw, json or flatbuffers");
  if (desc.fields.empty()) return fail("no fields");
  if (desc.fields.size() > internal::kMaxFields)
    return fail("more than " + std::to_string(internal::kMaxFields) + " fields");
  size_t bytes = 0;
  for (size_t i = 0; i < desc.fields.size(); ++i) {
    const BoundField& f = desc.fields[i];
    if (!plain_name(f.name)) return fail("field name '" + std::string(f.name) + "' is empty or needs escaping");
    for (size_t j = 0; j < i; ++j)
      if (desc.fields[j].name == f.name) return fail("field '" + std::string(f.name) + "' is listed twice");
    if (f.storage == detail::Storage::fixed_chars && f.default_text.size() > f.capacity)
      return fail("field '" + std::string(f.name) + "': default longer than its capacity");
    bytes += f.type == FieldType::string ? f.capacity : scalar_size(f.type);
  }

  // FlatBuffers: match T's fields to its table (needed to encode flatbuffers, and to decode
  // flatbuffers records whatever the configured codec).
  Schema fb_schema;
  if (!desc.fb_schema.empty()) {
    auto fb = flatbuffers_schema(std::string(name), version, desc.fb_schema, std::string(desc.fb_table));
    if (!fb.ok()) {
      core->fb_error = fb.status().message();
    } else {
      fb_schema = std::move(fb.value());
      for (BoundField& f : desc.fields) {
        const FieldDef* d = fb_schema.field(f.name);
        if (d == nullptr) {
          core->fb_error = "field '" + std::string(f.name) + "' is not in table " + fb_schema.fb_table;
          break;
        }
        if (d->type != f.type) {
          core->fb_error = "field '" + std::string(f.name) + "' is " + std::string(to_string(f.type)) +
                           " in C++ but " + std::string(d->detail.empty() ? to_string(d->type) : d->detail) +
                           " in table " + fb_schema.fb_table;
          break;
        }
        f.fb_voffset = static_cast<uint16_t>(d->offset);
        if (f.type != FieldType::string) f.fb_default_bits = default_bits_of(f.type, d->default_value);
      }
      if (core->fb_error.empty()) core->fb_verify = desc.fb_verify;
    }
  }

  Schema schema;
  schema.type_name = std::string(name);
  schema.version = version;
  schema.codec = codec;
  switch (codec) {
    case CodecId::raw:
      if (!desc.trivially_copyable)
        return fail("not trivially copyable (a std::string field?): use json or flatbuffers, or FixedString");
      if (bytes != desc.size)
        return fail("the struct has " + std::to_string(desc.size - bytes) +
                    " padding bytes: a raw layout must be fully described (reorder fields or "
                    "add explicit padding fields)");
      schema.struct_size = static_cast<uint32_t>(desc.size);
      break;
    case CodecId::flatbuffers:
      if (desc.fb_schema.empty())
        return fail("no FlatBuffers table: give EventTraits a FlatBuffersTable and flatbuffers_schema()");
      if (!core->fb_error.empty()) return fail(core->fb_error);
      schema = std::move(fb_schema);
      break;
    case CodecId::json:
      break;
  }
  if (codec != CodecId::flatbuffers) {
    for (const BoundField& f : desc.fields) {
      FieldDef d;
      d.name = std::string(f.name);
      d.type = f.type;
      if (codec == CodecId::raw) {
        d.offset = f.offset;
        d.size = static_cast<uint32_t>(f.type == FieldType::string ? f.capacity : scalar_size(f.type));
      }
      d.has_default = f.has_default;
      if (f.has_default) d.default_value = default_json(f, f.default_bits);
      schema.fields.push_back(std::move(d));
    }
  }
  auto id = add_impl(std::move(schema), writer, /*from_log=*/false);
  if (!id.ok()) return id.status();
  core->desc = std::move(desc);
  core->type_id = *id;
  core->codec = codec;
  core->registry = this;
  return core;
}

}  // namespace sluice::serialization
