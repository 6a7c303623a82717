// Schemas: what a (type name, version, codec) looks like, how it is stored in the log, and
// whether a new version can read what an older one wrote.
//
// Schema entry: the payload of a log record of type log_format::kTypeSchema (0x81, ignorable)
// whose header event_type holds the type id. All integers little-endian.
//
//   0       4    5     6       8         12     14     16         20         24
//   +-------+----+-----+-------+---------+------+------+----------+----------+------------
//   | magic |fmt |codec|version| type id | nlen | rlen | body len | reserved | name, root,
//   +-------+----+-----+-------+---------+------+------+----------+----------+ pad, body
//   magic "SLSC" (0x43534c53); fmt = 1; codec = a CodecId (0 raw, 2 flatbuffers, 3 json;
//   entries written before the codec ids were unified hold 1 for raw: read as raw); name = UTF-8 type name (nlen bytes); root = the
//   FlatBuffers root table's fully qualified name (rlen bytes, 0 for other codecs); zero
//   padding to a multiple of 8; body (body len bytes):
//     flatbuffers: the .bfbs binary schema (flatc --schema -b), verified on load;
//     json, raw:   a field list, UTF-8 JSON:
//                  {"size":24,"fields":[{"name":"account","type":"u64","offset":0,"size":8},
//                   {"name":"currency","type":"string","offset":16,"size":8,"default":"EUR"}]}
//                  ("size", "offset" and field "size" only for raw; "default" only when the
//                  field declares one).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/serialization/codec.h"
#include "sluice/serialization/field_types.h"
#include "sluice/status.h"

namespace reflection {
struct Schema;
struct Object;
}  // namespace reflection

namespace sluice::serialization {

inline constexpr uint32_t kSchemaEntryMagic = 0x43534c53;  // "SLSC" little-endian
inline constexpr uint8_t kSchemaEntryFormat = 1;
inline constexpr size_t kSchemaEntryHeaderSize = 24;
inline constexpr size_t kMaxSchemaBodySize = 16u << 20;
inline constexpr size_t kMaxTypeNameLength = 1024;

struct FieldDef {
  std::string name;
  FieldType type = FieldType::i64;
  std::string detail;            // composite: e.g. "vector<ubyte>"; otherwise ""
  uint32_t offset = 0;           // raw: byte offset in the struct
  uint32_t size = 0;             // raw: bytes (string: capacity of the fixed char array)
  bool has_default = false;      // a reader may fill the field in when the writer lacked it
  nlohmann::json default_value;  // when has_default (null for a FlatBuffers string)
  friend bool operator==(const FieldDef&, const FieldDef&) = default;
};

struct Schema {
  std::string type_name;
  uint32_t type_id = 0;
  uint16_t version = 0;
  CodecId codec = CodecId::raw;
  std::vector<FieldDef> fields;   // logical fields (flatbuffers: from the root table)
  uint32_t struct_size = 0;       // raw: sizeof the struct
  std::string fb_table;           // flatbuffers: fully qualified root table name
  std::vector<uint8_t> fb_schema; // flatbuffers: .bfbs bytes

  const FieldDef* field(std::string_view name) const noexcept;
  // flatbuffers: the parsed binary schema and root table (valid while this Schema lives and
  // is not modified); nullptr for other codecs.
  const reflection::Schema* fb_reflection() const noexcept;
  const reflection::Object* fb_root() const noexcept;
  // "bank.Deposited v2 (json)"
  std::string describe() const;
};

// The payload of a schema record.
std::vector<std::byte> encode_schema_entry(const Schema& schema);
// Parses and validates a schema record payload (a FlatBuffers binary schema is verified and
// its type references bounds-checked). Errors: invalid_argument naming what is wrong.
Result<Schema> decode_schema_entry(std::span<const std::byte> payload);

// Builds the flatbuffers Schema of `table` (fully qualified) from .bfbs bytes, deriving the
// field list. Errors name the table.
Result<Schema> flatbuffers_schema(std::string type_name, uint16_t version,
                                  std::span<const uint8_t> bfbs, std::string table);

// Whether data written with `older` can be read as `newer` with no upcaster, Avro-style:
// every field of `older` is still in `newer` with the same type, and every field `newer`
// adds has a default. The error names type, both versions and the first offending field.
Status check_compatible(const Schema& older, const Schema& newer);

}  // namespace sluice::serialization
