// Schema entries (bytes in the log), the compatibility check, schema-driven decoding.
#include <gtest/gtest.h>

#include "sluice/serialization/document.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/serialization/testing/events.h"

namespace sluice::serialization {
namespace {

Schema json_schema(uint16_t version, std::vector<FieldDef> fields) {
  Schema s;
  s.type_name = "t.E";
  s.type_id = 3;
  s.version = version;
  s.codec = CodecId::json;
  s.fields = std::move(fields);
  return s;
}

FieldDef fd(const char* name, FieldType t) {
  FieldDef f;
  f.name = name;
  f.type = t;
  return f;
}
FieldDef fd_default(const char* name, FieldType t, nlohmann::json d) {
  FieldDef f = fd(name, t);
  f.has_default = true;
  f.default_value = std::move(d);
  return f;
}

TEST(SchemaEntry, RoundTripsEveryCodec) {
  SchemaRegistry reg;
  for (CodecId c : {CodecId::raw, CodecId::json, CodecId::flatbuffers}) {
    SchemaRegistry r;
    ASSERT_TRUE(r.bind<sluice::testing::Order>(c).ok());
    const Schema* s = r.find(1, 1, c);
    ASSERT_NE(s, nullptr);
    const std::vector<std::byte> bytes = encode_schema_entry(*s);
    EXPECT_EQ(bytes.size() % 8 == 0 || c != CodecId::flatbuffers, true);
    auto back = decode_schema_entry(bytes);
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(back->type_name, "testing.Order");
    EXPECT_EQ(back->codec, c);
    EXPECT_EQ(back->fields, s->fields);
    EXPECT_EQ(back->struct_size, s->struct_size);
    EXPECT_EQ(back->fb_table, s->fb_table);
    EXPECT_EQ(back->fields.size(), 21u);
  }
}

TEST(SchemaEntry, HeaderLayoutIsAsDocumented) {
  Schema s = json_schema(2, {fd("a", FieldType::u64)});
  const auto b = encode_schema_entry(s);
  ASSERT_GE(b.size(), kSchemaEntryHeaderSize);
  uint32_t magic, id, body;
  uint16_t version, nlen;
  std::memcpy(&magic, b.data(), 4);
  std::memcpy(&version, b.data() + 6, 2);
  std::memcpy(&id, b.data() + 8, 4);
  std::memcpy(&nlen, b.data() + 12, 2);
  std::memcpy(&body, b.data() + 16, 4);
  EXPECT_EQ(magic, kSchemaEntryMagic);
  EXPECT_EQ(std::to_integer<int>(b[4]), 1);
  EXPECT_EQ(std::to_integer<int>(b[5]), static_cast<int>(CodecId::json));
  EXPECT_EQ(version, 2);
  EXPECT_EQ(id, 3u);
  EXPECT_EQ(nlen, 3);
  const std::string text(reinterpret_cast<const char*>(b.data()) + 32, body);
  EXPECT_EQ(text, R"({"fields":[{"name":"a","type":"u64"}]})");
}

TEST(SchemaEntry, RejectsDamagedEntries) {
  Schema s = json_schema(1, {fd("a", FieldType::u64)});
  const auto good = encode_schema_entry(s);
  auto damaged = [&](size_t at, uint8_t value) {
    auto b = good;
    b[at] = std::byte{value};
    return decode_schema_entry(b);
  };
  EXPECT_FALSE(decode_schema_entry(std::span(good).first(10)).ok());
  EXPECT_FALSE(damaged(0, 0).ok());    // magic
  EXPECT_FALSE(damaged(4, 9).ok());    // format
  EXPECT_FALSE(damaged(5, 4).ok());    // the first unknown codec
  EXPECT_FALSE(damaged(5, 42).ok());   // unknown codec
  EXPECT_FALSE(damaged(16, 0xff).ok());  // body length overruns
  EXPECT_FALSE(damaged(32, '[').ok());   // field list not an object
  auto fb = good;
  fb[5] = std::byte{static_cast<uint8_t>(CodecId::flatbuffers)};
  auto r = decode_schema_entry(fb);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("t.E"), std::string::npos) << r.status().message();
}

// Entries written before the codec ids were unified hold 1 for raw: read as raw (0).
TEST(SchemaEntry, ReadsTheOldRawByteAsRaw) {
  SchemaRegistry reg;
  auto b = reg.bind<sluice::testing::Order>(CodecId::raw);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  auto entry = encode_schema_entry(*reg.find(b->type_id(), 1, CodecId::raw));
  EXPECT_EQ(std::to_integer<int>(entry[5]), 0);
  entry[5] = std::byte{1};
  auto old = decode_schema_entry(entry);
  ASSERT_TRUE(old.ok()) << old.status().to_string();
  EXPECT_EQ(old->codec, CodecId::raw);
  EXPECT_EQ(old->struct_size, sizeof(sluice::testing::Order));
  EXPECT_EQ(old->fields, reg.find(b->type_id(), 1, CodecId::raw)->fields);
}

TEST(SchemaEntry, RejectsABinarySchemaThatIsNot) {
  std::vector<uint8_t> junk(64, 0x41);
  auto r = flatbuffers_schema("t.E", 1, junk, "t.fb.E");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a valid binary schema"), std::string::npos);
  auto no_table = flatbuffers_schema(
      "t.E", 1, embedded_schema<sluice::testing::fb::OrderBinarySchema>(), "t.fb.Nope");
  ASSERT_FALSE(no_table.ok());
  EXPECT_NE(no_table.status().message().find("no such table"), std::string::npos);
}

TEST(Compatibility, AddedFieldWithDefaultIsCompatible) {
  Schema v1 = json_schema(1, {fd("a", FieldType::u64)});
  Schema v2 = json_schema(2, {fd("a", FieldType::u64), fd_default("c", FieldType::string, "EUR")});
  EXPECT_TRUE(check_compatible(v1, v2).ok());
}

TEST(Compatibility, AddedFieldWithoutDefaultIsNot) {
  Schema v1 = json_schema(1, {fd("a", FieldType::u64)});
  Schema v2 = json_schema(2, {fd("a", FieldType::u64), fd("c", FieldType::string)});
  Status st = check_compatible(v1, v2);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("t.E v2 (json) cannot read v1"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("field 'c' (string) is added without a default"), std::string::npos);
}

TEST(Compatibility, RemovedOrRetypedFieldIsNot) {
  Schema v1 = json_schema(1, {fd("a", FieldType::u64), fd("b", FieldType::i32)});
  Status removed = check_compatible(v1, json_schema(2, {fd("a", FieldType::u64)}));
  ASSERT_FALSE(removed.ok());
  EXPECT_NE(removed.message().find("field 'b' (i32) is removed"), std::string::npos);
  Status retyped = check_compatible(v1, json_schema(2, {fd("a", FieldType::string), fd("b", FieldType::i32)}));
  ASSERT_FALSE(retyped.ok());
  EXPECT_NE(retyped.message().find("field 'a' changes type from u64 to string"), std::string::npos);
}

TEST(Compatibility, IntegerAndFloatWideningIsAllowed) {
  Schema v1 = json_schema(1, {fd("a", FieldType::i32), fd("b", FieldType::u32), fd("c", FieldType::f32)});
  Schema v2 = json_schema(2, {fd("a", FieldType::i64), fd("b", FieldType::i64), fd("c", FieldType::f64)});
  EXPECT_TRUE(check_compatible(v1, v2).ok());
  EXPECT_FALSE(check_compatible(v2, v1).ok());
}

TEST(Documents, EveryCodecDecodesFromTheSchemaAlone) {
  const sluice::testing::Order order = sluice::testing::sample_order(9);
  for (CodecId c : {CodecId::raw, CodecId::json, CodecId::flatbuffers}) {
    SchemaRegistry reg;
    auto b = reg.bind<sluice::testing::Order>(c);
    ASSERT_TRUE(b.ok());
    EncodeBuffer buf;
    auto e = b->encode(order, buf);
    ASSERT_TRUE(e.ok());
    auto doc = to_document(reg, b->type_id(), 1, c, e->payload);
    ASSERT_TRUE(doc.ok()) << doc.status().to_string();
    EXPECT_EQ((*doc)["order_id"], 1'000'009u) << to_string(c);
    EXPECT_EQ((*doc)["symbol"], "ACME.XNAS") << to_string(c);
    EXPECT_EQ((*doc)["side"], 1) << to_string(c);
    EXPECT_DOUBLE_EQ((*doc)["price"].get<double>(), order.price) << to_string(c);
    EXPECT_EQ((*doc)["created_ts"], order.created_ts) << to_string(c);
  }
}

TEST(Documents, BadPayloadsAreErrors) {
  SchemaRegistry reg;
  for (CodecId c : {CodecId::raw, CodecId::json, CodecId::flatbuffers}) {
    SchemaRegistry r;
    auto b = r.bind<sluice::testing::Order>(c);
    ASSERT_TRUE(b.ok());
    const std::string junk = "{\"a\":[[[[[";
    auto doc = to_document(r, 1, 1, c, std::as_bytes(std::span(junk.data(), junk.size())));
    EXPECT_FALSE(doc.ok()) << to_string(c);
    EXPECT_NE(doc.status().message().find("testing.Order v1"), std::string::npos);
  }
  auto none = to_document(reg, 5, 1, CodecId::json, {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::not_found);
  const std::string deep = std::string(10000, '[');
  SchemaRegistry r;
  ASSERT_TRUE(r.bind<sluice::testing::Order>(CodecId::json).ok());
  EXPECT_FALSE(to_document(r, 1, 1, CodecId::json, std::as_bytes(std::span(deep.data(), deep.size()))).ok());
}

}  // namespace
}  // namespace sluice::serialization
