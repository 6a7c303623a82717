// The JSON document side of serialization (nlohmann/json): schema-driven decoding of any
// record into a document, upcasters (which edit such documents) and compact JSON text.
// Include it where you write upcasters or decode records with no application struct
// (tools, dumps); a projection, a writer or a typed reader does not need it.
//
//   #include "sluice/serialization/document.h"
//   registry.add_upcaster("bank.Deposited", 1, [](nlohmann::json& e) {
//     e["currency"] = "EUR";
//     return sluice::Status();
//   });
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sluice/serialization/codec.h"
#include "sluice/serialization/schema.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/status.h"

namespace sluice::serialization {

// Turns a document of version `from` into one of version `from + 1`, in place (rename,
// convert, split, drop fields). Runs on the read path of old events only. Registered with
// SchemaRegistry::add_upcaster.
class Upcaster : public std::function<Status(nlohmann::json& event)> {
 public:
  using std::function<Status(nlohmann::json& event)>::function;
};

// The schema-driven side of a codec. Implementations are stateless and thread-safe.
class Codec {
 public:
  virtual ~Codec() = default;
  virtual CodecId id() const noexcept = 0;
  virtual std::string_view name() const noexcept = 0;
  // Decodes a payload written with `schema` into a JSON object. Never throws; bad bytes give
  // an invalid_argument status naming the type, version and (where known) the field.
  virtual Result<nlohmann::json> to_document(const Schema& schema,
                                             std::span<const std::byte> payload) const = 0;
};

// The built-in codec for `id`; nullptr for unknown ids.
const Codec* codec_for(CodecId id) noexcept;

// Serializes a document to compact JSON text; invalid UTF-8 in strings is replaced (U+FFFD)
// rather than thrown on.
std::string to_json_text(const nlohmann::json& doc);

// Schema-driven decode of a record to a document with the schema `registry` holds for
// (type, version, codec) (no upcasting). not_found when it holds none.
Result<nlohmann::json> to_document(const SchemaRegistry& registry, uint32_t type_id, uint16_t version,
                                   CodecId codec, std::span<const std::byte> payload);
// Runs `registry`'s upcaster chain on `doc` from `from` to `to` (from < to). A step with no
// upcaster is allowed when both versions' schemas are known and compatible (defaults fill in).
Status upcast(const SchemaRegistry& registry, uint32_t type_id, uint16_t from, uint16_t to,
              nlohmann::json* doc);

}  // namespace sluice::serialization
