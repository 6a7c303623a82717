#include "sluice/projections/log_tail.h"

namespace sluice {

Result<std::unique_ptr<LogTail>> LogTail::open(const std::string& log_dir, std::function<uint64_t()> committed_hint) {
  auto r = LogReader::open(log_dir);
  if (!r.ok()) return r.status();
  return std::unique_ptr<LogTail>(new LogTail(std::move(r.value()), std::move(committed_hint)));
}

void LogTail::refresh_if_needed() noexcept {
  if (!error_.ok()) return;
  if (hint_ && hint_() <= reader_->end_position()) return;
  // refresh() indexes new records (it may grow its index vectors: amortised, cold).
  auto r = reader_->refresh();
  if (!r.ok()) error_ = r.status();
}

uint64_t LogTail::poll(std::span<ProjectionRunner* const> runners, uint32_t max_batch) noexcept {
  uint64_t min_next = UINT64_MAX;
  for (ProjectionRunner* pr : runners)
    if (!pr->stopped()) min_next = std::min(min_next, pr->next_position());
  if (min_next == UINT64_MAX) return 0;
  if (min_next >= reader_->end_position()) refresh_if_needed();
  const uint64_t end = reader_->end_position();
  uint64_t handed = 0;
  RecordView v;
  for (ProjectionRunner* pr : runners) {
    if (pr->stopped()) continue;
    uint64_t p = pr->next_position();
    if (p < reader_->begin_position()) p = reader_->begin_position();
    const uint64_t last = std::min<uint64_t>(end, p + max_batch);
    for (; p < last && !pr->stopped(); ++p) {
      if (!reader_->read(p, &v)) break;
      pr->on_record(v, p + 1 == last);
      ++handed;
    }
  }
  return handed;
}

bool LogTail::drained(std::span<ProjectionRunner* const> runners) noexcept {
  refresh_if_needed();
  for (ProjectionRunner* pr : runners)
    if (!pr->stopped() && pr->next_position() < reader_->end_position()) return false;
  return true;
}

}  // namespace sluice
