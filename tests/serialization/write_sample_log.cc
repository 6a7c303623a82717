// write_sample_log DIR: a program with the application's event types (generated FlatBuffers
// code included) writes a log that dump_test.sh then dumps with the sluice tool, which links
// none of it.
#include <cstdio>

#include "dump_sample_bfbs_generated.h"
#include "dump_sample_generated.h"
#include "sluice/bus/log_writer.h"
#include "sluice/serialization/document.h"
#include "sluice/serialization/flatbuffers_codec.h"
#include "sluice/serialization/schema.h"
#include "sluice/serialization/schema_registry.h"

using namespace sluice;
using namespace sluice::serialization;

struct Trade {  // binds the table's flat fields; the writer fills the rest with flatc's API
  uint64_t trade_id = 0;
  FixedString<16> symbol;
};
struct Quote {
  uint64_t id = 0;
  double bid = 0;
  std::string venue;
};
struct Fill {
  uint64_t id = 0;
  int64_t qty = 0;
  FixedString<8> side;
};

template <>
struct sluice::serialization::EventTraits<Trade> {
  static constexpr std::string_view name = "dumptest.Trade";
  static constexpr uint16_t version = 1;
  static constexpr auto fields =
      std::make_tuple(field("trade_id", &Trade::trade_id), field("symbol", &Trade::symbol));
  using FlatBuffersTable = sluice::dumptest::fb::Trade;
  static std::span<const uint8_t> flatbuffers_schema() {
    return embedded_schema<sluice::dumptest::fb::TradeBinarySchema>();
  }
};
template <>
struct sluice::serialization::EventTraits<Quote> {
  static constexpr std::string_view name = "dumptest.Quote";
  static constexpr uint16_t version = 3;
  static constexpr auto fields = std::make_tuple(field("id", &Quote::id), field("bid", &Quote::bid),
                                                 field("venue", &Quote::venue, ""));
};
template <>
struct sluice::serialization::EventTraits<Fill> {
  static constexpr std::string_view name = "dumptest.Fill";
  static constexpr uint16_t version = 1;
  static constexpr auto fields = std::make_tuple(field("id", &Fill::id), field("qty", &Fill::qty),
                                                 field("side", &Fill::side));
};

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_sample_log DIR\n");
    return 2;
  }
  auto w = LogWriter::open(argv[1]);
  if (!w.ok()) {
    std::fprintf(stderr, "%s\n", w.status().to_string().c_str());
    return 1;
  }
  SchemaRegistry reg;
  auto trade = reg.bind<Trade>(CodecId::flatbuffers, w->get());
  auto quote = reg.bind<Quote>(CodecId::json, w->get());
  auto fill = reg.bind<Fill>(CodecId::raw, w->get());
  auto stream = (*w)->stream("trades");
  if (!trade.ok() || !quote.ok() || !fill.ok() || !stream.ok()) {
    std::fprintf(stderr, "bind failed\n");
    return 1;
  }
  auto append = [&](const EventData& e) {
    if (!(*w)->append(*stream, ExpectedVersion::any(), e).ok()) std::exit(1);
  };
  // A full Trade, nested struct and vectors included, built with the generated code.
  namespace fb = sluice::dumptest::fb;
  flatbuffers::FlatBufferBuilder fbb;
  const fb::Px px(12345, -2);
  std::vector<flatbuffers::Offset<fb::Leg>> legs = {fb::CreateLegDirect(fbb, "XNAS", 100),
                                                    fb::CreateLegDirect(fbb, "XLON", 50)};
  std::vector<flatbuffers::Offset<flatbuffers::String>> tags = {fbb.CreateString("block"),
                                                                fbb.CreateString("dark")};
  std::vector<uint8_t> flags = {1, 2, 3};
  fbb.Finish(fb::CreateTradeDirect(fbb, 77, "ACME", &px, &legs, &tags, &flags));
  EventData e;
  e.type = trade->type_id();
  e.codec = static_cast<uint8_t>(CodecId::flatbuffers);
  e.payload = std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize()));
  append(e);

  EncodeBuffer buf;
  append(quote->encode(Quote{5, 99.25, "IEX \"lit\""}, buf).value());
  append(fill->encode(Fill{6, -40, "sell"}, buf).value());
  const char opaque[] = "opaque";
  EventData o;
  o.type = 1000;
  o.payload = std::as_bytes(std::span(opaque, 6));
  append(o);                                       // codec 0: base64
  o.codec = static_cast<uint8_t>(CodecId::json);  // a schema nobody registered
  append(o);

  // The layout serialization wrote for raw before the codec ids were unified: a schema entry
  // and a record whose codec byte is 1 (type id 4, "dumptest.OldFill"). Read as raw.
  Schema old = *reg.find(fill->type_id(), 1, CodecId::raw);
  old.type_name = "dumptest.OldFill";
  old.type_id = 4;
  std::vector<std::byte> entry = encode_schema_entry(old);
  entry[5] = std::byte{kLegacyRawCodecByte};
  if (!(*w)->append_system(log_format::kTypeSchema, 4, entry).ok()) return 1;
  EventData legacy = fill->encode(Fill{7, 12, "buy"}, buf).value();
  legacy.type = 4;
  legacy.codec = kLegacyRawCodecByte;
  append(legacy);
  return (*w)->close().ok() ? 0 : 1;
}
