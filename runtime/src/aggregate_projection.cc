// projection_model_as_of: see aggregate_projection.h.
#include "sluice/runtime/aggregate_projection.h"

#include <algorithm>

#include "sluice/bus/log_reader.h"
#include "sluice/projections/rebuild.h"

namespace sluice {

Result<std::shared_ptr<const Projection>> projection_model_as_of(const std::string& log_dir,
                                                                 const serialization::SchemaRegistry* registry,
                                                                 uint64_t position, const ProjectionFactory& factory) {
  auto reader = LogReader::open(log_dir);
  if (!reader.ok()) return reader.status();
  LogReader& r = *reader.value();
  ProjectionOptions o;
  o.checkpoint_every = 0;  // a temporary model: never checkpointed
  o.checkpoint_interval = std::chrono::milliseconds(0);
  ProjectionRunner::Context ctx;
  ctx.log_dir = log_dir;
  ctx.registry = registry;
  ProjectionRunner runner("as-of", factory, o, ctx);
  if (Status st = runner.open(r.end_position(), /*use_checkpoint=*/false); !st.ok()) return st;
  // The projections' one replay loop (the same batches and apply path as a rebuild).
  if (auto reached = replay_into(r, runner, std::min(position, r.end_position())); !reached.ok()) return reached.status();
  if (runner.failed()) return runner.failure();
  return runner.model();
}

}  // namespace sluice
