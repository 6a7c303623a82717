// Names of field types, and compact JSON text.
#include <array>

#include "sluice/serialization/document.h"
#include "sluice/serialization/field_types.h"

namespace sluice::serialization {

namespace {
constexpr std::array<std::string_view, 13> kFieldTypeNames = {
    "bool", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "f32", "f64", "string",
    "composite"};
}  // namespace

std::string_view to_string(FieldType t) noexcept {
  const auto i = static_cast<size_t>(t);
  return i < kFieldTypeNames.size() ? kFieldTypeNames[i] : "unknown";
}

std::optional<FieldType> parse_field_type(std::string_view s) noexcept {
  for (size_t i = 0; i < kFieldTypeNames.size(); ++i)
    if (kFieldTypeNames[i] == s) return static_cast<FieldType>(i);
  return std::nullopt;
}

size_t scalar_size(FieldType t) noexcept {
  switch (t) {
    case FieldType::boolean:
    case FieldType::i8:
    case FieldType::u8: return 1;
    case FieldType::i16:
    case FieldType::u16: return 2;
    case FieldType::i32:
    case FieldType::u32:
    case FieldType::f32: return 4;
    case FieldType::i64:
    case FieldType::u64:
    case FieldType::f64: return 8;
    case FieldType::string:
    case FieldType::composite: return 0;
  }
  return 0;
}

std::string to_json_text(const nlohmann::json& doc) {
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace sluice::serialization
