// EventBinding<T>: an event type bound to a type id, a version and a configured codec.
// Encodes with the configured codec; decodes a record with whatever codec the record names
// (so changing the configuration never breaks reading an existing log), and upcasts records
// of older versions through the registry's upcaster chain.
//
// Hot path: encode() and the decode of the current version do no heap allocation for events
// whose fields are scalars and FixedString (std::string fields allocate as strings do), and
// throw nothing.
//
// Thread safety: a binding is immutable; any number of threads may use it, each with its own
// EncodeBuffer. It refers to its SchemaRegistry, which must outlive it and must not be
// modified (bind, add, load, add_upcaster) while other threads decode.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "sluice/bus/log_types.h"
#include "sluice/serialization/codec.h"
#include "sluice/serialization/event_traits.h"
#include "sluice/serialization/field_types.h"
#include "sluice/status.h"

namespace sluice::serialization {

class SchemaRegistry;

// Scratch space for encoding; reuse one per thread so that encoding stops allocating once the
// buffers have grown. A payload returned by encode() is valid until the next encode with the
// same buffer. The FlatBuffers builder is made on the first FlatBuffers encode.
class EncodeBuffer {
 public:
  EncodeBuffer() noexcept;
  ~EncodeBuffer();
  EncodeBuffer(EncodeBuffer&&) noexcept;
  EncodeBuffer& operator=(EncodeBuffer&&) noexcept;
  std::string& text() noexcept { return text_; }
  // n bytes, 8-aligned, valid until the next call.
  std::byte* raw(size_t n) {
    if (raw_.size() * 8 < n) raw_.resize((n + 7) / 8);
    return reinterpret_cast<std::byte*>(raw_.data());
  }
  // The FlatBuffers state (a builder), defined where FlatBuffers is included; see
  // flatbuffers_codec.h for the builder itself.
  struct FlatBuffersState;
  FlatBuffersState& flatbuffers_state();

 private:
  std::unique_ptr<FlatBuffersState> fb_;
  std::string text_;
  std::vector<uint64_t> raw_;
};

namespace detail {

// How a C++ member holds a field.
enum class Storage : uint8_t { scalar, fixed_chars, std_string };

struct BoundField {
  std::string_view name;   // static storage: the traits' string literal
  FieldType type = FieldType::i64;
  Storage storage = Storage::scalar;
  uint32_t offset = 0;     // of the member in the C++ object
  uint32_t capacity = 0;   // fixed_chars: N
  uint16_t fb_voffset = 0; // vtable offset in the FlatBuffers table; 0 = not bound
  bool has_default = false;
  uint64_t default_bits = 0;     // scalar default, in the member's own representation
  uint64_t fb_default_bits = 0;  // the FlatBuffers schema's default, same representation
  std::string_view default_text; // string default
};

// What the traits say about T, in a form the non-template code can use.
struct TypeDescription {
  std::string_view name;
  uint16_t version = 0;
  size_t size = 0;
  bool trivially_copyable = false;
  std::vector<BoundField> fields;
  std::span<const uint8_t> fb_schema;  // empty: no FlatBuffers table for T
  std::string_view fb_table;
  bool (*fb_verify)(const uint8_t* data, size_t size) = nullptr;
};

// The non-template state and code behind EventBinding<T>.
class BindingCore {
 public:
  TypeDescription desc;
  uint32_t type_id = 0;
  CodecId codec = CodecId::raw;
  const SchemaRegistry* registry = nullptr;
  // Set when T's FlatBuffers table matched its fields; else fb_error says why not.
  bool (*fb_verify)(const uint8_t* data, size_t size) = nullptr;
  std::string fb_error;

  Status encode_json(const void* obj, std::string* out) const;
  // Builds the table in `buf`'s FlatBuffers builder; *out: the finished buffer.
  Status encode_flatbuffers(const void* obj, EncodeBuffer* buf, std::span<const std::byte>* out) const;
  Status decode_json(std::span<const std::byte> payload, void* obj) const;
  Status decode_flatbuffers(std::span<const std::byte> payload, void* obj) const;
  // JSON through a nlohmann DOM: the alternative `sluice bench codec` measures against the
  // simdjson on-demand decoder that decode_json uses.
  Status decode_json_dom(std::span<const std::byte> payload, void* obj) const;
  // Any version and codec: decode with the stored schema, upcast, then decode_document.
  Status decode_upcast(uint16_t version, CodecId codec, std::span<const std::byte> payload,
                       void* obj) const;
  Status wrong_type(uint32_t type_id) const;
  Status bad_raw_size(size_t size) const;
  Status unsupported_codec(CodecId codec) const;
};

template <class T, class M>
BoundField bind_field(const T& probe, const FieldSpec<T, M>& f) {
  BoundField b;
  b.name = f.name;
  b.offset = static_cast<uint32_t>(reinterpret_cast<const char*>(&(probe.*(f.member))) -
                                   reinterpret_cast<const char*>(&probe));
  b.has_default = f.has_default;
  if constexpr (is_fixed_string<M>::value) {
    b.type = FieldType::string;
    b.storage = Storage::fixed_chars;
    b.capacity = static_cast<uint32_t>(M::capacity());
    b.default_text = f.default_value;
  } else if constexpr (std::is_same_v<M, std::string>) {
    b.type = FieldType::string;
    b.storage = Storage::std_string;
    b.default_text = f.default_value;
  } else {
    using U = typename std::conditional_t<std::is_enum_v<M>, std::underlying_type<M>,
                                          std::type_identity<M>>::type;
    if constexpr (std::is_same_v<U, bool>) {
      b.type = FieldType::boolean;
    } else if constexpr (std::is_integral_v<U>) {
      constexpr bool s = std::is_signed_v<U>;
      if constexpr (sizeof(U) == 1) b.type = s ? FieldType::i8 : FieldType::u8;
      else if constexpr (sizeof(U) == 2) b.type = s ? FieldType::i16 : FieldType::u16;
      else if constexpr (sizeof(U) == 4) b.type = s ? FieldType::i32 : FieldType::u32;
      else {
        static_assert(sizeof(U) == 8, "integer fields are 8 to 64 bits");
        b.type = s ? FieldType::i64 : FieldType::u64;
      }
    } else if constexpr (std::is_same_v<U, float>) {
      b.type = FieldType::f32;
    } else {
      static_assert(std::is_same_v<U, double>,
                    "field types: bool, integers, enums, float, double, FixedString, std::string");
      b.type = FieldType::f64;
    }
    const M d = f.default_value;
    std::memcpy(&b.default_bits, &d, sizeof(M));
  }
  return b;
}

// A distinct address per C++ type (tells two types bound under one name apart).
template <class T>
const void* type_tag() noexcept {
  static const char tag = 0;
  return &tag;
}

// Fills in the FlatBuffers part of T's description (table name, binary schema, verifier).
// Defined in flatbuffers_codec.h: a program that binds an event type with a FlatBuffersTable
// includes that header (an "incomplete type FlatBuffersDescriber" error means it did not).
template <class T>
struct FlatBuffersDescriber;

template <Event T>
TypeDescription describe() {
  using Tr = EventTraits<T>;
  TypeDescription d;
  d.name = Tr::name;
  d.version = Tr::version;
  d.size = sizeof(T);
  d.trivially_copyable = std::is_trivially_copyable_v<T>;
  const T probe{};
  std::apply([&](const auto&... f) { (d.fields.push_back(bind_field(probe, f)), ...); },
             Tr::fields);
  if constexpr (FlatBuffersEvent<T>) FlatBuffersDescriber<T>::describe(&d);
  return d;
}

}  // namespace detail

template <Event T>
class EventBinding {
 public:
  EventBinding() = default;
  explicit EventBinding(std::shared_ptr<const detail::BindingCore> core) : core_(std::move(core)) {}

  bool valid() const noexcept { return core_ != nullptr; }
  uint32_t type_id() const noexcept { return core_->type_id; }
  uint16_t version() const noexcept { return core_->desc.version; }
  CodecId codec() const noexcept { return core_->codec; }
  std::string_view name() const noexcept { return core_->desc.name; }

  // Encodes `e` with the configured codec into an EventData ready for LogWriter::append.
  // The payload lives in `buf` until its next use.
  Result<EventData> encode(const T& e, EncodeBuffer& buf) const {
    EventData d;
    d.type = core_->type_id;
    d.schema_version = core_->desc.version;
    d.codec = static_cast<uint8_t>(core_->codec);
    switch (core_->codec) {
      case CodecId::raw:
        if constexpr (std::is_trivially_copyable_v<T>) {
          // A copy (a few ns), so the payload never points at a caller's temporary.
          std::byte* p = buf.raw(sizeof(T));
          std::memcpy(p, static_cast<const void*>(&e), sizeof(T));
          d.payload = std::span<const std::byte>(p, sizeof(T));
          return d;
        }
        break;
      case CodecId::json:
        if (Status st = core_->encode_json(&e, &buf.text()); !st.ok()) return st;
        d.payload = std::as_bytes(std::span<const char>(buf.text()));
        return d;
      case CodecId::flatbuffers:
        if (Status st = core_->encode_flatbuffers(&e, &buf, &d.payload); !st.ok()) return st;
        return d;
    }
    return core_->unsupported_codec(core_->codec);
  }

  // Decodes a record of this type: any codec, the current version or an older one
  // (upcast). Errors name the type, version, codec and field.
  Status decode(const RecordView& v, T* out) const {
    return decode(v.event_type(), v.schema_version(), v.codec_id(), v.payload(), out);
  }
  // `codec` may be the record's byte as stored (static_cast<CodecId>(v.codec())): the old raw
  // byte 1 reads as raw.
  Status decode(uint32_t type_id, uint16_t version, CodecId codec,
                std::span<const std::byte> payload, T* out) const {
    codec = decode_codec(static_cast<uint8_t>(codec));
    if (type_id != core_->type_id) return core_->wrong_type(type_id);
    if (version != core_->desc.version)
      return core_->decode_upcast(version, codec, payload, out);
    switch (codec) {
      case CodecId::raw:
        if constexpr (std::is_trivially_copyable_v<T>) {
          if (payload.size() != sizeof(T)) return core_->bad_raw_size(payload.size());
          std::memcpy(static_cast<void*>(out), payload.data(), sizeof(T));
          return Status();
        }
        break;
      case CodecId::json:
        return core_->decode_json(payload, out);
      case CodecId::flatbuffers:
        return core_->decode_flatbuffers(payload, out);
    }
    return core_->unsupported_codec(codec);
  }

  const detail::BindingCore& core() const noexcept { return *core_; }

 private:
  std::shared_ptr<const detail::BindingCore> core_;
};

// Zero-copy access for handlers that want it (codec-specific by nature). FlatBuffers:
// FlatBuffersCodec::access in flatbuffers_codec.h.
struct RawCodec {
  // The struct in place: checks size and alignment; no copy.
  template <class T>
  static Result<const T*> view(std::span<const std::byte> payload) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (payload.size() != sizeof(T))
      return Status(StatusCode::invalid_argument,
                    "raw payload of " + std::to_string(payload.size()) + " bytes, expected " +
                        std::to_string(sizeof(T)));
    if (reinterpret_cast<uintptr_t>(payload.data()) % alignof(T) != 0)
      return Status(StatusCode::invalid_argument, "raw payload is not aligned for the struct");
    return reinterpret_cast<const T*>(payload.data());
  }
};

}  // namespace sluice::serialization
