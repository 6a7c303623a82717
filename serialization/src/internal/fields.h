// Reading and writing a bound field of the application's object through its byte offset:
// range-checked stores shared by the JSON, FlatBuffers and document decoders.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "sluice/serialization/binding.h"

namespace sluice::serialization::internal {

using detail::BindingCore;
using detail::BoundField;
using detail::Storage;

inline constexpr size_t kMaxFields = 256;

inline char* at(void* obj, const BoundField& f) { return static_cast<char*>(obj) + f.offset; }
inline const char* at(const void* obj, const BoundField& f) {
  return static_cast<const char*>(obj) + f.offset;
}

template <class U>
inline void put(void* obj, const BoundField& f, U v) {
  std::memcpy(at(obj, f), &v, sizeof v);
}
template <class U>
inline U load(const void* obj, const BoundField& f) {
  U v;
  std::memcpy(&v, at(obj, f), sizeof v);
  return v;
}

template <class U, class V>
inline bool fits(V v) {
  if constexpr (std::is_signed_v<V>) {
    if constexpr (std::is_signed_v<U>) {
      return v >= static_cast<V>(std::numeric_limits<U>::min()) &&
             v <= static_cast<V>(std::numeric_limits<U>::max());
    } else {
      return v >= 0 && static_cast<uint64_t>(v) <= std::numeric_limits<U>::max();
    }
  } else {
    return v <= static_cast<uint64_t>(std::numeric_limits<U>::max());
  }
}

// Stores an integer into an integer or floating field; false if it does not fit.
template <class V>
inline bool store_integer(void* obj, const BoundField& f, V v) {
  switch (f.type) {
    case FieldType::i8: if (!fits<int8_t>(v)) return false; put(obj, f, static_cast<int8_t>(v)); return true;
    case FieldType::u8: if (!fits<uint8_t>(v)) return false; put(obj, f, static_cast<uint8_t>(v)); return true;
    case FieldType::i16: if (!fits<int16_t>(v)) return false; put(obj, f, static_cast<int16_t>(v)); return true;
    case FieldType::u16: if (!fits<uint16_t>(v)) return false; put(obj, f, static_cast<uint16_t>(v)); return true;
    case FieldType::i32: if (!fits<int32_t>(v)) return false; put(obj, f, static_cast<int32_t>(v)); return true;
    case FieldType::u32: if (!fits<uint32_t>(v)) return false; put(obj, f, static_cast<uint32_t>(v)); return true;
    case FieldType::i64: if (!fits<int64_t>(v)) return false; put(obj, f, static_cast<int64_t>(v)); return true;
    case FieldType::u64: if (!fits<uint64_t>(v)) return false; put(obj, f, static_cast<uint64_t>(v)); return true;
    case FieldType::f32: put(obj, f, static_cast<float>(v)); return true;
    case FieldType::f64: put(obj, f, static_cast<double>(v)); return true;
    default: return false;
  }
}

// Stores a double into a floating field; false if the field is not floating or it overflows f32.
inline bool store_double(void* obj, const BoundField& f, double v) {
  if (f.type == FieldType::f64) {
    put(obj, f, v);
    return true;
  }
  if (f.type == FieldType::f32) {
    if (std::isfinite(v) && std::fabs(v) > static_cast<double>(std::numeric_limits<float>::max())) return false;
    put(obj, f, static_cast<float>(v));
    return true;
  }
  return false;
}

// Stores text into a string field; false if a FixedString cannot hold it.
inline bool store_string(void* obj, const BoundField& f, std::string_view s) {
  if (f.storage == Storage::std_string) {
    reinterpret_cast<std::string*>(at(obj, f))->assign(s.data(), s.size());
    return true;
  }
  if (s.size() > f.capacity || s.find('\0') != std::string_view::npos) return false;
  char* p = at(obj, f);
  std::memset(p, 0, f.capacity);
  std::memcpy(p, s.data(), s.size());
  return true;
}

inline std::string_view load_string(const void* obj, const BoundField& f) {
  if (f.storage == Storage::std_string) return *reinterpret_cast<const std::string*>(at(obj, f));
  const char* p = at(obj, f);
  return {p, strnlen(p, f.capacity)};
}

// The declared default (zero / empty when none).
inline void store_default(void* obj, const BoundField& f) {
  if (f.type == FieldType::string) {
    store_string(obj, f, f.default_text);
    return;
  }
  std::memcpy(at(obj, f), &f.default_bits, scalar_size(f.type));
}

Status field_error(const BindingCore& core, CodecId codec, const BoundField& f, const std::string& what);
Status type_error(const BindingCore& core, CodecId codec, const std::string& what);

}  // namespace sluice::serialization::internal
