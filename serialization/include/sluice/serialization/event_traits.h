// Declaring an event type: a plain struct plus an EventTraits specialization that names it,
// versions it and lists its fields. The same declaration serves every codec.
//
//   struct Deposited {
//     uint64_t account = 0;
//     int64_t amount = 0;
//     sluice::serialization::FixedString<8> currency;
//   };
//   template <> struct sluice::serialization::EventTraits<Deposited> {
//     static constexpr std::string_view name = "bank.Deposited";
//     static constexpr uint16_t version = 2;
//     static constexpr auto fields = std::make_tuple(
//         field("account", &Deposited::account),
//         field("amount", &Deposited::amount),
//         field("currency", &Deposited::currency, "EUR"));  // added in v2: has a default
//     // Optional, to allow codec flatbuffers: the flatc-generated table and binary schema.
//     using FlatBuffersTable = bank::fb::Deposited;
//     static std::span<const uint8_t> flatbuffers_schema() {
//       return sluice::serialization::embedded_schema<bank::fb::BankBinarySchema>();
//     }
//   };
//
// Field members may be bool, integers (8..64 bit), enums (stored as their underlying type),
// float, double, FixedString<N> (fixed capacity, allowed with every codec) and std::string
// (json and flatbuffers only: a raw struct must be trivially copyable).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

namespace sluice::serialization {

// A string of at most N bytes stored inline, zero padded: trivially copyable, so it can live
// in a raw struct, and decoding it never allocates. It holds no NUL byte.
template <size_t N>
struct FixedString {
  static_assert(N > 0, "FixedString needs a capacity");
  char chars[N] = {};

  constexpr FixedString() = default;
  constexpr FixedString(std::string_view s) noexcept {  // NOLINT: implicit, truncates
    for (size_t i = 0; i < N && i < s.size(); ++i) chars[i] = s[i];
  }
  constexpr FixedString(const char* s) noexcept  // NOLINT: implicit, truncates
      : FixedString(std::string_view(s)) {}
  static constexpr size_t capacity() noexcept { return N; }
  std::string_view view() const noexcept {
    size_t n = 0;
    while (n < N && chars[n] != '\0') ++n;
    return {chars, n};
  }
  // False (and no change) if `s` is longer than N or contains a NUL byte.
  bool assign(std::string_view s) noexcept {
    if (s.size() > N || s.find('\0') != std::string_view::npos) return false;
    std::memset(chars, 0, N);
    std::memcpy(chars, s.data(), s.size());
    return true;
  }
  friend bool operator==(const FixedString& a, const FixedString& b) noexcept {
    return a.view() == b.view();
  }
};

template <class T>
struct is_fixed_string : std::false_type {};
template <size_t N>
struct is_fixed_string<FixedString<N>> : std::true_type {};

template <class M>
inline constexpr bool is_string_member_v =
    is_fixed_string<M>::value || std::is_same_v<M, std::string>;

// The type of a field's declared default: the member type, or std::string_view for strings.
template <class M>
using default_of_t = std::conditional_t<is_string_member_v<M>, std::string_view, M>;

// One field of an event type: its name in every codec, its member, its default.
template <class T, class M>
struct FieldSpec {
  using Class = T;
  using Member = M;
  std::string_view name;
  M T::*member;
  bool has_default;
  default_of_t<M> default_value;
};

template <class T, class M>
constexpr FieldSpec<T, M> field(std::string_view name, M T::*member) {
  return {name, member, false, default_of_t<M>{}};
}
// A field with a default: readers of events written before the field existed (an older
// version, or a JSON object without the key) see this value.
template <class T, class M, class D>
constexpr FieldSpec<T, M> field(std::string_view name, M T::*member, D default_value) {
  return {name, member, true, static_cast<default_of_t<M>>(default_value)};
}

// Specialize for each event type (see the top of this file).
template <class T>
struct EventTraits;

template <class T>
concept Event = requires {
  { EventTraits<T>::name } -> std::convertible_to<std::string_view>;
  { EventTraits<T>::version } -> std::convertible_to<uint16_t>;
  EventTraits<T>::fields;
} && std::is_default_constructible_v<T>;

template <class T>
concept FlatBuffersEvent = Event<T> && requires {
  typename EventTraits<T>::FlatBuffersTable;
  { EventTraits<T>::flatbuffers_schema() } -> std::convertible_to<std::span<const uint8_t>>;
};

// The .bfbs bytes embedded by flatc --bfbs-gen-embed (struct <Root>BinarySchema).
template <class BinarySchema>
std::span<const uint8_t> embedded_schema() {
  return {BinarySchema::data(), BinarySchema::size()};
}

}  // namespace sluice::serialization
