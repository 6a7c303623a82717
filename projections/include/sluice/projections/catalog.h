// ProjectionCatalog: an application's projections by name, for tools. With it, an
// application's own binary offers the offline rebuild of its projections:
//
//   int main(int argc, char** argv) {
//     if (argc > 1 && std::string_view(argv[1]) == "rebuild")
//       return sluice::rebuild_command(my_catalog(), argc - 1, argv + 1, "my_app rebuild");
//     ...
//   }
//
// and `sluice rebuild --app ./my_app DIR PROJECTION` runs it (the `sluice` tool links no
// application's projections). The bank ledger sample does this (samples/bank_ledger).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/projections/projection_runner.h"
#include "sluice/status.h"

namespace sluice {

namespace serialization {
class SchemaRegistry;
}

class ProjectionCatalog {
 public:
  // Makes `registry` (loaded from the log) able to decode the application's event types.
  using TypeRegistration = std::function<Status(serialization::SchemaRegistry&)>;

  void add(std::string name, ProjectionFactory factory) { entries_.push_back({std::move(name), std::move(factory)}); }
  void set_types(TypeRegistration register_types) { types_ = std::move(register_types); }

  // nullptr if no projection has that name.
  const ProjectionFactory* find(std::string_view name) const noexcept {
    for (const auto& e : entries_)
      if (e.name == name) return &e.factory;
    return nullptr;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e.name);
    return out;
  }
  Status register_types(serialization::SchemaRegistry& registry) const {
    return types_ ? types_(registry) : Status::OK();
  }

 private:
  struct Entry {
    std::string name;
    ProjectionFactory factory;
  };
  std::vector<Entry> entries_;
  TypeRegistration types_;
};

// The offline rebuild as a command: args are `DIR PROJECTION [--dry-run] [--json] [--quiet]`
// (argv[0] is the command's own name and is skipped). Replays the whole log into a fresh read
// model of the named projection, with a progress bar on a terminal, and replaces its
// checkpoint (unless --dry-run); refused while an engine holds the log. Prints the result
// (one JSON object with --json). Returns the exit code of the `sluice` tool: 0 done, 1 the
// rebuild failed or the log is in use, 2 usage (unknown projection, not a log, bad arguments).
// `program` names the command in messages ("bank_ledger rebuild").
int rebuild_command(const ProjectionCatalog& catalog, int argc, char** argv, std::string_view program);

}  // namespace sluice
