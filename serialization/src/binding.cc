// BindingCore: typed encode and decode of an application struct through its bound fields.
#include <charconv>
#include <cmath>
#include <cstring>

#include "internal/codecs.h"
#include "internal/fields.h"
#include "sluice/serialization/document.h"
#include "sluice/serialization/flatbuffers_codec.h"
#include "sluice/serialization/schema_registry.h"

namespace sluice::serialization {

namespace internal {

Status type_error(const BindingCore& core, CodecId codec, const std::string& what) {
  return Status(StatusCode::invalid_argument,
                std::string(core.desc.name) + " v" + std::to_string(core.desc.version) + " (" +
                    std::string(to_string(codec)) + "): " + what);
}

Status field_error(const BindingCore& core, CodecId codec, const BoundField& f, const std::string& what) {
  return type_error(core, codec, "field '" + std::string(f.name) + "': " + what);
}

}  // namespace internal

EncodeBuffer::EncodeBuffer() noexcept = default;
EncodeBuffer::~EncodeBuffer() = default;
EncodeBuffer::EncodeBuffer(EncodeBuffer&&) noexcept = default;
EncodeBuffer& EncodeBuffer::operator=(EncodeBuffer&&) noexcept = default;

EncodeBuffer::FlatBuffersState& EncodeBuffer::flatbuffers_state() {
  if (fb_ == nullptr) fb_ = std::make_unique<FlatBuffersState>();
  return *fb_;
}

namespace detail {

using namespace internal;

namespace {

void append_json_string(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static const char* hex = "0123456789abcdef";
          const char u[] = {'\\', 'u', '0', '0', hex[(c >> 4) & 0xf], hex[c & 0xf]};
          out->append(u, sizeof u);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

template <class U>
void append_number(std::string* out, U v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

template <class U>
void add_fb(flatbuffers::FlatBufferBuilder* fbb, const BoundField& f, const void* obj) {
  U def;
  std::memcpy(&def, &f.fb_default_bits, sizeof def);
  fbb->AddElement<U>(f.fb_voffset, load<U>(obj, f), def);
}

template <class U>
void get_fb(const flatbuffers::Table* t, const BoundField& f, void* obj) {
  U def;
  std::memcpy(&def, &f.fb_default_bits, sizeof def);
  put(obj, f, t->GetField<U>(f.fb_voffset, def));
}

}  // namespace

Status BindingCore::wrong_type(uint32_t id) const {
  std::string other = registry ? std::string(registry->type_name(id)) : std::string();
  return type_error(*this, codec,
                    "record has type id " + std::to_string(id) +
                        (other.empty() ? "" : " (" + other + ")") + ", not " + std::to_string(type_id));
}

Status BindingCore::bad_raw_size(size_t size) const {
  return type_error(*this, CodecId::raw,
                    "raw payload of " + std::to_string(size) + " bytes, the struct has " +
                        std::to_string(desc.size));
}

Status BindingCore::unsupported_codec(CodecId c) const {
  std::string why;
  if (c == CodecId::raw) why = "the type is not trivially copyable";
  else if (c == CodecId::flatbuffers) why = fb_error.empty() ? "no FlatBuffers table in its traits" : fb_error;
  else why = "unknown codec id " + std::to_string(static_cast<unsigned>(c));
  return type_error(*this, c, "cannot decode or encode: " + why);
}

Status BindingCore::encode_json(const void* obj, std::string* out) const {
  out->clear();
  out->push_back('{');
  bool first = true;
  for (const BoundField& f : desc.fields) {
    if (!first) out->push_back(',');
    first = false;
    out->push_back('"');
    out->append(f.name);  // names are checked to need no escaping when bound
    out->append("\":");
    switch (f.type) {
      case FieldType::boolean: out->append(load<uint8_t>(obj, f) ? "true" : "false"); break;
      case FieldType::i8: append_number(out, load<int8_t>(obj, f)); break;
      case FieldType::u8: append_number(out, load<uint8_t>(obj, f)); break;
      case FieldType::i16: append_number(out, load<int16_t>(obj, f)); break;
      case FieldType::u16: append_number(out, load<uint16_t>(obj, f)); break;
      case FieldType::i32: append_number(out, load<int32_t>(obj, f)); break;
      case FieldType::u32: append_number(out, load<uint32_t>(obj, f)); break;
      case FieldType::i64: append_number(out, load<int64_t>(obj, f)); break;
      case FieldType::u64: append_number(out, load<uint64_t>(obj, f)); break;
      case FieldType::f32:
      case FieldType::f64: {
        const double v = f.type == FieldType::f32 ? load<float>(obj, f) : load<double>(obj, f);
        if (!std::isfinite(v)) return field_error(*this, CodecId::json, f, "NaN or infinity has no JSON form");
        if (f.type == FieldType::f32) append_number(out, load<float>(obj, f));
        else append_number(out, v);
        break;
      }
      case FieldType::string: append_json_string(out, load_string(obj, f)); break;
      case FieldType::composite: out->append("null"); break;
    }
  }
  out->push_back('}');
  return Status();
}

Status BindingCore::encode_flatbuffers(const void* obj, EncodeBuffer* buf,
                                       std::span<const std::byte>* out) const {
  if (fb_verify == nullptr) return unsupported_codec(CodecId::flatbuffers);
  flatbuffers::FlatBufferBuilder* fbb = &flatbuffers_builder(*buf);
  fbb->Clear();
  flatbuffers::uoffset_t strings[kMaxFields];
  for (size_t i = 0; i < desc.fields.size(); ++i) {
    const BoundField& f = desc.fields[i];
    if (f.type == FieldType::string) {
      const std::string_view s = load_string(obj, f);
      strings[i] = fbb->CreateString(s.data(), s.size()).o;
    }
  }
  const flatbuffers::uoffset_t start = fbb->StartTable();
  for (size_t i = 0; i < desc.fields.size(); ++i) {
    const BoundField& f = desc.fields[i];
    switch (f.type) {
      case FieldType::boolean:
      case FieldType::u8: add_fb<uint8_t>(fbb, f, obj); break;
      case FieldType::i8: add_fb<int8_t>(fbb, f, obj); break;
      case FieldType::i16: add_fb<int16_t>(fbb, f, obj); break;
      case FieldType::u16: add_fb<uint16_t>(fbb, f, obj); break;
      case FieldType::i32: add_fb<int32_t>(fbb, f, obj); break;
      case FieldType::u32: add_fb<uint32_t>(fbb, f, obj); break;
      case FieldType::i64: add_fb<int64_t>(fbb, f, obj); break;
      case FieldType::u64: add_fb<uint64_t>(fbb, f, obj); break;
      case FieldType::f32: add_fb<float>(fbb, f, obj); break;
      case FieldType::f64: add_fb<double>(fbb, f, obj); break;
      case FieldType::string:
        fbb->AddOffset(f.fb_voffset, flatbuffers::Offset<flatbuffers::String>(strings[i]));
        break;
      case FieldType::composite: break;
    }
  }
  fbb->Finish(flatbuffers::Offset<flatbuffers::Table>(fbb->EndTable(start)));
  auto finished = fbb->GetBufferSpan();
  *out = std::as_bytes(std::span<const uint8_t>(finished.data(), finished.size()));
  return Status();
}

Status BindingCore::decode_flatbuffers(std::span<const std::byte> payload, void* obj) const {
  if (fb_verify == nullptr) return unsupported_codec(CodecId::flatbuffers);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(payload.data());
  thread_local std::vector<uint64_t> aligned;  // only for a payload not 8-aligned (not from a log)
  if (reinterpret_cast<uintptr_t>(p) % 8 != 0) {
    aligned.resize((payload.size() + 7) / 8);
    std::memcpy(aligned.data(), p, payload.size());
    p = reinterpret_cast<const uint8_t*>(aligned.data());
  }
  if (!fb_verify(p, payload.size()))
    return type_error(*this, CodecId::flatbuffers,
                      "invalid FlatBuffer for table " + std::string(desc.fb_table) + " (" +
                          std::to_string(payload.size()) + " bytes)");
  const auto* t = flatbuffers::GetRoot<flatbuffers::Table>(p);
  for (const BoundField& f : desc.fields) {
    switch (f.type) {
      case FieldType::boolean:
      case FieldType::u8: get_fb<uint8_t>(t, f, obj); break;
      case FieldType::i8: get_fb<int8_t>(t, f, obj); break;
      case FieldType::i16: get_fb<int16_t>(t, f, obj); break;
      case FieldType::u16: get_fb<uint16_t>(t, f, obj); break;
      case FieldType::i32: get_fb<int32_t>(t, f, obj); break;
      case FieldType::u32: get_fb<uint32_t>(t, f, obj); break;
      case FieldType::i64: get_fb<int64_t>(t, f, obj); break;
      case FieldType::u64: get_fb<uint64_t>(t, f, obj); break;
      case FieldType::f32: get_fb<float>(t, f, obj); break;
      case FieldType::f64: get_fb<double>(t, f, obj); break;
      case FieldType::string: {
        const auto* s = t->GetPointer<const flatbuffers::String*>(f.fb_voffset);
        const std::string_view v = s ? s->string_view() : f.default_text;
        if (!store_string(obj, f, v))
          return field_error(*this, CodecId::flatbuffers, f,
                             std::to_string(v.size()) + " bytes do not fit in FixedString<" +
                                 std::to_string(f.capacity) + "> (or contain NUL)");
        break;
      }
      case FieldType::composite: break;
    }
  }
  return Status();
}

namespace {

// From a schema-driven document (older versions after upcasting); missing fields get their
// defaults.
Status decode_document(const BindingCore& core, const nlohmann::json& doc, void* obj) {
  const CodecId codec = core.codec;
  const TypeDescription& desc = core.desc;
  if (!doc.is_object()) return type_error(core, codec, "document is not an object");
  for (const BoundField& f : desc.fields) {
    auto it = doc.find(std::string(f.name));
    if (it == doc.end() || it->is_null()) {
      if (!f.has_default && it == doc.end())
        return field_error(core, codec, f, "missing, and the field has no default");
      store_default(obj, f);
      continue;
    }
    bool ok = false;
    if (f.type == FieldType::boolean) {
      ok = it->is_boolean();
      if (ok) put<uint8_t>(obj, f, it->get<bool>() ? 1 : 0);
    } else if (f.type == FieldType::string) {
      ok = it->is_string() && store_string(obj, f, it->get_ref<const std::string&>());
    } else if (it->is_number_unsigned()) {
      ok = store_integer(obj, f, it->get<uint64_t>());
    } else if (it->is_number_integer()) {
      ok = store_integer(obj, f, it->get<int64_t>());
    } else if (it->is_number_float()) {
      ok = store_double(obj, f, it->get<double>());
    }
    if (!ok)
      return field_error(core, codec, f,
                         "value " + to_json_text(*it).substr(0, 64) + " is not a valid " +
                             std::string(to_string(f.type)) +
                             (f.storage == Storage::fixed_chars
                                  ? " of at most " + std::to_string(f.capacity) + " bytes"
                                  : ""));
  }
  return Status();
}

}  // namespace

Status BindingCore::decode_json_dom(std::span<const std::byte> payload, void* obj) const {
  auto doc = codec_for(CodecId::json)->to_document(Schema{std::string(desc.name), type_id, desc.version, CodecId::json, {}, 0, {}, {}}, payload);
  if (!doc.ok()) return doc.status();
  return decode_document(*this, *doc, obj);
}

Status BindingCore::decode_upcast(uint16_t version, CodecId c, std::span<const std::byte> payload,
                                  void* obj) const {
  if (version > desc.version)
    return type_error(*this, c,
                      "record is version " + std::to_string(version) +
                          ", newer than this program's version " + std::to_string(desc.version));
  if (registry == nullptr) return type_error(*this, c, "no registry to upcast from");
  auto doc = to_document(*registry, type_id, version, c, payload);
  if (!doc.ok()) return doc.status();
  if (Status st = upcast(*registry, type_id, version, desc.version, &doc.value()); !st.ok()) return st;
  return decode_document(*this, *doc, obj);
}

}  // namespace detail
}  // namespace sluice::serialization
