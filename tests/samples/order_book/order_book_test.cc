// The order book sample: the generator (deterministic, the asked mix, skewed popularity, a
// book that never crosses) and the projections checked against the reference model — the
// book the generator's open orders make (order_book_check.h) — after a generated run
// through the engine, after a rebuild from the log, and sharded over several workers (the
// same read model as one worker). Also: a bad event leaves the model unchanged, and the
// catalog rebuilds every shard offline.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "order_book_check.h"
#include "order_book_model.h"
#include "order_flow.h"
#include "sluice/bus/log_reader.h"
#include "sluice/projections/rebuild.h"
#include "sluice/runtime/engine.h"

namespace order_book {
namespace {

using sluice::serialization::CodecId;

std::string fresh_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("sluice-order-book-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

OrderFlowOptions small_flow(uint64_t seed = 11) {
  OrderFlowOptions o;
  o.instruments = 200;
  o.seed = seed;
  o.max_open = 32;
  return o;
}
constexpr uint64_t kEvents = 30'000;

// A run through the engine: `workers` shards of each projection (shard i on worker i).
struct BookRun {
  std::unique_ptr<sluice::Engine> engine;
  std::vector<sluice::ProjectionHandle<PriceLevels>> levels;
  std::vector<sluice::ProjectionHandle<TopOfBook>> tops;
  std::vector<sluice::StreamId> ids;

  std::string check(const OrderFlow& flow) const {
    std::vector<std::shared_ptr<const PriceLevels>> lm;
    std::vector<std::shared_ptr<const TopOfBook>> tm;
    std::vector<const PriceLevels*> lp;
    std::vector<const TopOfBook*> tp;
    for (auto& h : levels) lp.push_back(lm.emplace_back(h.get()).get());
    for (auto& h : tops) tp.push_back(tm.emplace_back(h.get()).get());
    return check_against(flow, lp, tp);
  }
};

// No codec bound: events in the sample's raw convention, without the schema registry.
constexpr std::optional<CodecId> kUnbound;

BookRun start(const std::string& dir, uint32_t workers, std::optional<CodecId> codec, uint32_t instruments) {
  BookRun r;
  sluice::EngineOptions o;
  o.log.segment_size = 4 << 20;  // segment rolls happen within a run
  o.worker_cpus.assign(workers, -1);
  r.engine = sluice::Engine::open(dir, o).value();
  if (codec) {  // kUnbound: the raw convention (OrderEvent::raw()), no schema registry
    EXPECT_TRUE(r.engine->bind<NewOrder>(*codec).ok());
    EXPECT_TRUE(r.engine->bind<Cancel>(*codec).ok());
    EXPECT_TRUE(r.engine->bind<Fill>(*codec).ok());
  }
  for (uint32_t i = 0; i < workers; ++i) {
    const Shard s{i, workers};
    sluice::ProjectionOptions po;
    po.worker = static_cast<int>(i);
    r.levels.push_back(
        r.engine->add_projection<PriceLevels>(shard_name(kPriceLevels, s), po, [s] { return std::make_unique<PriceLevels>(s); })
            .value());
    r.tops.push_back(
        r.engine->add_projection<TopOfBook>(shard_name(kTopOfBook, s), po, [s] { return std::make_unique<TopOfBook>(s); })
            .value());
  }
  EXPECT_TRUE(r.engine->start().ok());
  for (uint32_t i = 0; i < instruments; ++i) r.ids.push_back(r.engine->stream(stream_name(i)).value());
  return r;
}

// Appends `n` generated events (raw convention, or through the bound codec) and waits until
// every projection applied them.
void feed(BookRun& r, OrderFlow& flow, uint64_t n, std::optional<CodecId> codec) {
  const auto& reg = r.engine->registry();
  sluice::serialization::EncodeBuffer buf;
  for (uint64_t i = 0; i < n; ++i) {
    const OrderEvent ev = flow.next();
    sluice::EventData d = ev.raw();
    if (codec) {
      auto enc = ev.kind == OrderEvent::Kind::new_order ? reg.binding<NewOrder>().encode(ev.new_order, buf)
                 : ev.kind == OrderEvent::Kind::cancel  ? reg.binding<Cancel>().encode(ev.cancel, buf)
                                                        : reg.binding<Fill>().encode(ev.fill, buf);
      ASSERT_TRUE(enc.ok()) << enc.status().to_string();
      d = enc.value();
    }
    ASSERT_TRUE(r.engine->append(r.ids[ev.instrument()], sluice::ExpectedVersion::any(), d).ok());
  }
  const uint64_t last = r.engine->committed_position() - 1;
  for (auto* runner : r.engine->runners()) ASSERT_TRUE(runner->wait_for(last, std::chrono::seconds(60)).ok());
}

std::vector<uint8_t> bytes(const OrderEvent& e) {
  const sluice::EventData d = e.raw();
  std::vector<uint8_t> b(d.payload.size() + 4);
  std::memcpy(b.data(), &d.type, 4);
  std::memcpy(b.data() + 4, d.payload.data(), d.payload.size());
  return b;
}

TEST(OrderFlow, TheSameSeedGivesTheSameEventsAndAnotherSeedOthers) {
  OrderFlow a(small_flow(5)), b(small_flow(5)), c(small_flow(6));
  bool differs = false;
  for (int i = 0; i < 20'000; ++i) {
    const OrderEvent x = a.next(), y = b.next(), z = c.next();
    ASSERT_EQ(bytes(x), bytes(y)) << "event " << i;
    differs = differs || bytes(x) != bytes(z);
  }
  EXPECT_TRUE(differs);
}

TEST(OrderFlow, MixIsNearTheAskedOneAndPopularityIsSkewed) {
  OrderFlowOptions o;  // the defaults: 1000 instruments, 50/40/10
  OrderFlow f(o);
  std::vector<uint64_t> per_instrument(o.instruments, 0);
  const uint64_t n = 200'000;
  for (uint64_t i = 0; i < n; ++i) ++per_instrument[f.next().instrument()];
  const double pct[3] = {100.0 * f.mix()[0] / n, 100.0 * f.mix()[1] / n, 100.0 * f.mix()[2] / n};
  EXPECT_NEAR(pct[0], 50, 5) << "new";
  EXPECT_NEAR(pct[1], 40, 5) << "cancel";
  EXPECT_NEAR(pct[2], 10, 5) << "fill";
  EXPECT_GT(per_instrument[0], 10 * per_instrument[100]);  // Zipf: weight 1 vs 1/101
  EXPECT_GT(per_instrument[999], 0u);
}

TEST(OrderFlow, TheBookNeverCrossesAndPricesStayPositive) {
  OrderFlow f(small_flow());
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 2000; ++i) f.next();
    const auto levels = expected_levels(f);
    for (uint32_t inst = 0; inst < f.options().instruments; ++inst) {
      const Top t = expected_top(levels, inst);
      if (t.bid_levels > 0) {
        EXPECT_GE(t.bid_price, 1);
      }
      if (t.bid_levels > 0 && t.ask_levels > 0) {
        EXPECT_LT(t.bid_price, t.ask_price) << "instrument " << inst;
      }
    }
  }
}

TEST(OrderBookEngine, ProjectionsMatchTheOpenOrdersAfterAGeneratedRun) {
  const std::string dir = fresh_dir("run");
  OrderFlow flow(small_flow());
  BookRun r = start(dir, 1, CodecId::raw, flow.options().instruments);
  feed(r, flow, kEvents, CodecId::raw);
  EXPECT_EQ(r.check(flow), "");
  const Top t0 = r.tops[0].get()->top(0).value_or(Top{});
  EXPECT_GT(t0.bid_levels + t0.ask_levels, 0);  // the most popular instrument has a book
  for (auto* runner : r.engine->runners()) EXPECT_TRUE(runner->dead_letters().empty()) << runner->name();
  ASSERT_TRUE(r.engine->stop().ok());
  std::filesystem::remove_all(dir);
}

// The live run writes JSON events; each projection is rebuilt from the log into a fresh
// instance (the replay loop the offline rebuild uses), which must hold the same book and
// the live digest.
TEST(OrderBookEngine, ARebuildFromTheLogMatchesTheOpenOrdersAndTheLiveDigest) {
  const std::string dir = fresh_dir("rebuild");
  OrderFlow flow(small_flow(21));
  BookRun r = start(dir, 1, CodecId::json, flow.options().instruments);
  feed(r, flow, 10'000, CodecId::json);
  const uint64_t live_levels = r.engine->runner("price_levels")->digest();
  const uint64_t live_top = r.engine->runner("top_of_book")->digest();
  ASSERT_TRUE(r.engine->stop().ok());
  r.engine.reset();

  auto reader = sluice::LogReader::open(dir).value();
  sluice::serialization::SchemaRegistry registry;
  ASSERT_TRUE(registry.load(*reader).ok());
  ASSERT_TRUE(bind_for_reading(registry).ok());
  auto replay = [&](std::string_view name) {
    sluice::ProjectionRunner::Context ctx;
    ctx.log_dir = dir;
    ctx.registry = &registry;
    sluice::ProjectionOptions po;
    po.checkpoint_interval = std::chrono::milliseconds(0);
    po.checkpoint_every = 0;
    auto runner = std::make_unique<sluice::ProjectionRunner>(std::string(name), *catalog().find(name), po, ctx);
    EXPECT_TRUE(runner->open(reader->end_position(), false).ok());
    auto reached = sluice::replay_into(*reader, *runner, reader->end_position());
    EXPECT_TRUE(reached.ok());
    EXPECT_EQ(reached.value(), reader->end_position());
    return runner;
  };
  auto levels = replay(kPriceLevels);
  auto top = replay(kTopOfBook);
  EXPECT_EQ(levels->digest(), live_levels);
  EXPECT_EQ(top->digest(), live_top);
  auto lm = std::static_pointer_cast<const PriceLevels>(levels->model());
  auto tm = std::static_pointer_cast<const TopOfBook>(top->model());
  EXPECT_EQ(check_against(flow, {lm.get()}, {tm.get()}), "");
  std::filesystem::remove_all(dir);
}

// Shards over three workers make the same read model as one worker: the same levels and
// the same tops, each instrument in exactly one shard.
TEST(OrderBookEngine, ShardedOverThreeWorkersEqualsOneWorker) {
  auto book = [](uint32_t workers) {
    const std::string dir = fresh_dir("shards-" + std::to_string(workers));
    OrderFlow flow(small_flow(33));
    BookRun r = start(dir, workers, kUnbound, flow.options().instruments);
    feed(r, flow, kEvents, kUnbound);
    EXPECT_EQ(r.check(flow), "") << workers << " workers";
    std::map<uint64_t, Level> levels;
    std::map<uint32_t, Top> tops;
    std::vector<size_t> per_shard;
    for (auto& h : r.levels) {
      size_t n = 0;
      h.get()->for_each_level([&](uint32_t inst, Side side, int64_t price, const Level& l) {
        EXPECT_TRUE(levels.emplace(level_key(inst, side, price), l).second);
        ++n;
      });
      per_shard.push_back(n);
    }
    for (auto& h : r.tops) h.get()->for_each_top([&](uint32_t inst, const Top& t) { EXPECT_TRUE(tops.emplace(inst, t).second); });
    for (size_t n : per_shard) EXPECT_GT(n, 0u) << "every shard owns some instruments";
    EXPECT_TRUE(r.engine->stop().ok());
    std::filesystem::remove_all(dir);
    return std::make_pair(levels, tops);
  };
  const auto one = book(1);
  const auto three = book(3);
  EXPECT_FALSE(one.first.empty());
  EXPECT_TRUE(one.first == three.first);
  EXPECT_TRUE(one.second == three.second);
}

// A cancel of more than the level holds is rejected (a dead letter naming the order) and
// changes nothing; later events of other instruments go on.
TEST(OrderBookEngine, AnImpossibleCancelIsRejectedAndLeavesTheBookUnchanged) {
  const std::string dir = fresh_dir("reject");
  BookRun r = start(dir, 1, kUnbound, 2);
  auto append = [&](uint32_t inst, const sluice::EventData& d) {
    ASSERT_TRUE(r.engine->append(r.ids[inst], sluice::ExpectedVersion::any(), d).ok());
  };
  const NewOrder n1{1, 0, Side::bid, 100, 500};
  const Cancel too_much{1, 0, Side::bid, 100, 600};
  const NewOrder n2{2, 1, Side::ask, 105, 300};
  append(0, sluice::encode_raw(n1));
  append(0, sluice::encode_raw(too_much));
  append(1, sluice::encode_raw(n2));
  for (auto* runner : r.engine->runners()) ASSERT_TRUE(runner->wait_for(2, std::chrono::seconds(30)).ok());
  EXPECT_EQ(r.levels[0].get()->level(0, Side::bid, 100), (Level{500, 1}));
  EXPECT_EQ(r.tops[0].get()->top(0).value_or(Top{}).bid_qty, 500);
  EXPECT_EQ(r.tops[0].get()->top(1).value_or(Top{}).ask_price, 105);
  for (auto* runner : r.engine->runners()) {
    auto dl = runner->dead_letters();
    ASSERT_EQ(dl.size(), 1u) << runner->name();
    EXPECT_NE(dl[0].reason.find("cancel of order 1"), std::string::npos) << dl[0].reason;
  }
  ASSERT_TRUE(r.engine->stop().ok());
  std::filesystem::remove_all(dir);
}

// The catalog behind `order_book rebuild` / `sluice rebuild --app order_book` knows every
// shard name and refuses others.
TEST(OrderBookCatalog, RebuildsAShardOfflineAndRefusesUnknownNames) {
  const std::string dir = fresh_dir("catalog");
  {
    OrderFlow flow(small_flow());
    BookRun r = start(dir, 2, CodecId::raw, flow.options().instruments);
    feed(r, flow, 3000, CodecId::raw);
    ASSERT_TRUE(r.engine->stop().ok());
  }
  EXPECT_NE(catalog().find("top_of_book.3-of-4"), nullptr);
  EXPECT_EQ(catalog().find("top_of_book.4-of-4"), nullptr);
  std::string d = dir, name = "top_of_book.1-of-2", cmd = "rebuild", dry = "--dry-run", quiet = "--quiet";
  char* argv[] = {cmd.data(), d.data(), name.data(), dry.data(), quiet.data()};
  EXPECT_EQ(sluice::rebuild_command(catalog(), 5, argv, "order_book rebuild"), 0);
  std::string unknown = "order_table";
  char* bad[] = {cmd.data(), d.data(), unknown.data(), quiet.data()};
  EXPECT_EQ(sluice::rebuild_command(catalog(), 4, bad, "order_book rebuild"), 2);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace order_book
