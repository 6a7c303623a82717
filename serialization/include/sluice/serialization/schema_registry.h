// SchemaRegistry: (type name, version, codec) -> type id and schema, kept in the log itself.
//
// Design
//   Each schema is a system record (log_format::kTypeSchema) in the log, written when a
//   program first binds a type at a version and codec the log does not yet describe
//   (schema.h gives the byte layout). A registry is filled from a log with load(), so any
//   tool can decode any event with no application code. Type ids are per name (the record
//   header carries the version separately) and are allotted in order of first registration,
//   from 1. Upcasters are code: they live in the registry of the program that reads, not in
//   the log.
//
//   Registration checks, in order: the same (name, version, codec) already known must have
//   the same fields (else: bump the version); a new version must be readable from the
//   previous one (check_compatible) unless an upcaster for that step is registered.
//
// Headers
//   This header is light (no FlatBuffers, no nlohmann/json, no log writer or reader): it is
//   what projections include. Schema (schema.h), upcasters and documents (document.h) and
//   FlatBuffers event types (flatbuffers_codec.h) come with their own headers.
//
// Thread safety
//   Configure (load, add, bind, add_upcaster) on one thread; afterwards the const methods and
//   the bindings may be used from any number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/serialization/binding.h"
#include "sluice/serialization/codec.h"
#include "sluice/status.h"

namespace sluice {
class LogReader;
class LogWriter;
}  // namespace sluice

namespace sluice::serialization {

struct Schema;    // schema.h
class Upcaster;   // document.h: a std::function<Status(nlohmann::json& event)>

class SchemaRegistry {
 public:
  SchemaRegistry();
  ~SchemaRegistry();
  SchemaRegistry(const SchemaRegistry&) = delete;
  SchemaRegistry& operator=(const SchemaRegistry&) = delete;

  // Reads the schema records of a log that this registry has not seen yet (call again after
  // LogReader::refresh()). A bad entry is skipped and reported in the returned status (the
  // first one, with segment and offset); the others are still loaded.
  Status load(const LogReader& reader);
  // Opens `dir` read-only and loads it. A missing log is not an error (nothing to load).
  Status load(const std::string& dir);

  // Registers a schema (type id assigned from the name, ignoring schema.type_id) and, when
  // `writer` is given and the schema is new, appends it to the log. Returns the type id.
  // (Include schema.h to build a Schema.)
  Result<uint32_t> add(Schema schema, LogWriter* writer = nullptr);

  // Binds T to `codec`: builds its schema from the traits, registers it (see add) and
  // returns the binding used to encode and decode. Call add_upcaster for T's older versions
  // before binding a version that is not compatible with the previous one.
  template <Event T>
  Result<EventBinding<T>> bind(CodecId codec, LogWriter* writer = nullptr) {
    auto core = bind_core(detail::describe<T>(), codec, writer);
    if (!core.ok()) return core.status();
    bound_[std::string(EventTraits<T>::name)] = Bound{detail::type_tag<T>(), core.value()};
    return EventBinding<T>(std::move(core.value()));
  }

  // Read side: makes T decodable from the log this registry was loaded from, without a codec
  // choice (each record decodes with the codec it names) and without writing anything: T's
  // schema is registered in memory only (with the codec of T's stored schema when the log
  // has one, else json). Returns the decoder; binding<T>() returns it too. Use this in
  // readers, tools and rebuilds; bind<T>(codec, writer) is for the side that appends.
  template <Event T>
  Result<EventBinding<T>> register_for_reading() {
    return bind<T>(reading_codec(EventTraits<T>::name, EventTraits<T>::version), nullptr);
  }

  // The binding made by the last bind<T>() on this registry, or an invalid binding when T
  // was never bound. Readers use it to decode (decoding follows each record's codec, so the
  // codec T was bound with does not matter to them). Const: safe while others decode.
  template <Event T>
  EventBinding<T> binding() const {
    auto it = bound_.find(EventTraits<T>::name);
    if (it == bound_.end() || it->second.tag != detail::type_tag<T>()) return {};
    return EventBinding<T>(it->second.core);
  }

  // Registers the upcaster from `from_version` to `from_version + 1` of a type (include
  // document.h: an Upcaster edits a nlohmann::json document).
  void add_upcaster(std::string_view type_name, uint16_t from_version, Upcaster upcaster);
  // The upcaster registered for that step, or nullptr.
  const Upcaster* upcaster(std::string_view type_name, uint16_t from_version) const;
  bool has_upcaster(std::string_view type_name, uint16_t from_version) const;

  // The schema of (type, version, codec) (the old raw byte 1 finds raw), or nullptr.
  const Schema* find(uint32_t type_id, uint16_t version, CodecId codec) const noexcept;
  // Any codec's schema of (type, version), or nullptr.
  const Schema* find(uint32_t type_id, uint16_t version) const noexcept;
  std::optional<uint32_t> type_id(std::string_view name) const;
  std::string_view type_name(uint32_t type_id) const noexcept;  // "" if unknown
  size_t size() const noexcept;
  std::vector<const Schema*> schemas() const;

  // Schema-driven decode of a record (no upcasting) as compact JSON text, for messages and
  // tools that want text without nlohmann/json (document.h: to_document gives the document).
  // not_found when the registry holds no schema for (type, version, codec).
  Result<std::string> to_json(uint32_t type_id, uint16_t version, CodecId codec,
                              std::span<const std::byte> payload) const;

 private:
  struct State;  // schemas, ids, upcasters (schema_registry.cc)
  Result<std::shared_ptr<detail::BindingCore>> bind_core(detail::TypeDescription desc,
                                                         CodecId codec, LogWriter* writer);
  Result<uint32_t> add_impl(Schema schema, LogWriter* writer, bool from_log);
  const Schema* previous_version(uint32_t type_id, uint16_t version) const noexcept;
  // The codec register_for_reading<T> registers T with: its stored schema's, else json.
  CodecId reading_codec(std::string_view name, uint16_t version) const;

  struct Bound {
    const void* tag = nullptr;  // which C++ type (detail::type_tag<T>())
    std::shared_ptr<const detail::BindingCore> core;
  };
  std::unique_ptr<State> state_;
  std::map<std::string, Bound, std::less<>> bound_;  // by type name: the last bind<T>()
};

}  // namespace sluice::serialization
