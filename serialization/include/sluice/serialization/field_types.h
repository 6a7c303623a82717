// Logical field types of an event schema (light: no FlatBuffers, no nlohmann/json).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::serialization {

// Logical field types. `composite` covers FlatBuffers fields that are not flat (tables,
// structs, vectors, unions): readable by tools, not bindable to a C++ member.
enum class FieldType : uint8_t {
  boolean, i8, u8, i16, u16, i32, u32, i64, u64, f32, f64, string, composite,
};
std::string_view to_string(FieldType t) noexcept;
std::optional<FieldType> parse_field_type(std::string_view s) noexcept;
// Bytes of a scalar type; 0 for string and composite.
size_t scalar_size(FieldType t) noexcept;

}  // namespace sluice::serialization
