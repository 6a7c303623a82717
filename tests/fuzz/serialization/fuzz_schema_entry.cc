// libFuzzer: a schema record from the log (what `sluice dump` and SchemaRegistry::load parse),
// then, if it is accepted, the rest of the input decoded with it: the entry parser, the
// binary-schema checks and every schema-driven decoder under a hostile schema.
// Input: [u16 entry length][entry bytes][payload bytes].
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "sluice/serialization/document.h"
#include "sluice/serialization/schema_registry.h"

using namespace sluice::serialization;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint16_t n;
  std::memcpy(&n, data, 2);
  data += 2;
  size -= 2;
  if (n > size) n = static_cast<uint16_t>(size);
  std::vector<uint64_t> entry((n + 7) / 8), payload((size - n + 7) / 8);
  if (n) std::memcpy(entry.data(), data, n);
  if (size > n) std::memcpy(payload.data(), data + n, size - n);
  auto s = decode_schema_entry(std::as_bytes(std::span(reinterpret_cast<const uint8_t*>(entry.data()), n)));
  if (!s.ok()) return 0;
  (void)encode_schema_entry(*s);
  SchemaRegistry reg;
  if (!reg.add(*s).ok()) return 0;
  auto doc = to_document(reg, 1, s->version, s->codec,
                             std::as_bytes(std::span(reinterpret_cast<const uint8_t*>(payload.data()), size - n)));
  if (doc.ok()) (void)to_json_text(*doc);
  return 0;
}
