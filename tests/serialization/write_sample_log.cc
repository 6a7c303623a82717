// write_sample_log DIR: a program with the application's event types (generated FlatBuffers
// code included) writes a log that dump_test.sh then dumps with the sluice tool, which links
// none of it.
#include <cstdio>

#include "sluice/serialization/schema_registry.h"
#include "sluice/serialization/testing/events.h"

using namespace sluice;
using namespace sluice::serialization;

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
  auto order = reg.bind<testing::Order>(CodecId::flatbuffers, w->get());
  auto dep = reg.bind<testing::Deposited>(CodecId::json, w->get());
  auto wd = reg.bind<testing::Withdrawn>(CodecId::raw, w->get());
  auto stream = (*w)->stream("orders");
  if (!order.ok() || !dep.ok() || !wd.ok() || !stream.ok()) {
    std::fprintf(stderr, "bind failed\n");
    return 1;
  }
  EncodeBuffer buf;
  auto append = [&](const Result<EventData>& e) {
    if (!e.ok() || !(*w)->append(*stream, ExpectedVersion::any(), e.value()).ok()) std::exit(1);
  };
  append(order->encode(testing::sample_order(1), buf));
  append(dep->encode(testing::Deposited{7, 250, "USD"}, buf));
  append(wd->encode(testing::Withdrawn{7, 50, "USD"}, buf));
  const char opaque[] = "opaque";
  EventData e;
  e.type = 1000;
  e.payload = std::as_bytes(std::span(opaque, 6));
  append(e);                                       // codec 0: base64
  e.codec = static_cast<uint8_t>(CodecId::json);  // a schema nobody registered
  append(e);
  return (*w)->close().ok() ? 0 : 1;
}
