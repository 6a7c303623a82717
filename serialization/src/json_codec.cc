// The JSON decoder of the typed path: simdjson.
//
// Why simdjson and not nlohmann/json: `sluice bench codec` decodes the same medium event both
// ways (json_decode_medium vs json_nlohmann_decode_medium). simdjson parses into a tape it
// reuses, so decoding allocates nothing once the thread's parser and padded buffer have
// grown, and it measured several times faster (docs/serialization.md has the figures).
// nlohmann/json remains the schema-driven path (documents for tools and upcasters), where a
// DOM is what is wanted.
#include <simdjson.h>

#include <bitset>

#include "internal/fields.h"

namespace sluice::serialization::detail {

using namespace internal;

namespace {

// The thread's parser and a copy of the payload with the padding simdjson reads past the
// end. Both grow to the largest payload seen and are then reused.
//
// The DOM parser, not on-demand: on-demand is compiled for the target given to the compiler
// (the portable "fallback" kernel for a generic x86-64 build), while the DOM parser picks the
// best kernel (AVX2, AVX-512) at run time; it also validates the whole document.
struct JsonScratch {
  simdjson::dom::parser parser;
  std::string padded;
};

const char* error_text(simdjson::error_code e) { return simdjson::error_message(e); }

}  // namespace

Status BindingCore::decode_json(std::span<const std::byte> payload, void* obj) const {
  thread_local JsonScratch scratch;
  const size_t len = payload.size();
  std::string& buf = scratch.padded;
  if (buf.size() < len + simdjson::SIMDJSON_PADDING) buf.resize(len + simdjson::SIMDJSON_PADDING);
  std::memcpy(buf.data(), payload.data(), len);
  std::memset(buf.data() + len, 0, simdjson::SIMDJSON_PADDING);

  simdjson::dom::element doc;
  if (auto e = scratch.parser.parse(buf.data(), len, /*realloc_if_needed=*/false).get(doc); e)
    return type_error(*this, CodecId::json, std::string("malformed JSON: ") + error_text(e));
  simdjson::dom::object o;
  if (auto e = doc.get_object().get(o); e)
    return type_error(*this, CodecId::json, std::string("not a JSON object: ") + error_text(e));

  std::bitset<kMaxFields> seen;
  const size_t n = desc.fields.size();
  size_t hint = 0;  // fields usually come in declaration order: try the next one first
  for (simdjson::dom::key_value_pair kv : o) {
    const std::string_view key = kv.key;
    size_t idx = n;
    for (size_t k = 0; k < n; ++k) {
      const size_t i = hint + k < n ? hint + k : hint + k - n;
      if (desc.fields[i].name == key) {
        idx = i;
        break;
      }
    }
    if (idx == n) continue;  // unknown field: skipped (a newer writer may add fields)
    hint = idx + 1 < n ? idx + 1 : 0;
    const BoundField& f = desc.fields[idx];
    const simdjson::dom::element v = kv.value;
    simdjson::error_code e = simdjson::SUCCESS;
    bool fits_ok = true;
    switch (f.type) {
      case FieldType::boolean: {
        bool b = false;
        e = v.get_bool().get(b);
        if (!e) put<uint8_t>(obj, f, b ? 1 : 0);
        break;
      }
      case FieldType::i8:
      case FieldType::i16:
      case FieldType::i32:
      case FieldType::i64: {
        int64_t x = 0;
        e = v.get_int64().get(x);
        if (!e) fits_ok = store_integer(obj, f, x);
        break;
      }
      case FieldType::u8:
      case FieldType::u16:
      case FieldType::u32:
      case FieldType::u64: {
        uint64_t x = 0;
        e = v.get_uint64().get(x);
        if (!e) fits_ok = store_integer(obj, f, x);
        break;
      }
      case FieldType::f32:
      case FieldType::f64: {
        double x = 0;
        e = v.get_double().get(x);
        if (!e) fits_ok = store_double(obj, f, x);
        break;
      }
      case FieldType::string: {
        std::string_view s;
        e = v.get_string().get(s);
        if (!e) fits_ok = store_string(obj, f, s);
        break;
      }
      case FieldType::composite: break;
    }
    if (e)
      return field_error(*this, CodecId::json, f,
                         std::string("expected ") + std::string(to_string(f.type)) + ": " + error_text(e));
    if (!fits_ok)
      return field_error(*this, CodecId::json, f,
                         f.type == FieldType::string
                             ? "does not fit in FixedString<" + std::to_string(f.capacity) + "> (or contains NUL)"
                             : "value out of range for " + std::string(to_string(f.type)));
    seen.set(idx);
  }
  if (seen.count() != n) {
    for (size_t i = 0; i < n; ++i) {
      if (seen.test(i)) continue;
      const BoundField& f = desc.fields[i];
      if (!f.has_default) return field_error(*this, CodecId::json, f, "missing, and the field has no default");
      store_default(obj, f);
    }
  }
  return Status();
}

}  // namespace sluice::serialization::detail
