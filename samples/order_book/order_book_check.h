// The reference model of the order book sample: the book that the generator's open orders
// make (a std::map, rebuilt from scratch, no incremental logic), and a check of the
// projections — one instance, or the shards of one — against it: every price level and
// every instrument's top of book. Used by the tests, the demo and the e2e bench (a bench
// whose read models are wrong yields no figure). Cold code: it allocates freely.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "order_book_model.h"
#include "order_flow.h"

namespace order_book {

// level_key -> Level, from the open orders.
inline std::map<uint64_t, Level> expected_levels(const OrderFlow& flow) {
  std::map<uint64_t, Level> m;
  flow.for_each_open([&](uint32_t inst, const OpenOrder& o) {
    Level& l = m[level_key(inst, o.side, o.price)];
    l.qty += o.qty;
    ++l.orders;
  });
  return m;
}

// The top of book of `inst` in a map from expected_levels().
inline Top expected_top(const std::map<uint64_t, Level>& levels, uint32_t inst) {
  Top t;
  for (auto it = levels.lower_bound(level_key(inst, Side::bid, 0)); it != levels.end() && key_instrument(it->first) == inst;
       ++it) {
    const bool bid = key_side(it->first) == Side::bid;
    int64_t& depth = bid ? t.bid_levels : t.ask_levels;
    if (bid || depth == 0) {  // bids ascend: the last one is the best; asks: the first
      (bid ? t.bid_price : t.ask_price) = key_price(it->first);
      (bid ? t.bid_qty : t.ask_qty) = it->second.qty;
      (bid ? t.bid_orders : t.ask_orders) = it->second.orders;
    }
    ++depth;
  }
  return t;
}

inline std::string describe(const Top& t) {
  return "bid " + std::to_string(t.bid_qty) + " @ " + std::to_string(t.bid_price) + " (" + std::to_string(t.bid_orders) +
         " orders, " + std::to_string(t.bid_levels) + " levels), ask " + std::to_string(t.ask_qty) + " @ " +
         std::to_string(t.ask_price) + " (" + std::to_string(t.ask_orders) + " orders, " + std::to_string(t.ask_levels) +
         " levels)";
}

// "" when the projections (the shards of one read model, together) hold exactly the book
// of the open orders; else the first difference. Call once the projections have applied
// every event the flow generated.
inline std::string check_against(const OrderFlow& flow, const std::vector<const PriceLevels*>& price_levels,
                                 const std::vector<const TopOfBook*>& tops) {
  const std::map<uint64_t, Level> want = expected_levels(flow);
  std::map<uint64_t, Level> got;
  std::string error;
  for (const PriceLevels* p : price_levels)
    p->for_each_level([&](uint32_t inst, Side side, int64_t price, const Level& l) {
      if (!got.emplace(level_key(inst, side, price), l).second && error.empty())
        error = "instrument " + std::to_string(inst) + " price " + std::to_string(price) + " is in two shards";
    });
  if (!error.empty()) return error;
  for (const auto& [k, l] : want) {
    auto it = got.find(k);
    if (it == got.end() || !(it->second == l))
      return "instrument " + std::to_string(key_instrument(k)) + (key_side(k) == Side::bid ? " bid " : " ask ") +
             std::to_string(key_price(k)) + ": expected " + std::to_string(l.qty) + " in " + std::to_string(l.orders) +
             " orders, price_levels has " +
             (it == got.end() ? std::string("nothing") : std::to_string(it->second.qty) + " in " + std::to_string(it->second.orders));
  }
  if (got.size() != want.size())
    return "price_levels holds " + std::to_string(got.size()) + " levels, the open orders make " + std::to_string(want.size());
  std::map<uint32_t, Top> got_tops;
  for (const TopOfBook* t : tops) t->for_each_top([&](uint32_t inst, const Top& top) { got_tops[inst] = top; });
  for (uint32_t inst = 0; inst < flow.options().instruments; ++inst) {
    const Top w = expected_top(want, inst);
    auto it = got_tops.find(inst);
    const Top g = it == got_tops.end() ? Top{} : it->second;
    if (!(g == w)) return "instrument " + std::to_string(inst) + ": expected " + describe(w) + ", top_of_book has " + describe(g);
  }
  return "";
}

}  // namespace order_book
