#include "sluice/stats/counters_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "sluice/bus/clock.h"

namespace sluice::counters {

std::string_view to_string(SlotState s) noexcept {
  switch (s) {
    case SlotState::free: return "free";
    case SlotState::running: return "running";
    case SlotState::stopped: return "stopped";
    case SlotState::failed: return "failed";
    case SlotState::rebuilding: return "rebuilding";
    case SlotState::catching_up: return "catching_up";
  }
  return "unknown";
}

namespace {

Status sys_error(const std::string& what, const std::string& path) {
  return Status(StatusCode::io_error, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

Result<std::unique_ptr<CountersFile>> CountersFile::create(const std::string& path, const Meta& meta) {
  if (meta.slot_count == 0 || meta.slot_count > 4096)
    return Status(StatusCode::invalid_argument, "counters file " + path + ": slot count must be 1..4096");
  // A fresh inode: a reader still mapping the previous run's file keeps its own copy.
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, meta.file_mode);
  if (fd < 0) return sys_error("create", tmp);
  const size_t size = kHeaderSize + size_t{meta.slot_count} * kSlotSize;
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    Status st = sys_error("size", tmp);
    ::close(fd);
    return st;
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return sys_error("mmap", tmp);
  auto* base = static_cast<std::byte*>(p);
  std::unique_ptr<CountersFile> f(new CountersFile(path, base, size, meta.slot_count, true));
  FileHeader& h = f->header();
  h.version = kVersion;
  h.header_size = kHeaderSize;
  h.slot_size = kSlotSize;
  h.slot_count = meta.slot_count;
  h.pid = ::getpid();
  h.start_time_ns = realtime_ns();
  h.heartbeat_ns = static_cast<uint64_t>(h.start_time_ns);
  h.segment_size = meta.segment_size;
  std::snprintf(h.log_dir, sizeof h.log_dir, "%s", meta.log_dir.c_str());
  for (uint32_t i = 0; i < meta.slot_count; ++i) f->slot(i).histogram.min = UINT64_MAX;
  // Release: the magic is written last; a reader that acquires it sees the header above.
  std::atomic_ref<uint64_t>(h.magic).store(kMagic, std::memory_order_release);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return sys_error("rename to", path);
  return f;
}

Result<std::unique_ptr<CountersFile>> CountersFile::open_read(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return Status(StatusCode::not_found, "no counters file " + path + " (is an engine running on this log?)");
    return sys_error("open", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = sys_error("stat", path);
    ::close(fd);
    return s;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < kHeaderSize) {
    ::close(fd);
    return Status(StatusCode::corruption, "counters file " + path + ": " + std::to_string(size) +
                                              " bytes, shorter than its header");
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return sys_error("mmap", path);
  auto* base = static_cast<std::byte*>(p);
  const auto* h = reinterpret_cast<const FileHeader*>(base);
  // Acquire: pairs with the release store of the magic in create().
  const uint64_t magic = std::atomic_ref<uint64_t>(const_cast<uint64_t&>(h->magic)).load(std::memory_order_acquire);
  std::string bad;
  if (magic != kMagic) bad = "bad magic";
  else if (h->version != kVersion) bad = "version " + std::to_string(h->version) + ", this tool reads " + std::to_string(kVersion);
  else if (h->header_size != kHeaderSize || h->slot_size != kSlotSize) bad = "unexpected header or slot size";
  else if (size < kHeaderSize + size_t{h->slot_count} * kSlotSize) bad = "shorter than its slots";
  if (!bad.empty()) {
    ::munmap(p, size);
    return Status(StatusCode::corruption, "counters file " + path + ": " + bad);
  }
  return std::unique_ptr<CountersFile>(new CountersFile(path, base, size, h->slot_count, false));
}

CountersFile::~CountersFile() {
  if (base_) ::munmap(base_, size_);
}

Result<Slot*> CountersFile::allocate(SlotKind kind, std::string_view name) {
  if (!writable_) return Status(StatusCode::invalid_argument, "counters file " + path_ + " is read-only");
  for (uint32_t i = 0; i < slot_count_; ++i) {
    Slot& s = slot(i);
    if (state(s) != SlotState::free) continue;
    const size_t n = std::min(name.size(), sizeof s.header.name - 1);
    std::memcpy(s.header.name, name.data(), n);
    s.header.name[n] = '\0';
    s.header.kind = static_cast<uint32_t>(kind);
    set_state(s, SlotState::running);
    return &s;
  }
  return Status(StatusCode::invalid_argument, "counters file " + path_ + ": no free slot for '" +
                                                  std::string(name) + "' (" + std::to_string(slot_count_) +
                                                  " slots)");
}

void CountersFile::set_state(Slot& s, SlotState st) noexcept {
  // Release: publishes the slot's name and kind (written before) to a reader that acquires
  // the state in state().
  std::atomic_ref<uint32_t>(s.header.state).store(static_cast<uint32_t>(st), std::memory_order_release);
}

SlotState CountersFile::state(const Slot& s) noexcept {
  // Acquire: pairs with set_state().
  return static_cast<SlotState>(
      std::atomic_ref<uint32_t>(const_cast<uint32_t&>(s.header.state)).load(std::memory_order_acquire));
}

CoarseHistogram coarsen(const HistogramWords& h) {
  CoarseHistogram c;
  uint32_t next = 0;  // the next coarse bound not yet passed
  for (uint32_t i = 0; i < kBuckets; ++i) {
    // Bucket i holds values in [bucket_lower(i), bucket_upper(i)): it counts below every
    // bound >= its upper end.
    while (next < kCoarseBuckets && bucket_upper(i) > coarse_bound_ns(next)) c.below[next++] = c.count;
    c.count += get(h.buckets[i]);
  }
  while (next < kCoarseBuckets) c.below[next++] = c.count;
  c.sum_ns = get(h.sum);
  return c;
}

EngineStat read_stats(const CountersFile& f) {
  EngineStat e;
  const FileHeader& h = f.header();
  e.pid = h.pid;
  e.log_dir = std::string(h.log_dir, strnlen(h.log_dir, sizeof h.log_dir));
  e.heartbeat_ns = static_cast<int64_t>(get(h.heartbeat_ns));
  e.head_position = get(h.head_position);
  const uint64_t head_address = get(h.head_address);
  const int64_t head_ts = get(h.head_timestamp_ns);
  for (uint32_t i = 0; i < f.slot_count(); ++i) {
    const Slot& s = f.slot(i);
    const SlotState st = CountersFile::state(s);
    if (st == SlotState::free) continue;
    const std::string name(s.header.name, strnlen(s.header.name, sizeof s.header.name));
    if (s.header.kind == static_cast<uint32_t>(SlotKind::consumer)) {
      ConsumerStat c;
      c.name = name;
      c.events = get(s.consumer.events);
      c.overruns = get(s.consumer.overruns);
      c.caught_up = get(s.consumer.caught_up);
      c.rejoins = get(s.consumer.rejoins);
      c.position = get(s.consumer.position);
      c.cpu = get(s.consumer.cpu);
      e.consumers.push_back(std::move(c));
      continue;
    }
    if (s.header.kind == static_cast<uint32_t>(SlotKind::ingress)) {
      e.ingress.present = true;
      e.ingress.requests = get(s.ingress.requests);
      e.ingress.back_pressured = get(s.ingress.back_pressured);
      e.ingress.queued = get(s.ingress.queued);
      continue;
    }
    if (s.header.kind == static_cast<uint32_t>(SlotKind::repository)) {
      const RepositoryCounters& c = s.repository;
      RepositoryStat r;
      r.name = name;
      r.commands = get(c.commands);
      r.accepted = get(c.accepted);
      r.rejected = get(c.rejected);
      r.duplicates = get(c.duplicates);
      r.conflicts = get(c.conflicts);
      r.conflict_failures = get(c.conflict_failures);
      r.snapshots_written = get(c.snapshots_written);
      r.snapshots_loaded = get(c.snapshots_loaded);
      r.snapshots_ignored = get(c.snapshots_ignored);
      r.keys_out_of_window = get(c.keys_out_of_window);
      r.key_collisions = get(c.key_collisions);
      e.repositories.push_back(std::move(r));
      continue;
    }
    if (s.header.kind == static_cast<uint32_t>(SlotKind::saga)) {
      const SagaCounters& c = s.saga;
      SagaStat g;
      g.name = name;
      g.running = get(c.running);
      g.completed = get(c.completed);
      g.compensated = get(c.compensated);
      g.compensation_failed = get(c.compensation_failed);
      g.parked = get(c.parked);
      g.oldest_running_started_ns = get(c.oldest_running_started_ns);
      g.steps_succeeded = get(c.steps_succeeded);
      g.attempts_failed = get(c.attempts_failed);
      g.timers_fired = get(c.timers_fired);
      e.sagas.push_back(std::move(g));
      continue;
    }
    if (s.header.kind == static_cast<uint32_t>(SlotKind::relay)) {
      RelayStat r;
      r.name = name;
      r.state = st;
      const RelayCounters& c = s.relay;
      r.connected = get(c.connected) != 0;
      r.acknowledged_position = get(c.acknowledged_position);
      r.published_position = get(c.published_position);
      r.head_position = get(c.head_position);
      r.in_flight = get(c.in_flight);
      r.lag_events = get(c.lag_events);
      r.lag_bytes = get(c.lag_bytes);
      r.lag_ns = get(c.lag_ns);
      r.published = get(c.published);
      r.acknowledged = get(c.acknowledged);
      r.duplicates = get(c.duplicates);
      r.failures = get(c.failures);
      r.reconnects = get(c.reconnects);
      r.checkpoint_position = get(c.checkpoint_position);
      r.latency = summarize(s.histogram);
      r.latency_buckets = coarsen(s.histogram);
      e.relays.push_back(std::move(r));
      continue;
    }
    if (s.header.kind != static_cast<uint32_t>(SlotKind::projection)) continue;
    ProjectionStat p;
    p.name = name;
    p.state = st;
    const ProjectionCounters& c = s.counters;
    p.applied_position = get(c.applied_position);
    p.head_position = e.head_position;
    p.events_behind = e.head_position > p.applied_position ? e.head_position - p.applied_position : 0;
    const uint64_t aa = get(c.applied_address);
    p.bytes_behind = head_address > aa && p.events_behind > 0 ? head_address - aa : 0;
    const int64_t ats = get(c.applied_timestamp_ns);
    p.time_behind_ns = p.events_behind > 0 && head_ts > ats ? head_ts - ats : 0;
    p.events_applied = get(c.events_applied);
    p.dead_letters = get(c.dead_letters);
    p.parked_keys = get(c.parked_keys);
    p.retries = get(c.retries);
    p.handler_errors = get(c.handler_errors);
    p.checkpoint_position = get(c.checkpoint_position);
    p.rebuild_position = get(c.rebuild_position);
    p.rebuild_target = get(c.rebuild_target);
    p.alert_active = get(s.alerts.alert_active) != 0;
    p.alerts_raised = get(s.alerts.alerts_raised);
    p.latency = summarize(s.histogram);
    p.latency_buckets = coarsen(s.histogram);
    e.projections.push_back(std::move(p));
  }
  return e;
}

}  // namespace sluice::counters

namespace sluice::counters {

std::string relay_stats_path(const std::string& log_dir, std::string_view relay_name) {
  return log_dir + "/relay." + std::string(relay_name) + ".stats";
}

void add_relay_files(const std::string& log_dir, EngineStat* e) {
  std::error_code ec;
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(log_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 12 && name.rfind("relay.", 0) == 0 && name.substr(name.size() - 6) == ".stats")
      paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    auto f = CountersFile::open_read(p);
    if (!f.ok()) continue;
    EngineStat r = read_stats(**f);
    for (auto& relay : r.relays) e->relays.push_back(std::move(relay));
  }
}

}  // namespace sluice::counters
