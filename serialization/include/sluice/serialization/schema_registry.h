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
// Thread safety
//   Configure (load, add, bind, add_upcaster) on one thread; afterwards the const methods and
//   the bindings may be used from any number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "sluice/serialization/binding.h"
#include "sluice/serialization/schema.h"
#include "sluice/status.h"

namespace sluice::serialization {

// Turns a document of version `from` into one of version `from + 1`, in place (rename,
// convert, split, drop fields). Runs on the read path of old events only.
using Upcaster = std::function<Status(nlohmann::json& event)>;

class SchemaRegistry {
 public:
  SchemaRegistry() = default;
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
  // has one). Returns the decoder; binding<T>() returns it too. Use this in readers, tools
  // and rebuilds; bind<T>(codec, writer) is for the side that appends.
  template <Event T>
  Result<EventBinding<T>> register_for_reading() {
    CodecId codec = CodecId::json;
    if (auto id = type_id(EventTraits<T>::name))
      if (const Schema* stored = find(*id, EventTraits<T>::version)) codec = stored->codec;
    return bind<T>(codec == CodecId::none ? CodecId::json : codec, nullptr);
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

  // Registers the upcaster from `from_version` to `from_version + 1` of a type.
  void add_upcaster(std::string_view type_name, uint16_t from_version, Upcaster upcaster);
  bool has_upcaster(std::string_view type_name, uint16_t from_version) const;

  const Schema* find(uint32_t type_id, uint16_t version, CodecId codec) const noexcept;
  // Any codec's schema of (type, version), or nullptr.
  const Schema* find(uint32_t type_id, uint16_t version) const noexcept;
  std::optional<uint32_t> type_id(std::string_view name) const;
  std::string_view type_name(uint32_t type_id) const noexcept;  // "" if unknown
  size_t size() const noexcept { return schemas_.size(); }
  std::vector<const Schema*> schemas() const;

  // Schema-driven decode of a record to a document with its stored schema (no upcasting).
  Result<nlohmann::json> to_document(uint32_t type_id, uint16_t version, CodecId codec,
                                     std::span<const std::byte> payload) const;
  // Runs the upcaster chain on `doc` from `from` to `to` (from < to). A step with no upcaster
  // is allowed when both versions' schemas are known and compatible (defaults fill in).
  Status upcast(uint32_t type_id, uint16_t from, uint16_t to, nlohmann::json* doc) const;

 private:
  using Key = std::tuple<uint32_t, uint16_t, uint8_t>;
  Result<std::shared_ptr<detail::BindingCore>> bind_core(detail::TypeDescription desc,
                                                         CodecId codec, LogWriter* writer);
  Result<uint32_t> add_impl(Schema schema, LogWriter* writer, bool from_log);
  const Schema* previous_version(uint32_t type_id, uint16_t version) const noexcept;

  struct Bound {
    const void* tag = nullptr;  // which C++ type (detail::type_tag<T>())
    std::shared_ptr<const detail::BindingCore> core;
  };
  std::map<Key, std::unique_ptr<Schema>> schemas_;
  std::map<std::string, Bound, std::less<>> bound_;  // by type name: the last bind<T>()
  std::unordered_map<std::string, uint32_t> ids_;
  std::map<uint32_t, std::string> id_names_;
  std::map<std::pair<std::string, uint16_t>, Upcaster, std::less<>> upcasters_;
  // Schema records already loaded, by (segment, offset), so load() can be called again.
  std::map<std::pair<uint64_t, uint32_t>, bool> loaded_;
};

}  // namespace sluice::serialization
