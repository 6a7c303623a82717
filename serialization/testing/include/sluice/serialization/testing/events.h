// Event types for the serialization tests, fuzz targets and `sluice bench codec`, declared
// once for every codec (FlatBuffers tables in serialization/testing/events.fbs).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <tuple>

#include "events_bfbs_generated.h"
#include "events_generated.h"
#include "sluice/serialization/event_traits.h"
#include "sluice/serialization/flatbuffers_codec.h"

namespace sluice::testing {

using serialization::FixedString;

// Small event: 3 fields, 24 bytes raw.
struct Deposited {
  uint64_t account = 0;
  int64_t amount = 0;
  FixedString<8> currency;
  friend bool operator==(const Deposited&, const Deposited&) = default;
};

struct Withdrawn {
  uint64_t account = 0;
  int64_t amount = 0;
  FixedString<8> currency;
  friend bool operator==(const Withdrawn&, const Withdrawn&) = default;
};

// Version 1 of Deposited, before `currency` was added.
struct DepositedV1 {
  uint64_t account = 0;
  int64_t amount = 0;
  friend bool operator==(const DepositedV1&, const DepositedV1&) = default;
};

enum class Side : uint8_t { buy = 0, sell = 1 };

// Medium event: an order with 21 fields, 144 bytes raw.
struct Order {
  uint64_t order_id = 0;
  uint64_t client_id = 0;
  uint64_t account = 0;
  uint32_t instrument_id = 0;
  Side side = Side::buy;
  uint8_t order_type = 0;
  uint8_t time_in_force = 0;
  uint8_t flags = 0;
  double price = 0;
  double stop_price = 0;
  int64_t quantity = 0;
  int64_t filled_quantity = 0;
  int64_t min_quantity = 0;
  int64_t display_quantity = 0;
  int64_t expire_ts = 0;
  int64_t created_ts = 0;
  uint16_t venue = 0;
  uint16_t strategy = 0;
  uint32_t trader = 0;
  FixedString<16> symbol;
  FixedString<24> client_ref;
  friend bool operator==(const Order&, const Order&) = default;
};

inline Order sample_order(uint64_t i) {
  Order o;
  o.order_id = 1'000'000 + i;
  o.client_id = 42;
  o.account = 7'700 + i % 13;
  o.instrument_id = 1234;
  o.side = i % 2 ? Side::sell : Side::buy;
  o.order_type = 2;
  o.time_in_force = 1;
  o.flags = 5;
  o.price = 101.25 + static_cast<double>(i % 100) / 100.0;
  o.stop_price = 99.5;
  o.quantity = 300 + static_cast<int64_t>(i % 7);
  o.filled_quantity = 100;
  o.min_quantity = 10;
  o.display_quantity = 50;
  o.expire_ts = 1'790'000'000'000'000'000;
  o.created_ts = 1'780'000'000'000'000'000 + static_cast<int64_t>(i);
  o.venue = 3;
  o.strategy = 17;
  o.trader = 90210;
  o.symbol = "ACME.XNAS";
  o.client_ref = "client-ref-000123";
  return o;
}

}  // namespace sluice::testing

namespace sluice::serialization {

template <>
struct EventTraits<testing::Deposited> {
  using T = testing::Deposited;
  static constexpr std::string_view name = "testing.Deposited";
  static constexpr uint16_t version = 2;
  static constexpr auto fields = std::make_tuple(field("account", &T::account),
                                                 field("amount", &T::amount),
                                                 field("currency", &T::currency, "EUR"));
  using FlatBuffersTable = sluice::testing::fb::Deposited;
  static std::span<const uint8_t> flatbuffers_schema() {
    return embedded_schema<sluice::testing::fb::OrderBinarySchema>();
  }
};

template <>
struct EventTraits<testing::Withdrawn> {
  using T = testing::Withdrawn;
  static constexpr std::string_view name = "testing.Withdrawn";
  static constexpr uint16_t version = 1;
  static constexpr auto fields = std::make_tuple(field("account", &T::account),
                                                 field("amount", &T::amount),
                                                 field("currency", &T::currency, "EUR"));
  using FlatBuffersTable = sluice::testing::fb::Withdrawn;
  static std::span<const uint8_t> flatbuffers_schema() {
    return embedded_schema<sluice::testing::fb::OrderBinarySchema>();
  }
};

template <>
struct EventTraits<testing::DepositedV1> {
  using T = testing::DepositedV1;
  static constexpr std::string_view name = "testing.Deposited";
  static constexpr uint16_t version = 1;
  static constexpr auto fields =
      std::make_tuple(field("account", &T::account), field("amount", &T::amount));
  using FlatBuffersTable = sluice::testing::fb::DepositedV1;
  static std::span<const uint8_t> flatbuffers_schema() {
    return embedded_schema<sluice::testing::fb::OrderBinarySchema>();
  }
};

template <>
struct EventTraits<testing::Order> {
  using T = testing::Order;
  static constexpr std::string_view name = "testing.Order";
  static constexpr uint16_t version = 1;
  static constexpr auto fields = std::make_tuple(
      field("order_id", &T::order_id), field("client_id", &T::client_id),
      field("account", &T::account), field("instrument_id", &T::instrument_id),
      field("side", &T::side), field("order_type", &T::order_type),
      field("time_in_force", &T::time_in_force), field("flags", &T::flags),
      field("price", &T::price), field("stop_price", &T::stop_price),
      field("quantity", &T::quantity), field("filled_quantity", &T::filled_quantity),
      field("min_quantity", &T::min_quantity), field("display_quantity", &T::display_quantity),
      field("expire_ts", &T::expire_ts), field("created_ts", &T::created_ts),
      field("venue", &T::venue), field("strategy", &T::strategy), field("trader", &T::trader),
      field("symbol", &T::symbol), field("client_ref", &T::client_ref));
  using FlatBuffersTable = sluice::testing::fb::Order;
  static std::span<const uint8_t> flatbuffers_schema() {
    return embedded_schema<sluice::testing::fb::OrderBinarySchema>();
  }
};

}  // namespace sluice::serialization
