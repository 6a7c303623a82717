// The order book's events and read models (public API only): a trading workload of new,
// cancel and fill events for many instruments, one stream per instrument ("instrument-<id>").
// The events are declared once (struct + EventTraits), so the sample writes them with the
// raw or the JSON codec and the handlers below do not change; they also carry kEventType
// for the raw convention (logs without a schema registry, as `sluice bench e2e --workload
// order_book` writes them).
//
//   price_levels   (instrument, side, price) -> open quantity and order count
//   top_of_book    instrument -> best bid and best ask with their sizes and depth
//
// The events state what a consumer needs: a Cancel or a Fill names the order's side, price
// and quantity, not only its id. (Market-by-order feeds such as ITCH send only the order id
// and make every consumer keep a table of open orders; here the matching engine that writes
// the log knows the order, so it says so once, and each projection's state is the price
// levels it serves — O(levels), not O(open orders).)
//
// Sharding by instrument: a projection built with Shard{i, n} handles the events of the
// streams s with mix_key(s) % n == i — the bus's own shard rule (sluice/bus/event_processor.h,
// ShardKey<CommittedRecord> = stream id) — and skips the rest before decoding them. With one
// stream per instrument, that is sharding by instrument. The engine places projections on
// workers (ProjectionOptions::worker), so n instances i = 0..n-1 on n workers make one read
// model spread over n workers; shard_name() names them ("price_levels.1-of-4").
//
// Allocation: the stores are sized up front (the capacity arguments) and a level that
// empties is kept as a zero entry instead of erased (an erase leaves a tombstone, and
// tombstones make KeyedStore rebuild its table — an allocation). So once every price a run
// touches has been seen, applying an event allocates nothing. What can still allocate:
// growth, when the distinct (instrument, side, price) entries pass 70 % of the capacity (a
// doubling, amortised; raise the capacity to avoid it), and a reject (its reason string).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "sluice/bus/event_processor.h"
#include "sluice/projections/catalog.h"
#include "sluice/projections/keyed_store.h"
#include "sluice/projections/projection.h"
#include "sluice/projections/projection_runner.h"
#include "sluice/serialization/event_traits.h"
#include "sluice/serialization/schema_registry.h"

namespace order_book {

enum class Side : uint32_t { bid = 0, ask = 1 };

// A limit order enters the book (it rests at price_ticks for qty).
struct NewOrder {
  static constexpr uint32_t kEventType = 201;
  static constexpr std::string_view kEventName = "NewOrder";
  uint64_t order_id = 0;
  uint32_t instrument = 0;
  Side side = Side::bid;
  int64_t price_ticks = 0;  // 1 .. kMaxPrice
  int64_t qty = 0;          // > 0
};
// A resting order leaves the book: qty is what was still open.
struct Cancel {
  static constexpr uint32_t kEventType = 202;
  static constexpr std::string_view kEventName = "Cancel";
  uint64_t order_id = 0;
  uint32_t instrument = 0;
  Side side = Side::bid;
  int64_t price_ticks = 0;
  int64_t qty = 0;  // the open quantity removed, > 0
};
// A resting order trades qty at its price; remaining is what stays open (0: it is gone).
struct Fill {
  static constexpr uint32_t kEventType = 203;
  static constexpr std::string_view kEventName = "Fill";
  uint64_t order_id = 0;
  uint32_t instrument = 0;
  Side side = Side::bid;
  int64_t price_ticks = 0;
  int64_t qty = 0;        // traded, > 0
  int64_t remaining = 0;  // open after the fill, >= 0
};

inline constexpr int64_t kMaxPrice = (int64_t{1} << 31) - 1;

}  // namespace order_book

template <>
struct sluice::serialization::EventTraits<order_book::NewOrder> {
  using T = order_book::NewOrder;
  static constexpr std::string_view name = "order_book.NewOrder";
  static constexpr uint16_t version = 1;
  static constexpr auto fields =
      std::make_tuple(field("order_id", &T::order_id), field("instrument", &T::instrument), field("side", &T::side),
                      field("price_ticks", &T::price_ticks), field("qty", &T::qty));
};
template <>
struct sluice::serialization::EventTraits<order_book::Cancel> {
  using T = order_book::Cancel;
  static constexpr std::string_view name = "order_book.Cancel";
  static constexpr uint16_t version = 1;
  static constexpr auto fields =
      std::make_tuple(field("order_id", &T::order_id), field("instrument", &T::instrument), field("side", &T::side),
                      field("price_ticks", &T::price_ticks), field("qty", &T::qty));
};
template <>
struct sluice::serialization::EventTraits<order_book::Fill> {
  using T = order_book::Fill;
  static constexpr std::string_view name = "order_book.Fill";
  static constexpr uint16_t version = 1;
  static constexpr auto fields =
      std::make_tuple(field("order_id", &T::order_id), field("instrument", &T::instrument), field("side", &T::side),
                      field("price_ticks", &T::price_ticks), field("qty", &T::qty), field("remaining", &T::remaining));
};

namespace order_book {

// Makes `registry` able to decode the order book's events of a log it was loaded from (the
// offline rebuild, tests). A log without schemas (raw convention) leaves it empty.
inline sluice::Status bind_for_reading(sluice::serialization::SchemaRegistry& registry) {
  using sluice::serialization::EventTraits;
  if (!registry.type_id(EventTraits<NewOrder>::name) && !registry.type_id(EventTraits<Cancel>::name) &&
      !registry.type_id(EventTraits<Fill>::name))
    return sluice::Status::OK();
  if (auto r = registry.register_for_reading<NewOrder>(); !r.ok()) return r.status();
  if (auto r = registry.register_for_reading<Cancel>(); !r.ok()) return r.status();
  if (auto r = registry.register_for_reading<Fill>(); !r.ok()) return r.status();
  return sluice::Status::OK();
}

inline std::string stream_name(uint32_t instrument) { return "instrument-" + std::to_string(instrument); }

// Which instruments (streams) a projection instance owns: the bus's shard rule.
struct Shard {
  uint32_t index = 0;
  uint32_t count = 1;
  bool owns(sluice::StreamId stream) const noexcept {
    return count <= 1 || sluice::mix_key(stream) % count == index;
  }
};
// "price_levels" for one shard, "price_levels.1-of-4" for shard 1 of 4.
inline std::string shard_name(std::string_view base, Shard s) {
  std::string n(base);
  if (s.count > 1) n += "." + std::to_string(s.index) + "-of-" + std::to_string(s.count);
  return n;
}

// One price level: open quantity and number of open orders (both 0: empty).
struct Level {
  int64_t qty = 0;
  int64_t orders = 0;
  friend bool operator==(const Level&, const Level&) = default;
};

// Best bid and ask of an instrument; a side with no order has price, qty and orders 0.
// *_levels: how many non-empty price levels that side has (its depth).
struct Top {
  int64_t bid_price = 0, bid_qty = 0, bid_orders = 0, bid_levels = 0;
  int64_t ask_price = 0, ask_qty = 0, ask_orders = 0, ask_levels = 0;
  friend bool operator==(const Top&, const Top&) = default;
};

// Key of a price level: instrument (32 bits) | side (1 bit) | price (31 bits).
inline uint64_t level_key(uint32_t instrument, Side side, int64_t price) noexcept {
  return (uint64_t{instrument} << 32) | (uint64_t{static_cast<uint32_t>(side) & 1u} << 31) |
         static_cast<uint64_t>(price & kMaxPrice);
}
inline uint32_t key_instrument(uint64_t key) noexcept { return static_cast<uint32_t>(key >> 32); }
inline Side key_side(uint64_t key) noexcept { return (key >> 31) & 1 ? Side::ask : Side::bid; }
inline int64_t key_price(uint64_t key) noexcept { return static_cast<int64_t>(key & static_cast<uint64_t>(kMaxPrice)); }

// A change of one level (new: +qty +1 order; cancel: -qty -1; fill: -qty, -1 if nothing
// remains), decoded from any of the three events. Shared by both projections.
struct LevelChange {
  uint32_t instrument = 0;
  Side side = Side::bid;
  int64_t price = 0;
  int64_t qty = 0;     // signed
  int64_t orders = 0;  // signed
};

// Projection base of the sample: shard filter, and the three handlers turned into one
// LevelChange (validated against the level's current state before anything changes, so a
// rejected event leaves the model untouched).
class BookProjection : public sluice::Projection {
 public:
  explicit BookProjection(Shard shard) : shard_(shard) {
    on<NewOrder>([this](const NewOrder& o, const sluice::Event&) {
      if (o.qty <= 0) return reject_event("new order", o.order_id, "quantity " + std::to_string(o.qty));
      return change({o.instrument, o.side, o.price_ticks, o.qty, 1}, o.order_id, "new order");
    });
    on<Cancel>([this](const Cancel& c, const sluice::Event&) {
      if (c.qty <= 0) return reject_event("cancel", c.order_id, "quantity " + std::to_string(c.qty));
      return change({c.instrument, c.side, c.price_ticks, -c.qty, -1}, c.order_id, "cancel");
    });
    on<Fill>([this](const Fill& f, const sluice::Event&) {
      if (f.qty <= 0 || f.remaining < 0)
        return reject_event("fill", f.order_id, "quantity " + std::to_string(f.qty) + ", remaining " + std::to_string(f.remaining));
      return change({f.instrument, f.side, f.price_ticks, -f.qty, f.remaining == 0 ? -1 : 0}, f.order_id, "fill");
    });
  }
  // Events of instruments another shard owns are skipped before they are decoded.
  sluice::ApplyResult apply(const sluice::Event& e) override {
    if (!shard_.owns(e.stream_id())) return sluice::ApplyResult::skip;
    return Projection::apply(e);
  }
  Shard shard() const noexcept { return shard_; }

 protected:
  // Applies a validated change: `before` is the level's state, `after` what it becomes.
  virtual void apply_change(const LevelChange& c, const Level& before, const Level& after) = 0;
  // The level's current state (worker thread).
  virtual Level peek_level(uint64_t key) const noexcept = 0;

 private:
  sluice::ApplyResult change(const LevelChange& c, uint64_t order_id, const char* what) {
    if (c.price < 1 || c.price > kMaxPrice) return reject_event(what, order_id, "price " + std::to_string(c.price));
    const Level before = peek_level(level_key(c.instrument, c.side, c.price));
    const Level after{before.qty + c.qty, before.orders + c.orders};
    if (after.qty < 0 || after.orders < 0 || (after.orders == 0) != (after.qty == 0))
      return reject_event(what, order_id,
                          "level " + std::to_string(c.price) + " holds " + std::to_string(before.qty) + " in " +
                              std::to_string(before.orders) + " orders");
    apply_change(c, before, after);
    return sluice::ApplyResult::ok;
  }
  sluice::ApplyResult reject_event(const char* what, uint64_t order_id, const std::string& why) {
    return reject(std::string(what) + " of order " + std::to_string(order_id) + ": " + why);
  }
  Shard shard_;
};

// (instrument, side, price) -> open quantity and order count.
class PriceLevels final : public BookProjection {
 public:
  explicit PriceLevels(Shard shard = {}, size_t capacity = size_t{1} << 17) : BookProjection(shard), levels_(capacity) {}

  // ---- queries, any thread ----
  // The level at a price (nullopt: no open order there).
  std::optional<Level> level(uint32_t instrument, Side side, int64_t price) const {
    auto l = levels_.get(level_key(instrument, side, price));
    if (!l || l->orders == 0) return std::nullopt;
    return l;
  }
  // The non-empty levels of one side, best first (bids high to low, asks low to high).
  std::vector<std::pair<int64_t, Level>> levels(uint32_t instrument, Side side) const {
    std::vector<std::pair<int64_t, Level>> out;
    levels_.for_each([&](uint64_t k, const Level& l) {
      if (l.orders > 0 && key_instrument(k) == instrument && key_side(k) == side) out.emplace_back(key_price(k), l);
    });
    std::sort(out.begin(), out.end(), [side](const auto& a, const auto& b) {
      return side == Side::bid ? a.first > b.first : a.first < b.first;
    });
    return out;
  }
  // f(instrument, side, price, level) for every non-empty level, in no particular order.
  template <class F>
  void for_each_level(F&& f) const {
    levels_.for_each([&](uint64_t k, const Level& l) {
      if (l.orders > 0) f(key_instrument(k), key_side(k), key_price(k), l);
    });
  }

  // Slots of the store (worker thread): unchanged while nothing grows.
  size_t capacity() const noexcept { return levels_.capacity(); }

  void save(sluice::SnapshotWriter& w) const override { levels_.save(w); }
  sluice::Status load(sluice::SnapshotReader& r) override { return levels_.load(r, "price_levels"); }
  uint64_t digest() const noexcept override { return levels_.digest(); }

 private:
  void apply_change(const LevelChange& c, const Level&, const Level& after) override {
    levels_.put(level_key(c.instrument, c.side, c.price), after);  // an emptied level stays, as zeros
  }
  Level peek_level(uint64_t key) const noexcept override { return levels_.peek(key).value_or(Level{}); }

  sluice::KeyedStore<Level> levels_;
};

// instrument -> best bid and ask with their sizes. Keeps its own levels (worker side) to
// find the next best price when the best level empties: it walks tick by tick away from the
// old best until a non-empty level, which exists because the side's level count says so;
// the walk is as long as the gap between the two best prices.
class TopOfBook final : public BookProjection {
 public:
  explicit TopOfBook(Shard shard = {}, size_t level_capacity = size_t{1} << 17, size_t instrument_capacity = 8192)
      : BookProjection(shard), levels_(level_capacity), top_(instrument_capacity) {}

  // ---- queries, any thread ----
  std::optional<Top> top(uint32_t instrument) const { return top_.get(instrument); }
  // f(instrument, top) for every instrument seen.
  template <class F>
  void for_each_top(F&& f) const {
    top_.for_each([&](uint64_t k, const Top& t) { f(static_cast<uint32_t>(k), t); });
  }

  // Slots of the two stores (worker thread): unchanged while nothing grows.
  size_t capacity() const noexcept { return levels_.capacity() + top_.capacity(); }

  void save(sluice::SnapshotWriter& w) const override {
    levels_.save(w);
    top_.save(w);
  }
  sluice::Status load(sluice::SnapshotReader& r) override {
    if (auto st = levels_.load(r, "top_of_book levels"); !st.ok()) return st;
    return top_.load(r, "top_of_book");
  }
  uint64_t digest() const noexcept override { return levels_.digest() * 31 + top_.digest(); }

 private:
  Level peek_level(uint64_t key) const noexcept override { return levels_.peek(key).value_or(Level{}); }
  void apply_change(const LevelChange& c, const Level& before, const Level& after) override {
    levels_.put(level_key(c.instrument, c.side, c.price), after);
    Top t = top_.peek(c.instrument).value_or(Top{});
    const bool bid = c.side == Side::bid;
    int64_t& best = bid ? t.bid_price : t.ask_price;
    int64_t& qty = bid ? t.bid_qty : t.ask_qty;
    int64_t& orders = bid ? t.bid_orders : t.ask_orders;
    int64_t& depth = bid ? t.bid_levels : t.ask_levels;
    const bool had = depth > 0;
    if (before.orders == 0 && after.orders > 0) ++depth;
    if (before.orders > 0 && after.orders == 0) --depth;
    const bool better = bid ? c.price > best : c.price < best;
    if (after.orders > 0 && (!had || better || c.price == best)) {
      best = c.price, qty = after.qty, orders = after.orders;
    } else if (c.price == best && after.orders == 0) {  // the best level emptied
      best = qty = orders = 0;
      const int64_t step = bid ? -1 : 1;
      for (int64_t p = c.price + step; depth > 0 && p >= 1 && p <= kMaxPrice; p += step)
        if (const Level l = peek_level(level_key(c.instrument, c.side, p)); l.orders > 0) {
          best = p, qty = l.qty, orders = l.orders;
          break;
        }
    }
    top_.put(c.instrument, t);
  }

  sluice::KeyedStore<Level> levels_;  // what price_levels holds, for this projection's walk
  sluice::KeyedStore<Top> top_;
};

inline constexpr std::string_view kPriceLevels = "price_levels";
inline constexpr std::string_view kTopOfBook = "top_of_book";
inline constexpr uint32_t kMaxCatalogShards = 4;

// The factory of a projection name: "price_levels", "top_of_book", or a shard of either
// ("top_of_book.2-of-4", up to kMaxCatalogShards); nullptr when unknown.
inline sluice::ProjectionFactory factory_for(std::string_view name) {
  for (uint32_t n = 1; n <= kMaxCatalogShards; ++n)
    for (uint32_t i = 0; i < n; ++i) {
      const Shard s{i, n};
      if (name == shard_name(kPriceLevels, s)) return [s] { return std::make_unique<PriceLevels>(s); };
      if (name == shard_name(kTopOfBook, s)) return [s] { return std::make_unique<TopOfBook>(s); };
    }
  return nullptr;
}

// The sample's projections for tools: `order_book rebuild DIR PROJECTION` (and so
// `sluice rebuild --app order_book DIR PROJECTION`) rebuilds any of them, shards included.
inline sluice::ProjectionCatalog catalog() {
  sluice::ProjectionCatalog c;
  for (uint32_t n = 1; n <= kMaxCatalogShards; ++n)
    for (uint32_t i = 0; i < n; ++i)
      for (std::string_view base : {kPriceLevels, kTopOfBook}) {
        std::string name = shard_name(base, Shard{i, n});
        c.add(name, factory_for(name));
      }
  c.set_types(bind_for_reading);
  return c;
}

}  // namespace order_book
