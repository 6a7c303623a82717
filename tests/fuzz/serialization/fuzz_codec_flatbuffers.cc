// libFuzzer: the FlatBuffers codec's decoders on arbitrary bytes: the typed path (generated
// Verifier), zero-copy access, and the schema-driven reflection walker.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "sluice/serialization/document.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/serialization/testing/events.h"

using namespace sluice::serialization;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static SchemaRegistry* reg = new SchemaRegistry();
  static auto order = reg->bind<sluice::testing::Order>(CodecId::flatbuffers);
  // An 8-aligned copy, as a payload in the log is.
  std::vector<uint64_t> aligned((size + 7) / 8);
  if (size) std::memcpy(aligned.data(), data, size);
  const auto payload = std::as_bytes(std::span(reinterpret_cast<const uint8_t*>(aligned.data()), size));
  sluice::testing::Order o;
  order->decode(order->type_id(), 1, CodecId::flatbuffers, payload, &o).ignore();
  auto t = FlatBuffersCodec::access<sluice::testing::fb::Order>(payload);
  if (t.ok() && (*t)->symbol() != nullptr) (void)(*t)->symbol()->size();
  auto doc = to_document(*reg, order->type_id(), 1, CodecId::flatbuffers, payload);
  if (doc.ok()) (void)to_json_text(*doc);
  // The unaligned path too.
  if (size > 1) {
    const auto shifted = std::as_bytes(std::span(data + 1, size - 1));
    order->decode(order->type_id(), 1, CodecId::flatbuffers, shifted, &o).ignore();
    to_document(*reg, order->type_id(), 1, CodecId::flatbuffers, shifted).status().ignore();
  }
  return 0;
}
