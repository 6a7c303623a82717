// Typed encode/decode per codec, zero-copy access, bad input, and the same handler code over
// logs written with each codec.
#include <gtest/gtest.h>

#include <map>

#include "sluice/serialization/document.h"
#include "sluice/serialization/schema.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/serialization/testing/events.h"
#include "test_util.h"

struct Padded {
  uint8_t a = 0;
  uint64_t b = 0;
};
struct WithString {
  uint64_t a = 0;
  std::string s;
};

template <>
struct sluice::serialization::EventTraits<Padded> {
  static constexpr std::string_view name = "test.Padded";
  static constexpr uint16_t version = 1;
  static constexpr auto fields = std::make_tuple(field("a", &Padded::a), field("b", &Padded::b));
};
template <>
struct sluice::serialization::EventTraits<WithString> {
  static constexpr std::string_view name = "test.WithString";
  static constexpr uint16_t version = 1;
  static constexpr auto fields =
      std::make_tuple(field("a", &WithString::a), field("s", &WithString::s, ""));
};

namespace sluice::serialization {
namespace {

using sluice::testing::Deposited;
using sluice::testing::Order;
using sluice::testing::TempLog;
using sluice::testing::Withdrawn;

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

class CodecTest : public ::testing::TestWithParam<CodecId> {};

TEST_P(CodecTest, OrderRoundTrips) {
  SchemaRegistry reg;
  auto b = reg.bind<Order>(GetParam());
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EncodeBuffer buf;
  for (uint64_t i = 0; i < 5; ++i) {
    const Order in = sluice::testing::sample_order(i);
    auto e = b->encode(in, buf);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    EXPECT_EQ(e->codec, static_cast<uint8_t>(GetParam()));
    EXPECT_EQ(e->type, b->type_id());
    Order out;
    Status st = b->decode(e->type, e->schema_version, GetParam(), e->payload, &out);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(in, out);
  }
}

TEST_P(CodecTest, DepositedRoundTripsIncludingEmptyAndFullStrings) {
  SchemaRegistry reg;
  auto b = reg.bind<Deposited>(GetParam());
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EncodeBuffer buf;
  for (const char* cur : {"", "USD", "ABCDEFGH"}) {
    Deposited in{7, -250, cur};
    auto e = b->encode(in, buf);
    ASSERT_TRUE(e.ok());
    Deposited out;
    ASSERT_TRUE(b->decode(e->type, e->schema_version, GetParam(), e->payload, &out).ok());
    EXPECT_EQ(in, out) << cur;
  }
}

TEST_P(CodecTest, DecodesWhateverCodecTheRecordNames) {
  // Bound to one codec, a binding still reads records written with the others.
  SchemaRegistry reg;
  auto b = reg.bind<Order>(GetParam());
  ASSERT_TRUE(b.ok());
  EncodeBuffer buf;
  const Order in = sluice::testing::sample_order(3);
  for (CodecId other : {CodecId::raw, CodecId::json, CodecId::flatbuffers}) {
    SchemaRegistry reg2;
    auto w = reg2.bind<Order>(other);
    ASSERT_TRUE(w.ok());
    auto e = w->encode(in, buf);
    ASSERT_TRUE(e.ok());
    Order out;
    Status st = b->decode(b->type_id(), e->schema_version, other, e->payload, &out);
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(in, out);
  }
}

TEST_P(CodecTest, GarbageIsAnErrorNotACrash) {
  SchemaRegistry reg;
  auto b = reg.bind<Order>(GetParam());
  ASSERT_TRUE(b.ok());
  Order out;
  for (std::string_view junk : {std::string_view(""), std::string_view("{"), std::string_view("\x01\x02\x03", 3),
                                std::string_view("[1,2,3]"), std::string_view("\xff\xff\xff\xff\x00\x00\x00\x00", 8)}) {
    Status st = b->decode(b->type_id(), 1, GetParam(), bytes_of(junk), &out);
    EXPECT_FALSE(st.ok()) << junk;
    EXPECT_NE(st.message().find("testing.Order v1"), std::string::npos) << st.message();
  }
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, CodecTest,
                         ::testing::Values(CodecId::raw, CodecId::json, CodecId::flatbuffers),
                         [](const auto& p) { return std::string(to_string(p.param)); });

TEST(JsonCodec, FillsDefaultsIgnoresUnknownFieldsAndNamesBadFields) {
  SchemaRegistry reg;
  auto b = reg.bind<Deposited>(CodecId::json);
  ASSERT_TRUE(b.ok());
  Deposited out;
  ASSERT_TRUE(b->decode(b->type_id(), 2, CodecId::json,
                        bytes_of(R"({"amount":-5,"extra":{"x":[1,2]},"account":9})"), &out)
                  .ok());
  EXPECT_EQ(out.account, 9u);
  EXPECT_EQ(out.amount, -5);
  EXPECT_EQ(out.currency.view(), "EUR");  // declared default

  Status st = b->decode(b->type_id(), 2, CodecId::json, bytes_of(R"({"amount":1})"), &out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("field 'account'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("no default"), std::string::npos) << st.message();

  st = b->decode(b->type_id(), 2, CodecId::json, bytes_of(R"({"account":"nine","amount":1})"), &out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("testing.Deposited v2 (json): field 'account'"), std::string::npos)
      << st.message();

  st = b->decode(b->type_id(), 2, CodecId::json, bytes_of(R"({"account":-1,"amount":1})"), &out);
  EXPECT_FALSE(st.ok()) << "negative into u64";
  st = b->decode(b->type_id(), 2, CodecId::json,
                 bytes_of(R"({"account":1,"amount":1,"currency":"TOO-LONG-X"})"), &out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("field 'currency'"), std::string::npos) << st.message();
  st = b->decode(b->type_id(), 2, CodecId::json, bytes_of(R"({"account":1,"amount":1} x)"), &out);
  EXPECT_FALSE(st.ok()) << "trailing garbage";
}

TEST(JsonCodec, EscapesStringsAndKeepsDoublesExact) {
  SchemaRegistry reg;
  auto b = reg.bind<Order>(CodecId::json);
  ASSERT_TRUE(b.ok());
  Order in = sluice::testing::sample_order(1);
  in.client_ref = "a\"b\\c\n\x01";
  in.price = 0.1 + 0.2;
  EncodeBuffer buf;
  auto e = b->encode(in, buf);
  ASSERT_TRUE(e.ok());
  Order out;
  ASSERT_TRUE(b->decode(b->type_id(), 1, CodecId::json, e->payload, &out).ok());
  EXPECT_EQ(in, out);
  EXPECT_EQ(in.price, out.price);
}

TEST(FlatBuffersCodec, AccessReadsInPlaceAfterVerifying) {
  SchemaRegistry reg;
  auto b = reg.bind<Order>(CodecId::flatbuffers);
  ASSERT_TRUE(b.ok());
  EncodeBuffer buf;
  auto e = b->encode(sluice::testing::sample_order(2), buf);
  ASSERT_TRUE(e.ok());
  auto t = FlatBuffersCodec::access<sluice::testing::fb::Order>(e->payload);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->order_id(), 1'000'002u);
  EXPECT_EQ((*t)->symbol()->string_view(), "ACME.XNAS");
  EXPECT_EQ((*t)->side(), sluice::testing::fb::Side_Buy);

  std::vector<std::byte> bad(e->payload.begin(), e->payload.end());
  bad[0] = std::byte{0xff};  // root offset points outside the buffer
  EXPECT_FALSE(FlatBuffersCodec::access<sluice::testing::fb::Order>(bad).ok());
}

TEST(RawCodec, ViewIsZeroCopyAndChecksSize) {
  SchemaRegistry reg;
  auto b = reg.bind<Order>(CodecId::raw);
  ASSERT_TRUE(b.ok());
  const Order in = sluice::testing::sample_order(4);
  EncodeBuffer buf;
  auto e = b->encode(in, buf);
  ASSERT_TRUE(e.ok());
  auto v = RawCodec::view<Order>(e->payload);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(static_cast<const void*>(*v), static_cast<const void*>(e->payload.data()));
  EXPECT_EQ(**v, in);
  EXPECT_FALSE(RawCodec::view<Order>(e->payload.first(10)).ok());
  Order out;
  Status st = b->decode(b->type_id(), 1, CodecId::raw, e->payload.first(10), &out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("raw payload of 10 bytes"), std::string::npos) << st.message();
}

TEST(Binding, RefusesWhatACodecCannotCarry) {
  SchemaRegistry reg;
  auto unknown = reg.bind<Order>(static_cast<CodecId>(7));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown codec id 7"), std::string::npos)
      << unknown.status().message();
  auto padded = reg.bind<Padded>(CodecId::raw);
  ASSERT_FALSE(padded.ok());
  EXPECT_NE(padded.status().message().find("7 padding bytes"), std::string::npos)
      << padded.status().message();
  EXPECT_TRUE(reg.bind<Padded>(CodecId::json).ok());
  auto str = reg.bind<WithString>(CodecId::raw);
  ASSERT_FALSE(str.ok());
  EXPECT_NE(str.status().message().find("not trivially copyable"), std::string::npos);
  auto fb = reg.bind<WithString>(CodecId::flatbuffers);
  ASSERT_FALSE(fb.ok());
  EXPECT_NE(fb.status().message().find("no FlatBuffers table"), std::string::npos);

  // std::string fields work with JSON.
  auto js = reg.bind<WithString>(CodecId::json);
  ASSERT_TRUE(js.ok()) << js.status().to_string();
  EncodeBuffer buf;
  WithString in{5, std::string(300, 'x')};
  auto e = js->encode(in, buf);
  ASSERT_TRUE(e.ok());
  WithString out;
  ASSERT_TRUE(js->decode(js->type_id(), 1, CodecId::json, e->payload, &out).ok());
  EXPECT_EQ(out.s, in.s);
}

TEST(Binding, UnknownTypeIdIsAnError) {
  SchemaRegistry reg;
  auto d = reg.bind<Deposited>(CodecId::json);
  auto w = reg.bind<Withdrawn>(CodecId::json);
  ASSERT_TRUE(d.ok() && w.ok());
  Deposited out;
  Status st = d->decode(w->type_id(), 1, CodecId::json, bytes_of("{}"), &out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("testing.Withdrawn"), std::string::npos) << st.message();
  st = d->decode(999, 1, CodecId::json, bytes_of("{}"), &out);
  EXPECT_FALSE(st.ok());
  st = d->decode(d->type_id(), 2, static_cast<CodecId>(77), bytes_of("{}"), &out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unknown codec"), std::string::npos) << st.message();
}

// ---- The same handler code, whatever the configured codec -------------------------------

// A read model: balance per account. Its handlers see decoded events only.
struct Ledger {
  std::map<uint64_t, int64_t> balance;
  void on(const Deposited& e) { balance[e.account] += e.amount; }
  void on(const Withdrawn& e) { balance[e.account] -= e.amount; }
};

// Writes the same history with `codec` (configuration), then replays it into a Ledger.
std::map<uint64_t, int64_t> run_ledger(const std::string& dir, CodecId codec) {
  std::map<uint64_t, int64_t> empty;
  LogOptions o;
  o.segment_size = 1 << 20;
  {
    auto w = LogWriter::open(dir, o);
    if (!w.ok()) return empty;
    SchemaRegistry reg;
    auto dep = reg.bind<Deposited>(codec, w->get());
    auto wd = reg.bind<Withdrawn>(codec, w->get());
    if (!dep.ok() || !wd.ok()) return empty;
    auto stream = (*w)->stream("accounts");
    EncodeBuffer buf;
    for (uint64_t i = 0; i < 100; ++i) {
      auto e = i % 3 == 2 ? wd->encode(Withdrawn{i % 5, static_cast<int64_t>(i), "EUR"}, buf)
                          : dep->encode(Deposited{i % 5, static_cast<int64_t>(10 * i), "EUR"}, buf);
      if (!e.ok() || !(*w)->append(*stream, ExpectedVersion::any(), *e).ok()) return empty;
    }
    (*w)->close().ignore();
  }
  auto r = LogReader::open(dir);
  if (!r.ok()) return empty;
  SchemaRegistry reg;
  EXPECT_TRUE(reg.load(**r).ok());
  auto dep = reg.register_for_reading<Deposited>();  // read side: no codec to choose
  auto wd = reg.register_for_reading<Withdrawn>();
  EXPECT_TRUE(dep.ok() && wd.ok());
  Ledger ledger;
  auto c = (*r)->cursor(0);
  RecordView v;
  while (c.next(&v)) {
    EXPECT_EQ(v.codec(), static_cast<uint8_t>(codec));
    if (v.event_type() == dep->type_id()) {
      Deposited e;
      EXPECT_TRUE(dep->decode(v, &e).ok());
      ledger.on(e);
    } else {
      Withdrawn e;
      EXPECT_TRUE(wd->decode(v, &e).ok());
      ledger.on(e);
    }
  }
  return ledger.balance;
}

TEST(SameHandlers, GiveTheSameReadModelWithEveryCodec) {
  std::map<CodecId, std::map<uint64_t, int64_t>> results;
  for (CodecId c : {CodecId::raw, CodecId::json, CodecId::flatbuffers}) {
    TempLog log;
    results[c] = run_ledger(log.dir() + "-" + std::string(to_string(c)), c);
    std::filesystem::remove_all(log.dir() + "-" + std::string(to_string(c)));
    EXPECT_EQ(results[c].size(), 5u) << to_string(c);
  }
  EXPECT_EQ(results[CodecId::raw], results[CodecId::json]);
  EXPECT_EQ(results[CodecId::raw], results[CodecId::flatbuffers]);
}

// One enum for the log format, the bus and serialization: each encode path writes the byte
// the log format gives its codec, and the byte's name is the one `sluice dump` prints.
TEST(CodecIds, EachEncodePathWritesTheLogFormatsByte) {
  SchemaRegistry reg;
  EncodeBuffer buf;
  const Order in = sluice::testing::sample_order(3);
  const std::pair<CodecId, uint8_t> expected[] = {
      {CodecId::raw, 0}, {CodecId::flatbuffers, 2}, {CodecId::json, 3}};
  for (auto [codec, byte] : expected) {
    SchemaRegistry r;
    auto b = r.bind<Order>(codec);
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    auto e = b->encode(in, buf);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    EXPECT_EQ(e->codec, byte) << to_string(codec);
    EXPECT_EQ(codec_name(e->codec), to_string(codec));
  }
  EXPECT_EQ(EventData{}.codec, 0);  // a plain append: raw
}

TEST(CodecIds, NamesAndParsingComeFromTheOneEnum) {
  EXPECT_EQ(codec_name(0), "raw");
  EXPECT_EQ(codec_name(1), "raw");  // the old raw byte
  EXPECT_EQ(codec_name(2), "flatbuffers");
  EXPECT_EQ(codec_name(3), "json");
  EXPECT_EQ(codec_name(4), "unknown");
  EXPECT_EQ(codec_name(255), "unknown");
  CodecId c = CodecId::json;
  EXPECT_TRUE(parse_codec("raw", &c));
  EXPECT_EQ(c, CodecId::raw);
  EXPECT_FALSE(parse_codec("none", &c));
  EXPECT_EQ(c, CodecId::raw);
  EXPECT_EQ(decode_codec(1), CodecId::raw);
  EXPECT_EQ(static_cast<uint8_t>(decode_codec(0)), 0);
  EXPECT_FALSE(known_codec(static_cast<CodecId>(1)));
}

// A log written before the codec ids were unified: serialization's raw was byte 1, in the
// schema entry and in each record. It still loads and decodes, through a binding and as a
// document.
TEST(LegacyRaw, RecordAndSchemaEntryWithByteOneStillDecode) {
  TempLog t;
  const Order in = sluice::testing::sample_order(7);
  uint32_t id = 0;
  {
    auto w = t.writer();
    ASSERT_NE(w, nullptr);
    SchemaRegistry scratch;  // builds the raw schema; nothing written by it
    auto b = scratch.bind<Order>(CodecId::raw);
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    id = b->type_id();
    std::vector<std::byte> entry = encode_schema_entry(*scratch.find(id, 1, CodecId::raw));
    ASSERT_EQ(entry[5], std::byte{0});  // written today: raw is 0
    entry[5] = std::byte{kLegacyRawCodecByte};
    ASSERT_TRUE(w->append_system(log_format::kTypeSchema, id, entry).ok());
    EventData d;
    d.type = id;
    d.codec = kLegacyRawCodecByte;
    d.payload = std::as_bytes(std::span<const Order>(&in, 1));
    auto stream = w->stream("orders");
    ASSERT_TRUE(stream.ok());
    ASSERT_TRUE(w->append(*stream, ExpectedVersion::any(), d).ok());
    ASSERT_TRUE(w->close().ok());
  }
  auto r = t.reader();
  ASSERT_NE(r, nullptr);
  SchemaRegistry reg;
  ASSERT_TRUE(reg.load(*r).ok());
  const Schema* s = reg.find(id, 1, CodecId::raw);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->codec, CodecId::raw);
  EXPECT_EQ(reg.find(id, 1, static_cast<CodecId>(kLegacyRawCodecByte)), s);
  auto b = reg.register_for_reading<Order>();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(b->codec(), CodecId::raw);  // the stored schema's codec
  auto c = r->cursor(0);
  RecordView v;
  ASSERT_TRUE(c.next(&v));
  EXPECT_EQ(v.codec(), kLegacyRawCodecByte);
  EXPECT_EQ(v.codec_id(), CodecId::raw);
  Order out;
  Status st = b->decode(v, &out);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(out, in);
  // The byte as stored, passed through as it is, decodes the same.
  Order again;
  ASSERT_TRUE(b->decode(v.event_type(), v.schema_version(), static_cast<CodecId>(v.codec()), v.payload(), &again).ok());
  EXPECT_EQ(again, in);
  auto doc = to_document(reg, v.event_type(), v.schema_version(), static_cast<CodecId>(v.codec()), v.payload());
  ASSERT_TRUE(doc.ok()) << doc.status().to_string();
  EXPECT_EQ((*doc)["order_id"], in.order_id);
  auto text = reg.to_json(v.event_type(), v.schema_version(), v.codec_id(), v.payload());
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  EXPECT_NE(text->find("\"order_id\":" + std::to_string(in.order_id)), std::string::npos) << *text;
}

// A writer of today appending to an old log: the old raw schema is found (no second entry),
// and its new records carry byte 0; old and new records decode alike.
TEST(LegacyRaw, AppendingToAnOldLogAddsNoSecondSchemaEntry) {
  TempLog t;
  const Order in = sluice::testing::sample_order(2);
  {
    auto w = t.writer();
    ASSERT_NE(w, nullptr);
    SchemaRegistry scratch;
    auto b = scratch.bind<Order>(CodecId::raw);
    ASSERT_TRUE(b.ok());
    std::vector<std::byte> entry = encode_schema_entry(*scratch.find(b->type_id(), 1, CodecId::raw));
    entry[5] = std::byte{kLegacyRawCodecByte};
    ASSERT_TRUE(w->append_system(log_format::kTypeSchema, b->type_id(), entry).ok());
    ASSERT_TRUE(w->close().ok());
  }
  {
    SchemaRegistry reg;
    ASSERT_TRUE(reg.load(t.dir()).ok());
    ASSERT_NE(reg.find(1, 1, CodecId::raw), nullptr);
    auto w = t.writer();
    ASSERT_NE(w, nullptr);
    auto b = reg.bind<Order>(CodecId::raw, w.get());
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    EncodeBuffer buf;
    auto e = b->encode(in, buf);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->codec, 0);
    auto stream = w->stream("orders");
    ASSERT_TRUE(stream.ok() && w->append(*stream, ExpectedVersion::any(), *e).ok());
    ASSERT_TRUE(w->close().ok());
  }
  auto r = t.reader();
  ASSERT_NE(r, nullptr);
  size_t entries = 0;
  for (const RecordView& v : r->system_records()) entries += v.type() == log_format::kTypeSchema;
  EXPECT_EQ(entries, 1u);
}

}  // namespace
}  // namespace sluice::serialization
