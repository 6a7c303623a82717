// The FlatBuffers codec's public side (includes <flatbuffers/flatbuffers.h>). Include it
// where you declare or bind an event type with a FlatBuffersTable (EventTraits), or read a
// FlatBuffers payload in place:
//
//   #include "sluice/serialization/flatbuffers_codec.h"
//   auto order = FlatBuffersCodec::access<my::fb::Order>(event.payload());  // verified, no copy
//
// A projection whose handlers take `const T&` does not need it: decoding a FlatBuffers
// record into T runs inside the library.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include <flatbuffers/flatbuffers.h>

#include "sluice/serialization/binding.h"
#include "sluice/serialization/event_traits.h"
#include "sluice/status.h"

namespace sluice::serialization {

// What EncodeBuffer keeps for FlatBuffers encodes.
struct EncodeBuffer::FlatBuffersState {
  flatbuffers::FlatBufferBuilder builder{1024};
};

// The builder FlatBuffers encodes with `buf` use (for code that builds tables itself).
inline flatbuffers::FlatBufferBuilder& flatbuffers_builder(EncodeBuffer& buf) {
  return buf.flatbuffers_state().builder;
}

namespace detail {

// flatten: inline the Verifier's per-field calls (VerifyField<T>, VerifyOffset, VerifyString)
// that g++ -O2 otherwise leaves as calls: verified access to the codec bench's 208-byte Order
// went from 6.0 to 15.9-18.0 M/s in one sitting (bench/results/codec-2026-11-30.md).
template <class Table>
[[gnu::flatten]] bool verify_flatbuffer(const uint8_t* data, size_t size) {
  flatbuffers::Verifier v(data, size);
  return v.VerifyBuffer<Table>(nullptr);
}

template <class T>
struct FlatBuffersDescriber {
  static void describe(TypeDescription* d) {
    using Table = typename EventTraits<T>::FlatBuffersTable;
    d->fb_schema = EventTraits<T>::flatbuffers_schema();
    d->fb_table = Table::GetFullyQualifiedName();
    d->fb_verify = &verify_flatbuffer<Table>;
  }
};

}  // namespace detail

struct FlatBuffersCodec {
  // The generated table in place, after the Verifier has accepted the bytes.
  template <class Table>
  static Result<const Table*> access(std::span<const std::byte> payload) {
    auto* p = reinterpret_cast<const uint8_t*>(payload.data());
    if (!detail::verify_flatbuffer<Table>(p, payload.size()))
      return Status(StatusCode::invalid_argument,
                    std::string("invalid FlatBuffer for table ") + Table::GetFullyQualifiedName() +
                        " (" + std::to_string(payload.size()) + " bytes)");
    return flatbuffers::GetRoot<Table>(p);
  }
};

}  // namespace sluice::serialization
