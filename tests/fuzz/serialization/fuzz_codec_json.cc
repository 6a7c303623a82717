// libFuzzer: the JSON codec's decoders on arbitrary bytes (typed simdjson path and the
// schema-driven nlohmann path). Any outcome but a crash, a leak or UB is fine.
#include <cstddef>
#include <cstdint>

#include "sluice/serialization/document.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/serialization/testing/events.h"

using namespace sluice::serialization;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static SchemaRegistry* reg = new SchemaRegistry();
  static auto order = reg->bind<sluice::testing::Order>(CodecId::json);
  static auto dep = reg->bind<sluice::testing::Deposited>(CodecId::json);
  const auto payload = std::as_bytes(std::span(data, size));
  sluice::testing::Order o;
  order->decode(order->type_id(), 1, CodecId::json, payload, &o).ignore();
  sluice::testing::Deposited d;
  dep->decode(dep->type_id(), 2, CodecId::json, payload, &d).ignore();
  auto doc = to_document(*reg, order->type_id(), 1, CodecId::json, payload);
  if (doc.ok()) (void)to_json_text(*doc);
  return 0;
}
