// libFuzzer: the raw codec's decoders on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "sluice/serialization/document.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/serialization/testing/events.h"

using namespace sluice::serialization;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static SchemaRegistry* reg = new SchemaRegistry();
  static auto order = reg->bind<sluice::testing::Order>(CodecId::raw);
  const auto payload = std::as_bytes(std::span(data, size));
  sluice::testing::Order o;
  order->decode(order->type_id(), 1, CodecId::raw, payload, &o).ignore();
  auto doc = to_document(*reg, order->type_id(), 1, CodecId::raw, payload);
  if (doc.ok()) (void)to_json_text(*doc);
  return 0;
}
