// A projection's read model as of a position: the log's events [0, position) replayed into
// a fresh instance (a temporary model, never the live one), through the same ProjectionRunner
// a live projection or a rebuild uses (retries, parking and decoding alike). Nothing is
// checkpointed; no live model, relay or saga sees the replay.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sluice/projections/projection.h"
#include "sluice/projections/projection_runner.h"
#include "sluice/serialization/schema_registry.h"
#include "sluice/status.h"

namespace sluice {

// `registry` decodes typed events (a registry loaded from the log, or the engine's).
Result<std::shared_ptr<const Projection>> projection_model_as_of(const std::string& log_dir,
                                                                 const serialization::SchemaRegistry* registry,
                                                                 uint64_t position, const ProjectionFactory& factory);

template <class P>
Result<std::shared_ptr<const P>> projection_as_of(const std::string& log_dir, const serialization::SchemaRegistry& registry,
                                                  uint64_t position,
                                                  std::function<std::unique_ptr<P>()> factory = [] { return std::make_unique<P>(); }) {
  auto m = projection_model_as_of(log_dir, &registry, position,
                                  [f = std::move(factory)]() -> std::unique_ptr<Projection> { return f(); });
  if (!m.ok()) return m.status();
  return std::static_pointer_cast<const P>(m.value());
}

}  // namespace sluice
