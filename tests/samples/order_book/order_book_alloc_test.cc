// The order book's projections allocate nothing per event once warm: a log of generated
// events (raw codec, through the schema registry) is applied by a price_levels and a
// top_of_book runner on this thread; after the first half (every price the run touches is
// then mostly seen, the stores are sized up front), the second half is counted. KeyedStore
// tables come from WorkerHeap (mimalloc's heap API, which the malloc wrap does not see), so
// the test also checks that no store grew.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/alloc_counter.h"
#include "order_book_model.h"
#include "order_flow.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"

namespace order_book {
namespace {

TEST(OrderBookHotPath, WarmProjectionsAllocateNothingPerEvent) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("sluice-order-book-alloc-" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(dir);
  constexpr uint64_t kEvents = 40'000;
  {
    sluice::LogOptions lo;
    lo.segment_size = 16 << 20;
    auto writer = sluice::LogWriter::open(dir, lo).value();
    sluice::serialization::SchemaRegistry registry;
    using sluice::serialization::CodecId;
    auto n = registry.bind<NewOrder>(CodecId::raw, writer.get()).value();
    auto c = registry.bind<Cancel>(CodecId::raw, writer.get()).value();
    auto f = registry.bind<Fill>(CodecId::raw, writer.get()).value();
    OrderFlowOptions fo;
    fo.instruments = 100;
    OrderFlow flow(fo);
    std::vector<sluice::StreamId> ids;
    for (uint32_t i = 0; i < fo.instruments; ++i) ids.push_back(writer->stream(stream_name(i)).value());
    sluice::serialization::EncodeBuffer buf;
    for (uint64_t i = 0; i < kEvents; ++i) {
      const OrderEvent e = flow.next();
      auto d = e.kind == OrderEvent::Kind::new_order ? n.encode(e.new_order, buf)
               : e.kind == OrderEvent::Kind::cancel  ? c.encode(e.cancel, buf)
                                                     : f.encode(e.fill, buf);
      ASSERT_TRUE(writer->append(ids[e.instrument()], sluice::ExpectedVersion::any(), d.value()).ok());
    }
  }
  auto reader = sluice::LogReader::open(dir).value();
  sluice::serialization::SchemaRegistry registry;
  ASSERT_TRUE(registry.load(*reader).ok());
  ASSERT_TRUE(bind_for_reading(registry).ok());
  sluice::ProjectionRunner::Context ctx;
  ctx.log_dir = dir;
  ctx.registry = &registry;
  sluice::ProjectionOptions po;
  po.checkpoint_every = 0;
  po.checkpoint_interval = std::chrono::milliseconds(0);
  sluice::ProjectionRunner levels("price_levels", *catalog().find(kPriceLevels), po, ctx);
  sluice::ProjectionRunner top("top_of_book", *catalog().find(kTopOfBook), po, ctx);
  ASSERT_TRUE(levels.open(reader->end_position(), false).ok());
  ASSERT_TRUE(top.open(reader->end_position(), false).ok());
  const uint64_t first = levels.next_position();  // after the schema records
  auto capacity = [&] {
    return std::static_pointer_cast<const PriceLevels>(levels.model())->capacity() +
           std::static_pointer_cast<const TopOfBook>(top.model())->capacity();
  };
  sluice::RecordView v;
  uint64_t applied = 0;
  size_t warm_capacity = 0;
  for (auto cur = reader->cursor(first); cur.next(&v);) {
    if (v.position() == first + kEvents / 2) {
      warm_capacity = capacity();
      g_allocations = 0;
      t_counting = true;  // this thread only
    }
    const bool end = v.position() % 256 == 255;
    levels.on_record(v, end);
    top.on_record(v, end);
    ++applied;
  }
  levels.end_batch(0);
  top.end_batch(0);
  t_counting = false;
  EXPECT_EQ(applied, reader->end_position() - first);
  EXPECT_EQ(g_allocations.load(), 0u) << "heap allocations while applying the second half";
  EXPECT_EQ(capacity(), warm_capacity) << "a store grew";
  EXPECT_TRUE(levels.dead_letters().empty());
  EXPECT_TRUE(top.dead_letters().empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace order_book
