// OrderFlow: a deterministic generator of order book events (new / cancel / fill) for many
// instruments — the workload of the order book sample, its tests and `sluice bench e2e
// --workload order_book`.
//
//   - Seeded: the same options give the same events on every machine (its own splitmix64
//     generator and integer arithmetic; no std:: distributions, whose results differ between
//     standard libraries).
//   - Skewed popularity: instrument i is picked with weight 1 / (i + 1)^skew (Zipf; with
//     1000 instruments and skew 1, instrument 0 gets ~13 % of the events, half the events go
//     to the 30 most popular).
//   - The mix: new_pct % new orders, cancel_pct % cancels, the rest fills (default 50/40/10).
//     A cancel or fill for an instrument with no open order becomes a new order, and a new
//     order for an instrument whose open orders are at max_open becomes a cancel, so the
//     realised mix is close to, not exactly, the asked one (mix() reports it).
//   - Prices around a moving mid: each instrument's mid takes a ±1 tick step on mid_move_pct %
//     of its events; a new order rests 1..band ticks away from it (near the mid more often
//     than far), never through the opposite side's best price, so the book never crosses.
//     A cancel takes a random open order of the instrument; a fill trades part or all of the
//     best order of a random side (fills happen at the top of the book).
//   - The generator is the matching engine's view: it keeps every open order (a fixed table
//     of max_open orders per instrument, allocated once), so tests can derive the expected
//     book from the open orders (for_each_open) independently of the projections.
//
// Not thread-safe: one producing thread.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "order_book_model.h"
#include "sluice/projections/event.h"

namespace order_book {

struct OrderFlowOptions {
  uint32_t instruments = 1000;
  uint64_t seed = 1;
  double skew = 1.0;             // Zipf exponent of instrument popularity (0: uniform)
  uint32_t new_pct = 50;         // new orders, %
  uint32_t cancel_pct = 40;      // cancels, %; fills: the rest
  uint32_t max_open = 64;        // open orders per instrument (the table is fixed)
  int64_t start_mid = 10'000;    // ticks
  uint32_t band = 20;            // a new order rests 1..band ticks from the mid
  uint32_t mid_move_pct = 5;     // % of an instrument's events that move its mid by a tick
};

// One generated event: kind says which member holds it.
struct OrderEvent {
  enum class Kind : uint8_t { new_order, cancel, fill };
  Kind kind = Kind::new_order;
  NewOrder new_order;
  Cancel cancel;
  Fill fill;

  uint32_t instrument() const noexcept {
    return kind == Kind::new_order ? new_order.instrument : kind == Kind::cancel ? cancel.instrument : fill.instrument;
  }
  // The raw-convention EventData (points into this object: keep it alive until appended).
  sluice::EventData raw() const noexcept {
    return kind == Kind::new_order ? sluice::encode_raw(new_order)
                                   : kind == Kind::cancel ? sluice::encode_raw(cancel) : sluice::encode_raw(fill);
  }
};

struct OpenOrder {
  uint64_t order_id = 0;
  Side side = Side::bid;
  int64_t price = 0;
  int64_t qty = 0;
};

class OrderFlow {
 public:
  explicit OrderFlow(const OrderFlowOptions& o = {})
      : o_(checked(o)), state_(o_.seed), cdf_(o_.instruments), mid_(o_.instruments, o_.start_mid),
        open_n_(o_.instruments, 0), open_(static_cast<size_t>(o_.instruments) * o_.max_open) {
    double total = 0;
    for (uint32_t i = 0; i < o_.instruments; ++i) total += weight(i);
    double run = 0;
    for (uint32_t i = 0; i < o_.instruments; ++i) {
      run += weight(i);
      cdf_[i] = run / total;
    }
    if (!cdf_.empty()) cdf_.back() = 1.0;
  }

  // The next event (allocates nothing).
  OrderEvent next() noexcept {
    const uint32_t inst = pick_instrument();
    const uint64_t r = rand() % 100;
    OrderEvent::Kind kind = r < o_.new_pct ? OrderEvent::Kind::new_order
                            : r < o_.new_pct + o_.cancel_pct ? OrderEvent::Kind::cancel
                                                              : OrderEvent::Kind::fill;
    const uint32_t n = open_n_[inst];
    if (kind != OrderEvent::Kind::new_order && n == 0) kind = OrderEvent::Kind::new_order;
    if (kind == OrderEvent::Kind::new_order && n == o_.max_open) kind = OrderEvent::Kind::cancel;
    if (rand() % 100 < o_.mid_move_pct) {
      mid_[inst] += rand() % 2 == 0 ? 1 : -1;
      if (mid_[inst] < static_cast<int64_t>(o_.band) + 2) mid_[inst] = static_cast<int64_t>(o_.band) + 2;
    }
    OrderEvent e;
    e.kind = kind;
    ++counts_[static_cast<int>(kind)];
    OpenOrder* orders = &open_[static_cast<size_t>(inst) * o_.max_open];
    switch (kind) {
      case OrderEvent::Kind::new_order: {
        const Side side = rand() % 2 == 0 ? Side::bid : Side::ask;
        const uint64_t a = rand() % o_.band, b = rand() % o_.band;
        const int64_t offset = 1 + static_cast<int64_t>(a * b / o_.band);  // near the mid more often
        int64_t price = side == Side::bid ? mid_[inst] - offset : mid_[inst] + offset;
        const int64_t opposite = best_price(inst, side == Side::bid ? Side::ask : Side::bid);
        if (opposite != 0) price = side == Side::bid ? std::min(price, opposite - 1) : std::max(price, opposite + 1);
        const int64_t qty = 100 * static_cast<int64_t>(1 + rand() % 10);
        const OpenOrder o{++last_order_id_, side, price, qty};
        orders[open_n_[inst]++] = o;
        e.new_order = NewOrder{o.order_id, inst, side, price, qty};
        break;
      }
      case OrderEvent::Kind::cancel: {
        const uint32_t j = static_cast<uint32_t>(rand() % n);
        const OpenOrder o = orders[j];
        orders[j] = orders[--open_n_[inst]];
        e.cancel = Cancel{o.order_id, inst, o.side, o.price, o.qty};
        break;
      }
      case OrderEvent::Kind::fill: {
        Side side = rand() % 2 == 0 ? Side::bid : Side::ask;
        int j = best_index(inst, side);
        if (j < 0) side = side == Side::bid ? Side::ask : Side::bid, j = best_index(inst, side);
        OpenOrder& o = orders[j];
        const int64_t qty = std::min(o.qty, 100 * static_cast<int64_t>(1 + rand() % 5));
        o.qty -= qty;
        e.fill = Fill{o.order_id, inst, o.side, o.price, qty, o.qty};
        if (o.qty == 0) orders[j] = orders[--open_n_[inst]];
        break;
      }
    }
    return e;
  }

  // f(instrument, open order) for every open order (the book as the matching engine holds it).
  template <class F>
  void for_each_open(F&& f) const {
    for (uint32_t i = 0; i < o_.instruments; ++i)
      for (uint32_t j = 0; j < open_n_[i]; ++j) f(i, open_[static_cast<size_t>(i) * o_.max_open + j]);
  }
  // Events generated so far by kind: new, cancel, fill.
  const uint64_t* mix() const noexcept { return counts_; }
  const OrderFlowOptions& options() const noexcept { return o_; }

 private:
  static OrderFlowOptions checked(OrderFlowOptions o) {
    o.instruments = std::max<uint32_t>(o.instruments, 1);
    o.band = std::max<uint32_t>(o.band, 1);
    o.max_open = std::max<uint32_t>(o.max_open, 1);
    o.start_mid = std::max<int64_t>(o.start_mid, static_cast<int64_t>(o.band) + 2);
    return o;
  }
  uint64_t rand() noexcept {  // splitmix64
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double weight(uint32_t i) const { return o_.skew == 0 ? 1.0 : 1.0 / std::pow(static_cast<double>(i) + 1.0, o_.skew); }
  uint32_t pick_instrument() noexcept {
    const double u = static_cast<double>(rand() >> 11) * 0x1.0p-53;
    uint32_t lo = 0, hi = o_.instruments - 1;  // first i with cdf_[i] > u
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (cdf_[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  // Index of the best open order of a side (highest bid, lowest ask; oldest first among
  // equals is not modelled: the first found), or -1.
  int best_index(uint32_t inst, Side side) const noexcept {
    const OpenOrder* orders = &open_[static_cast<size_t>(inst) * o_.max_open];
    int best = -1;
    for (uint32_t j = 0; j < open_n_[inst]; ++j) {
      if (orders[j].side != side) continue;
      if (best < 0 || (side == Side::bid ? orders[j].price > orders[best].price : orders[j].price < orders[best].price))
        best = static_cast<int>(j);
    }
    return best;
  }
  int64_t best_price(uint32_t inst, Side side) const noexcept {
    const int j = best_index(inst, side);
    return j < 0 ? 0 : open_[static_cast<size_t>(inst) * o_.max_open + static_cast<uint32_t>(j)].price;
  }

  OrderFlowOptions o_;
  uint64_t state_;
  std::vector<double> cdf_;        // cumulative popularity
  std::vector<int64_t> mid_;       // per instrument
  std::vector<uint32_t> open_n_;   // open orders per instrument
  std::vector<OpenOrder> open_;    // instruments x max_open
  uint64_t last_order_id_ = 0;
  uint64_t counts_[3] = {0, 0, 0};
};

}  // namespace order_book
