// Event: what a projection handler sees — a zero-copy view of one committed record — and
// the raw typed-event convention for logs written without a schema registry.
//
// Typed events normally declare serialization::EventTraits (any codec, type ids from the
// registry: see Projection::on<T>() and docs/projections.md). Without a registry, a
// trivially copyable struct that names its own type id and name works too:
//
//   struct Deposited {
//     static constexpr uint32_t kEventType = 1;
//     static constexpr std::string_view kEventName = "Deposited";
//     uint64_t account; int64_t amount; int64_t day;
//   };
//
// encode_raw(e) makes the EventData to append (codec raw, byte 0: the struct's bytes, the same
// bytes a SchemaRegistry binding of codec raw writes, minus the schema record); a handler
// registered with Projection::on<Deposited>() receives the decoded struct.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>

#include "sluice/bus/codec_id.h"
#include "sluice/bus/log_types.h"

namespace sluice {

template <class T>
concept TypedEvent = std::is_trivially_copyable_v<T> && requires {
  { T::kEventType } -> std::convertible_to<uint32_t>;
  { T::kEventName } -> std::convertible_to<std::string_view>;
};

class Event {
 public:
  explicit Event(const RecordView& v) noexcept : v_(v) {}
  uint64_t position() const noexcept { return v_.position(); }
  StreamId stream_id() const noexcept { return v_.stream_id(); }
  uint64_t stream_version() const noexcept { return v_.stream_version(); }
  uint32_t type() const noexcept { return v_.event_type(); }
  uint16_t schema_version() const noexcept { return v_.schema_version(); }
  int64_t timestamp_ns() const noexcept { return v_.timestamp_ns(); }
  std::span<const std::byte> payload() const noexcept { return v_.payload(); }
  const RecordView& record() const noexcept { return v_; }

  template <TypedEvent T>
  bool is() const noexcept { return type() == T::kEventType; }
  // Raw codec: false when the type or the payload size does not match T.
  template <TypedEvent T>
  bool decode(T* out) const noexcept {
    auto p = payload();
    if (type() != T::kEventType || p.size() != sizeof(T)) return false;
    std::memcpy(static_cast<void*>(out), p.data(), sizeof(T));
    return true;
  }

 private:
  const RecordView& v_;
};

// EventData for a typed event; the returned value points at `e`, which must outlive the append.
template <TypedEvent T>
EventData encode_raw(const T& e) noexcept {
  EventData d;
  d.type = T::kEventType;
  d.codec = static_cast<uint8_t>(CodecId::raw);
  d.payload = std::as_bytes(std::span<const T>(&e, 1));
  return d;
}

}  // namespace sluice
