// The schema registry stored in the log, and schema evolution with upcaster chains.
#include <gtest/gtest.h>

#include "sluice/serialization/document.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/serialization/testing/events.h"
#include "test_util.h"

// Version 3 of testing.Deposited: `amount` became `amount_cents` and `memo` was added.
struct DepositedV3 {
  uint64_t account = 0;
  int64_t amount_cents = 0;
  sluice::serialization::FixedString<8> currency;
  std::string memo;
};
template <>
struct sluice::serialization::EventTraits<DepositedV3> {
  using T = DepositedV3;
  static constexpr std::string_view name = "testing.Deposited";
  static constexpr uint16_t version = 3;
  static constexpr auto fields = std::make_tuple(
      field("account", &T::account), field("amount_cents", &T::amount_cents),
      field("currency", &T::currency, "EUR"), field("memo", &T::memo, "-"));
};

namespace sluice::serialization {
namespace {

using sluice::testing::Deposited;
using sluice::testing::DepositedV1;
using sluice::testing::Order;
using sluice::testing::TempLog;

size_t schema_records(const std::string& dir) {
  auto r = LogReader::open(dir);
  if (!r.ok()) return 0;
  size_t n = 0;
  for (const RecordView& v : (*r)->system_records()) n += v.type() == log_format::kTypeSchema;
  return n;
}

// v3 reads amount (units) as amount_cents.
Status amount_to_cents(nlohmann::json& e) {
  auto it = e.find("amount");
  if (it == e.end() || !it->is_number_integer()) return Status(StatusCode::invalid_argument, "no amount");
  e["amount_cents"] = it->get<int64_t>() * 100;
  e.erase("amount");
  return Status();
}

TEST(Registry, SchemasAreWrittenToTheLogOnceAndLoadBack) {
  TempLog log;
  uint32_t order_id = 0;
  {
    auto w = log.writer();
    SchemaRegistry reg;
    auto o = reg.bind<Order>(CodecId::flatbuffers, w.get());
    auto d = reg.bind<Deposited>(CodecId::json, w.get());
    ASSERT_TRUE(o.ok() && d.ok());
    order_id = o->type_id();
    EXPECT_EQ(order_id, 1u);
    EXPECT_EQ(d->type_id(), 2u);
    ASSERT_TRUE(w->close().ok());
  }
  EXPECT_EQ(schema_records(log.dir()), 2u);
  {
    // A second program: loads the registry first, binds the same types: nothing new written.
    SchemaRegistry reg;
    ASSERT_TRUE(reg.load(log.dir()).ok());
    EXPECT_EQ(reg.size(), 2u);
    auto w = log.writer();
    auto d = reg.bind<Deposited>(CodecId::json, w.get());
    auto o = reg.bind<Order>(CodecId::flatbuffers, w.get());
    ASSERT_TRUE(o.ok() && d.ok());
    EXPECT_EQ(o->type_id(), order_id);
    // Switching the codec is configuration: a new schema entry, same type id.
    auto raw = reg.bind<Order>(CodecId::raw, w.get());
    ASSERT_TRUE(raw.ok()) << raw.status().to_string();
    EXPECT_EQ(raw->type_id(), order_id);
    ASSERT_TRUE(w->close().ok());
  }
  EXPECT_EQ(schema_records(log.dir()), 3u);
  SchemaRegistry reg;
  ASSERT_TRUE(reg.load(log.dir()).ok());
  EXPECT_EQ(reg.type_name(order_id), "testing.Order");
  ASSERT_NE(reg.find(order_id, 1, CodecId::flatbuffers), nullptr);
  EXPECT_EQ(reg.find(order_id, 1, CodecId::flatbuffers)->fb_table, "sluice.testing.fb.Order");
  ASSERT_NE(reg.find(order_id, 1, CodecId::raw), nullptr);
  EXPECT_EQ(reg.find(order_id, 1, CodecId::raw)->struct_size, sizeof(Order));
}

TEST(Registry, AChangedSchemaUnderTheSameVersionIsRefused) {
  SchemaRegistry reg;
  Schema s;
  s.type_name = "testing.Order";
  s.version = 1;
  s.codec = CodecId::json;
  FieldDef f;
  f.name = "order_id";
  f.type = FieldType::u32;
  s.fields.push_back(f);
  ASSERT_TRUE(reg.add(s).ok());
  auto b = reg.bind<Order>(CodecId::json);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("testing.Order v1 (json)"), std::string::npos) << b.status().message();
  EXPECT_NE(b.status().message().find("needs a new version"), std::string::npos) << b.status().message();
}

TEST(Registry, ADamagedSchemaRecordIsReportedAndTheRestLoads) {
  TempLog log;
  {
    auto w = log.writer();
    SchemaRegistry reg;
    ASSERT_TRUE(reg.bind<Order>(CodecId::json, w.get()).ok());
    const std::string junk = "definitely not a schema entry";
    ASSERT_TRUE(w->append_system(log_format::kTypeSchema, 9, std::as_bytes(std::span(junk.data(), junk.size()))).ok());
    ASSERT_TRUE(w->close().ok());
  }
  SchemaRegistry reg;
  Status st = reg.load(log.dir());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::corruption);
  EXPECT_NE(st.message().find("segment 0 at offset"), std::string::npos) << st.message();
  EXPECT_EQ(reg.size(), 1u);
}

TEST(Evolution, OldVersionsAreUpcastOnRead) {
  TempLog log;
  auto w = log.writer();
  auto stream = w->stream("s");
  ASSERT_TRUE(stream.ok());
  EncodeBuffer buf;
  {
    // Program 1 (v1, FlatBuffers) and program 2 (v2, JSON) wrote the log over time.
    SchemaRegistry reg;
    auto v1 = reg.bind<DepositedV1>(CodecId::flatbuffers, w.get());
    ASSERT_TRUE(v1.ok()) << v1.status().to_string();
    auto e = v1->encode(DepositedV1{1, 5}, buf);
    ASSERT_TRUE(e.ok() && w->append(*stream, ExpectedVersion::any(), *e).ok());
  }
  {
    SchemaRegistry reg;
    ASSERT_TRUE(reg.load(log.dir()).ok());
    auto v2 = reg.bind<Deposited>(CodecId::json, w.get());  // adds currency with a default
    ASSERT_TRUE(v2.ok()) << v2.status().to_string();
    auto e = v2->encode(Deposited{2, 7, "USD"}, buf);
    ASSERT_TRUE(e.ok() && w->append(*stream, ExpectedVersion::any(), *e).ok());
  }
  // Program 3 binds v3, which renames a field: refused without an upcaster ...
  SchemaRegistry reg;
  ASSERT_TRUE(reg.load(log.dir()).ok());
  auto refused = reg.bind<DepositedV3>(CodecId::json, w.get());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("testing.Deposited v3 (json) cannot read v2"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("field 'amount' (i64) is removed"), std::string::npos);
  EXPECT_NE(refused.status().message().find("add_upcaster(\"testing.Deposited\", 2"), std::string::npos);
  // ... accepted with one.
  reg.add_upcaster("testing.Deposited", 2, amount_to_cents);
  auto v3 = reg.bind<DepositedV3>(CodecId::json, w.get());
  ASSERT_TRUE(v3.ok()) << v3.status().to_string();
  auto e = v3->encode(DepositedV3{3, 900, "GBP", "hi"}, buf);
  ASSERT_TRUE(e.ok() && w->append(*stream, ExpectedVersion::any(), *e).ok());

  auto r = log.reader();
  ASSERT_TRUE(reg.load(*r).ok());
  std::vector<DepositedV3> seen;
  auto c = r->cursor(0);
  RecordView v;
  while (c.next(&v)) {
    DepositedV3 d;
    Status st = v3->decode(v, &d);
    ASSERT_TRUE(st.ok()) << st.to_string();
    seen.push_back(d);
  }
  ASSERT_EQ(seen.size(), 3u);
  // v1 -> v2 (compatible: currency gets its default) -> v3 (upcaster), memo default.
  EXPECT_EQ(seen[0].account, 1u);
  EXPECT_EQ(seen[0].amount_cents, 500);
  EXPECT_EQ(seen[0].currency.view(), "EUR");
  EXPECT_EQ(seen[0].memo, "-");
  EXPECT_EQ(seen[1].amount_cents, 700);
  EXPECT_EQ(seen[1].currency.view(), "USD");
  EXPECT_EQ(seen[2].amount_cents, 900);
  EXPECT_EQ(seen[2].memo, "hi");

  // A reader with no upcaster for 2 -> 3 has no path from v1 or v2.
  SchemaRegistry bare;
  ASSERT_TRUE(bare.load(*r).ok());
  auto b3 = bare.bind<DepositedV3>(CodecId::json);
  ASSERT_TRUE(b3.ok()) << b3.status().to_string();  // v3 is already in the log as is
  ASSERT_TRUE(r->read(0, &v));
  DepositedV3 d;
  Status st = b3->decode(v, &d);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("testing.Deposited: no upcaster path from v1 to v3"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("field 'amount'"), std::string::npos) << st.message();

  // A record newer than the binding is an error too.
  auto old = bare.bind<Deposited>(CodecId::json);
  ASSERT_TRUE(old.ok());
  ASSERT_TRUE(r->read(2, &v));
  Deposited dv2;
  st = old->decode(v, &dv2);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("newer than this program's version 2"), std::string::npos) << st.message();
  ASSERT_TRUE(w->close().ok());
}

TEST(Evolution, AFailingOrThrowingUpcasterIsAnError) {
  SchemaRegistry reg;
  ASSERT_TRUE(reg.bind<DepositedV1>(CodecId::json).ok());
  reg.add_upcaster("testing.Deposited", 1, [](nlohmann::json& e) -> Status {
    e.at("no such key");  // throws
    return Status();
  });
  auto v2 = reg.bind<Deposited>(CodecId::json);
  ASSERT_TRUE(v2.ok());
  const std::string p = R"({"account":1,"amount":2})";
  Deposited d;
  Status st = v2->decode(v2->type_id(), 1, CodecId::json, std::as_bytes(std::span(p.data(), p.size())), &d);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("upcaster v1 -> v2 failed"), std::string::npos) << st.message();
}

TEST(RegistryBinding, LookupReturnsTheLastBindingOfTheType) {
  SchemaRegistry reg;
  EXPECT_FALSE(reg.binding<Deposited>().valid());  // not bound yet
  auto raw = reg.bind<Deposited>(CodecId::raw);
  ASSERT_TRUE(raw.ok());
  auto found = reg.binding<Deposited>();
  ASSERT_TRUE(found.valid());
  EXPECT_EQ(found.type_id(), raw->type_id());
  EXPECT_EQ(found.codec(), CodecId::raw);
  ASSERT_TRUE(reg.bind<Deposited>(CodecId::json).ok());
  EXPECT_EQ(reg.binding<Deposited>().codec(), CodecId::json);
  EXPECT_EQ(reg.binding<Deposited>().type_id(), raw->type_id());  // one id per type name
  EXPECT_FALSE(reg.binding<sluice::testing::Withdrawn>().valid());
}

}  // namespace
}  // namespace sluice::serialization
