// LogTail: feeds projection runners from the log itself (LogReader: refresh + read by
// position), for offline use and tests. The Engine's live path is the bus ring, with
// LogCatchUpSource behind it for a consumer that falls behind (see runtime/engine.h).
//
// Design
//   One LogTail per worker thread, shared by the runners on that thread: one refresh() of
//   the reader per poll, then each runner reads its own next positions (zero-copy views
//   into the mapping) in batches of at most max_batch, the last one flagged end_of_batch.
//   A hint (the writer's committed position, an acquire load) avoids refreshing when
//   nothing new was committed, so an idle poll is a load and a compare.
//
// Thread safety
//   One thread (the worker) uses a LogTail. The hint function may be called from it at any
//   time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "sluice/bus/log_reader.h"
#include "sluice/projections/projection_runner.h"
#include "sluice/status.h"

namespace sluice {

class LogTail {
 public:
  // `committed_hint`: returns one past the last committed position (e.g. the in-process
  // writer's committed_position()); nullptr: refresh on every poll.
  static Result<std::unique_ptr<LogTail>> open(const std::string& log_dir,
                                               std::function<uint64_t()> committed_hint = nullptr);
  // Refreshes if needed, then hands each runner up to max_batch events. Returns the number
  // of events handed out (0: nothing to do).
  uint64_t poll(std::span<ProjectionRunner* const> runners, uint32_t max_batch = 1024) noexcept;
  // True when every non-stopped runner has reached the end of what the reader has indexed
  // after a refresh.
  bool drained(std::span<ProjectionRunner* const> runners) noexcept;
  uint64_t end_position() const noexcept { return reader_->end_position(); }
  LogReader& reader() noexcept { return *reader_; }
  const Status& error() const noexcept { return error_; }

 private:
  LogTail(std::unique_ptr<LogReader> r, std::function<uint64_t()> hint)
      : reader_(std::move(r)), hint_(std::move(hint)) {}
  void refresh_if_needed() noexcept;
  std::unique_ptr<LogReader> reader_;
  std::function<uint64_t()> hint_;
  Status error_;
};

}  // namespace sluice
