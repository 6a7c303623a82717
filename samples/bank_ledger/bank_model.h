// The bank ledger's events and read models (public API only). Accounts live in streams
// "account-<id>". Deposits and withdrawals are declared once (struct + EventTraits, with
// FlatBuffers tables in bank.fbs), so the sample can write them with any codec — raw,
// flatbuffers or json — and the projections' handlers below do not change: they receive
// `const Deposited&` whichever codec a record was written with.
//
//   balances       account -> balance
//   rich_accounts  accounts whose balance is over a threshold (kept as a set)
//   daily_totals   day -> deposits, withdrawals, events
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <span>
#include <string_view>
#include <tuple>

#include "bank_bfbs_generated.h"
#include "bank_generated.h"
#include "sluice/projections/catalog.h"
#include "sluice/projections/keyed_store.h"
#include "sluice/projections/projection.h"
#include "sluice/projections/projection_runner.h"
#include "sluice/serialization/event_traits.h"
#include "sluice/serialization/flatbuffers_codec.h"  // the events declare FlatBuffers tables
#include "sluice/serialization/schema_registry.h"

namespace bank {

// kEventType/kEventName: the raw convention, used where no schema registry is configured
// (logs written with sluice::encode_raw, as the projection tests do). With a registry the
// EventTraits below apply and the registry gives the type ids.
struct Deposited {
  static constexpr uint32_t kEventType = 1;
  static constexpr std::string_view kEventName = "Deposited";
  uint64_t account = 0;
  int64_t amount = 0;  // cents, > 0
  int64_t day = 0;     // days since the epoch
};
struct Withdrawn {
  static constexpr uint32_t kEventType = 2;
  static constexpr std::string_view kEventName = "Withdrawn";
  uint64_t account = 0;
  int64_t amount = 0;  // cents, > 0
  int64_t day = 0;
};

}  // namespace bank

template <>
struct sluice::serialization::EventTraits<bank::Deposited> {
  using T = bank::Deposited;
  static constexpr std::string_view name = "bank.Deposited";
  static constexpr uint16_t version = 1;
  static constexpr auto fields =
      std::make_tuple(field("account", &T::account), field("amount", &T::amount), field("day", &T::day));
  using FlatBuffersTable = bank::fb::Deposited;
  static std::span<const uint8_t> flatbuffers_schema() { return embedded_schema<bank::fb::DepositedBinarySchema>(); }
};
template <>
struct sluice::serialization::EventTraits<bank::Withdrawn> {
  using T = bank::Withdrawn;
  static constexpr std::string_view name = "bank.Withdrawn";
  static constexpr uint16_t version = 1;
  static constexpr auto fields =
      std::make_tuple(field("account", &T::account), field("amount", &T::amount), field("day", &T::day));
  using FlatBuffersTable = bank::fb::Withdrawn;
  static std::span<const uint8_t> flatbuffers_schema() { return embedded_schema<bank::fb::DepositedBinarySchema>(); }
};

namespace bank {

// Makes `registry` able to decode the bank events of a log it was loaded from (for the
// offline rebuild and tests): registers both types for reading when the log describes either
// of them. A log without schemas (raw convention) leaves the registry empty.
inline sluice::Status register_for_reading(sluice::serialization::SchemaRegistry& registry) {
  using sluice::serialization::EventTraits;
  if (!registry.type_id(EventTraits<Deposited>::name) && !registry.type_id(EventTraits<Withdrawn>::name))
    return sluice::Status::OK();
  if (auto d = registry.register_for_reading<Deposited>(); !d.ok()) return d.status();
  if (auto w = registry.register_for_reading<Withdrawn>(); !w.ok()) return w.status();
  return sluice::Status::OK();
}

inline std::string stream_name(uint64_t account) { return "account-" + std::to_string(account); }

// account -> balance. A withdrawal larger than the balance is rejected: the event is parked
// (dead letter) and later events of that account wait behind it.
class Balances final : public sluice::Projection {
 public:
  Balances() {
    on<Deposited>([this](const Deposited& d, const sluice::Event&) {
      balances_.update(d.account, 0, [&](int64_t& b) { b += d.amount; });
      return sluice::ApplyResult::ok;
    });
    on<Withdrawn>([this](const Withdrawn& w, const sluice::Event&) {
      if (const int64_t b = balances_.peek(w.account).value_or(0); b < w.amount)
        return reject("overdraft: account " + std::to_string(w.account) + " holds " + std::to_string(b) +
                      ", withdrawal of " + std::to_string(w.amount));
      balances_.update(w.account, 0, [&](int64_t& b) { b -= w.amount; });
      return sluice::ApplyResult::ok;
    });
  }
  std::optional<int64_t> balance(uint64_t account) const { return balances_.get(account); }
  template <class F>
  void for_each(F&& f) const { balances_.for_each(f); }
  auto over(int64_t threshold) const {
    return balances_.select([&](uint64_t, int64_t b) { return b > threshold; });
  }
  void save(sluice::SnapshotWriter& w) const override { balances_.save(w); }
  sluice::Status load(sluice::SnapshotReader& r) override { return balances_.load(r, "balances"); }
  uint64_t digest() const noexcept override { return balances_.digest(); }

 private:
  sluice::KeyedStore<int64_t> balances_{4096};
};

// The set of accounts whose balance is over `threshold` (with their balance).
class RichAccounts final : public sluice::Projection {
 public:
  explicit RichAccounts(int64_t threshold = 1'500'000) : threshold_(threshold) {
    on<Deposited>([this](const Deposited& d, const sluice::Event&) { return change(d.account, d.amount); });
    on<Withdrawn>([this](const Withdrawn& w, const sluice::Event&) { return change(w.account, -w.amount); });
  }
  auto accounts() const { return rich_.select([](uint64_t, int64_t) { return true; }); }
  size_t count_estimate() const { return rich_.size_estimate(); }
  int64_t threshold() const { return threshold_; }
  void save(sluice::SnapshotWriter& w) const override {
    balances_.save(w);
    rich_.save(w);
  }
  sluice::Status load(sluice::SnapshotReader& r) override {
    if (auto st = balances_.load(r, "rich_accounts balances"); !st.ok()) return st;
    return rich_.load(r, "rich_accounts set");
  }
  uint64_t digest() const noexcept override { return balances_.digest() * 31 + rich_.digest(); }

 private:
  sluice::ApplyResult change(uint64_t account, int64_t delta) {
    const int64_t b = balances_.peek(account).value_or(0) + delta;
    if (b < 0) return reject("overdraft: account " + std::to_string(account) + " would hold " + std::to_string(b));
    balances_.put(account, b);
    if (b > threshold_) rich_.put(account, b);
    else rich_.erase(account);
    return sluice::ApplyResult::ok;
  }
  int64_t threshold_;
  sluice::KeyedStore<int64_t> balances_{4096};
  sluice::KeyedStore<int64_t> rich_{1024};
};

struct DayTotals {
  int64_t deposits = 0;
  int64_t withdrawals = 0;
  int64_t events = 0;
};

class DailyTotals final : public sluice::Projection {
 public:
  DailyTotals() {
    on<Deposited>([this](const Deposited& d, const sluice::Event&) {
      totals_.update(static_cast<uint64_t>(d.day), DayTotals{}, [&](DayTotals& t) {
        t.deposits += d.amount;
        ++t.events;
      });
      return sluice::ApplyResult::ok;
    });
    on<Withdrawn>([this](const Withdrawn& w, const sluice::Event&) {
      totals_.update(static_cast<uint64_t>(w.day), DayTotals{}, [&](DayTotals& t) {
        t.withdrawals += w.amount;
        ++t.events;
      });
      return sluice::ApplyResult::ok;
    });
  }
  std::optional<DayTotals> day(int64_t d) const { return totals_.get(static_cast<uint64_t>(d)); }
  auto days() const { return totals_.select([](uint64_t, const DayTotals&) { return true; }); }
  void save(sluice::SnapshotWriter& w) const override { totals_.save(w); }
  sluice::Status load(sluice::SnapshotReader& r) override { return totals_.load(r, "daily_totals"); }
  uint64_t digest() const noexcept override { return totals_.digest(); }

 private:
  sluice::KeyedStore<DayTotals> totals_{256};
};

// The factories `sluice rebuild` knows, by projection name ("" when unknown).
inline sluice::ProjectionFactory factory_for(std::string_view name) {
  if (name == "balances") return [] { return std::make_unique<Balances>(); };
  if (name == "rich_accounts") return [] { return std::make_unique<RichAccounts>(); };
  if (name == "daily_totals") return [] { return std::make_unique<DailyTotals>(); };
  return nullptr;
}
inline constexpr std::string_view kProjectionNames[] = {"balances", "rich_accounts", "daily_totals"};

// The sample's projections for tools: `bank_ledger rebuild DIR PROJECTION` (and so
// `sluice rebuild --app bank_ledger DIR PROJECTION`) rebuilds any of them.
inline sluice::ProjectionCatalog catalog() {
  sluice::ProjectionCatalog c;
  for (std::string_view n : kProjectionNames) c.add(std::string(n), factory_for(n));
  c.set_types(register_for_reading);
  return c;
}

}  // namespace bank
