// The non-template half of Repository<S>: append ports, the shared reader, snapshot files
// and counters. See repository.h.
#include "sluice/runtime/repository.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>

#include "sluice/bus/crc32c.h"
#include "sluice/bus/file_ops.h"
#include "sluice/runtime/engine.h"

namespace sluice {

std::string_view to_string(CommandCode c) noexcept {
  switch (c) {
    case CommandCode::ok: return "ok";
    case CommandCode::duplicate: return "duplicate";
    case CommandCode::rejected: return "rejected";
    case CommandCode::conflict: return "conflict";
    case CommandCode::back_pressured: return "back_pressured";
    case CommandCode::closed: return "closed";
    case CommandCode::io_error: return "io_error";
    case CommandCode::invalid_argument: return "invalid_argument";
    case CommandCode::unknown_command: return "unknown_command";
    case CommandCode::handler_failed: return "handler_failed";
    case CommandCode::key_collision: return "key_collision";
    case CommandCode::key_out_of_window: return "key_out_of_window";
    case CommandCode::key_in_flight: return "key_in_flight";
    case CommandCode::load_failed: return "load_failed";
  }
  return "unknown";
}

namespace {

class EnginePort final : public AppendPort {
 public:
  EnginePort(Engine& e, std::chrono::milliseconds ack_timeout) : e_(e), ack_timeout_(ack_timeout) {}
  Result<StreamId> stream(std::string_view name) override { return e_.submit_stream(name); }
  AppendResult append(StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept override {
    Submitter s = take();
    if (!s) return AppendResult{AppendCode::back_pressured, 0, 0};  // no producer left in the ingress
    Ticket t = 0;
    AppendResult r;
    switch (s.try_submit(stream, expected, events, &t)) {
      case SubmitCode::ok: r = s.wait_completed(t); break;  // committed (or refused)
      case SubmitCode::back_pressured: r.code = AppendCode::back_pressured; break;
      case SubmitCode::closed: r.code = AppendCode::closed; break;
    }
    give_back(std::move(s));
    return r;
  }
  uint64_t acknowledged_position() const noexcept override { return e_.acknowledged_position(); }
  Status wait_acknowledged(uint64_t position) override {
    if (e_.acknowledged_position() > position) return Status();
    return e_.writer().wait_acknowledged(position, ack_timeout_);
  }
  const std::string& dir() const noexcept override { return e_.dir(); }

 private:
  // A Submitter is for one thread at a time: each append borrows one from the pool (the pool
  // grows to the number of threads appending at once, within the ingress's producer limit).
  Submitter take() noexcept {
    {
      std::lock_guard lock(mu_);
      if (!free_.empty()) {
        Submitter s = std::move(free_.back());
        free_.pop_back();
        return s;
      }
    }
    try {
      auto s = e_.submitter();
      return s.ok() ? std::move(s.value()) : Submitter();
    } catch (...) {
      return Submitter();
    }
  }
  void give_back(Submitter s) noexcept {
    std::lock_guard lock(mu_);
    if (free_.size() < free_.capacity()) free_.push_back(std::move(s));  // else destroyed (returned to the ingress)
  }

  Engine& e_;
  const std::chrono::milliseconds ack_timeout_;
  std::mutex mu_;
  std::vector<Submitter> free_ = [] {
    std::vector<Submitter> v;
    v.reserve(64);  // the ingress's default producer limit: push_back never allocates
    return v;
  }();
};

class WriterPort final : public AppendPort {
 public:
  explicit WriterPort(LogWriter& w) : w_(w) {}
  Result<StreamId> stream(std::string_view name) override {
    std::lock_guard lock(mu_);
    return w_.stream(name);
  }
  AppendResult append(StreamId stream, ExpectedVersion expected, std::span<const EventData> events) noexcept override {
    std::lock_guard lock(mu_);
    return w_.append(stream, expected, events);
  }
  uint64_t acknowledged_position() const noexcept override { return w_.acknowledged_position(); }
  Status wait_acknowledged(uint64_t position) override {
    if (w_.acknowledged_position() > position) return Status();
    return w_.wait_acknowledged(position, std::chrono::milliseconds(10'000));
  }
  const std::string& dir() const noexcept override { return w_.dir(); }
  std::string last_error() const override {
    std::lock_guard lock(mu_);
    return w_.last_error().to_string();
  }

 private:
  LogWriter& w_;
  mutable std::mutex mu_;  // one appender at a time: LogWriter has a single owner
};

// ---- snapshot file format (docs/aggregates.md) ----------------------------------------------
//
//   offset size  field
//   0      4     magic "SLSN"
//   4      2     format version (1)
//   6      2     reserved, 0
//   8      8     fingerprint of the aggregate type (AggregateType::fingerprint())
//   16     8     stream id
//   24     8     version: events of the stream applied
//   32     8     position of the event at `version`
//   40     4     state bytes that follow
//   44     4     masked CRC32C of bytes [0, 44) and the state bytes
//   48     ...   state (SnapshotWriter bytes, or the trivially copyable state)
// Little-endian (the host order; Sluice runs on little-endian machines only).
constexpr uint32_t kSnapshotMagic = 0x4e534c53;  // "SLSN"
constexpr uint16_t kSnapshotFormat = 1;
struct SnapshotHeader {
  uint32_t magic;
  uint16_t format;
  uint16_t reserved;
  uint64_t fingerprint;
  uint64_t stream;
  uint64_t version;
  uint64_t position;
  uint32_t state_bytes;
  uint32_t crc;
};
static_assert(sizeof(SnapshotHeader) == 48 && offsetof(SnapshotHeader, crc) == 44);

uint32_t snapshot_crc(const SnapshotHeader& h, const char* state, size_t n) noexcept {
  uint32_t c = crc32c::extend(0, &h, offsetof(SnapshotHeader, crc));
  return crc32c::mask(crc32c::extend(c, state, n));
}

std::string sanitize(std::string_view name) {
  std::string out;
  for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '_';
  return out.empty() ? std::string("aggregate") : out;
}

}  // namespace

std::unique_ptr<AppendPort> make_engine_port(Engine& engine, std::chrono::milliseconds ack_timeout) {
  return std::make_unique<EnginePort>(engine, ack_timeout);
}
std::unique_ptr<AppendPort> make_writer_port(LogWriter& writer) { return std::make_unique<WriterPort>(writer); }

RepositoryCore::RepositoryCore(AppendPort& port, std::unique_ptr<AppendPort> owned, std::string type_name,
                               uint64_t fingerprint, const RepositoryOptions& options)
    : port_(&port), owned_(std::move(owned)), type_name_(std::move(type_name)), fingerprint_(fingerprint), o_(options) {}

RepositoryCore::~RepositoryCore() {
  if (stats_publishers_) stats_publishers_->remove(stats_publisher_);
}

Status RepositoryCore::attach_stats(Engine& engine) {
  auto slot = engine.stats_slot(counters::SlotKind::repository, type_name_);
  if (!slot.ok()) return slot.status();
  counters::Slot* s = slot.value();
  if (s == nullptr) return Status::OK();  // stats file off
  stats_publishers_ = engine.stats_publishers();
  stats_publisher_ = stats_publishers_->add([this, s] {
    const RepositoryStats st = stats();
    counters::RepositoryCounters& c = s->repository;
    counters::put(c.commands, st.commands);
    counters::put(c.accepted, st.accepted);
    counters::put(c.rejected, st.rejected);
    counters::put(c.duplicates, st.duplicates);
    counters::put(c.conflicts, st.conflicts);
    counters::put(c.conflict_failures, st.conflict_failures);
    counters::put(c.snapshots_written, st.snapshots_written);
    counters::put(c.snapshots_loaded, st.snapshots_loaded);
    counters::put(c.snapshots_ignored, st.snapshots_ignored);
    counters::put(c.keys_out_of_window, st.keys_out_of_window);
    counters::put(c.key_collisions, st.key_collisions);
  });
  return Status::OK();
}

Result<std::unique_ptr<RepositoryCore>> RepositoryCore::open(AppendPort& port, std::unique_ptr<AppendPort> owned,
                                                             std::string type_name, uint64_t fingerprint,
                                                             const RepositoryOptions& options) {
  std::unique_ptr<RepositoryCore> c(
      new RepositoryCore(port, std::move(owned), std::move(type_name), fingerprint, options));
  auto reader = LogReader::open(port.dir());
  if (!reader.ok()) return Status(reader.status().code(), "repository of " + c->type_name_ + ": " + reader.status().message());
  c->reader_ = std::move(reader.value());
  c->snapshot_dir_ = (options.snapshot_dir.empty() ? port.dir() + "/snapshots" : options.snapshot_dir) + "/" +
                     sanitize(c->type_name_);
  if (Status st = create_directory_durably(c->file_ops(), c->snapshot_dir_); !st.ok())
    return Status(st.code(), "snapshot directory: " + st.message());
  if (options.idempotency.enabled) {
    if (options.idempotency.shared) {
      c->keys_ = options.idempotency.shared;
    } else {
      // One index per log in a process: repositories on one log (several aggregate types,
      // several front ends) see each other's keys. The first opener's options size it.
      static std::mutex mu;
      static std::map<std::string, std::weak_ptr<IdempotencyIndex>> by_log;
      std::error_code canon_ec;
      const std::string key = std::filesystem::weakly_canonical(port.dir(), canon_ec).string();
      std::lock_guard lock(mu);
      for (auto it = by_log.begin(); it != by_log.end();) it = it->second.expired() ? by_log.erase(it) : std::next(it);
      c->keys_ = by_log[key].lock();
      if (!c->keys_) {
        c->keys_ = std::make_shared<IdempotencyIndex>(options.idempotency.max_keys, options.idempotency.window);
        auto n = c->keys_->rebuild(*c->reader_, c->now_ms());
        if (!n.ok()) return n.status();
        by_log[key] = c->keys_;
      }
    }
  }
  return c;
}

Result<StreamId> RepositoryCore::stream(std::string_view name) {
  {
    std::lock_guard lock(names_mu_);
    for (const auto& [n, id] : names_)
      if (n == name) return id;
  }
  auto id = port_->stream(name);
  if (!id.ok()) return id;
  std::lock_guard lock(names_mu_);
  if (names_.size() < 4096) names_.emplace_back(std::string(name), id.value());
  return id;
}

int64_t RepositoryCore::now_ms() const noexcept {
  if (o_.clock_ns != nullptr) return o_.clock_ns() / 1'000'000;
  // The coarse clock (a few ms of resolution, no syscall): the window is minutes to days.
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::string RepositoryCore::snapshot_path(StreamId stream) const {
  return snapshot_dir_ + "/" + std::to_string(stream) + ".snap";
}

Status RepositoryCore::write_snapshot(StreamId stream, uint64_t version, uint64_t position, const std::string& state) {
  SnapshotHeader h{};
  h.magic = kSnapshotMagic;
  h.format = kSnapshotFormat;
  h.fingerprint = fingerprint_;
  h.stream = stream;
  h.version = version;
  h.position = position;
  h.state_bytes = static_cast<uint32_t>(state.size());
  h.crc = snapshot_crc(h, state.data(), state.size());
  // write_file_atomically: a temporary file written and fsynced, renamed over the old
  // snapshot, the directory fsynced. A crash or power cut leaves the old snapshot or the new
  // one, whole (a reader never sees a mix); once this returns the new one is durable. Its
  // events were acknowledged before (maybe_snapshot), so a durable snapshot never holds
  // events the log could lose. Several processes may write one stream's snapshot: unique
  // temporary names, the last rename wins.
  std::string buf(reinterpret_cast<const char*>(&h), sizeof h);
  buf += state;
  AtomicFileOptions o;
  o.mode = o_.snapshot_file_mode;
  o.unique_temp = true;
  return write_file_atomically(file_ops(), snapshot_path(stream), buf, o);
}

Status RepositoryCore::read_snapshot(StreamId stream, uint64_t* version, uint64_t* position, std::string* state) const {
  const std::string path = snapshot_path(stream);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status(StatusCode::not_found, path);
    return Status(StatusCode::io_error, path + ": " + std::strerror(errno));
  }
  // One read() into a buffer that is reused by the thread: a complete small snapshot comes
  // back whole (its header says how long it is), so open + read + close is the usual cost.
  static thread_local std::string buf;
  if (buf.size() < 64 * 1024) buf.resize(64 * 1024);
  size_t got = 0;
  for (;;) {
    if (got == buf.size()) buf.resize(buf.size() * 2);
    const ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status(StatusCode::io_error, path + ": read: " + std::strerror(err));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
    if (got >= sizeof(SnapshotHeader)) {
      SnapshotHeader peek{};
      std::memcpy(&peek, buf.data(), sizeof peek);
      if (got == sizeof peek + peek.state_bytes) break;  // all of it (a longer file reads on)
    }
  }
  ::close(fd);
  SnapshotHeader h{};
  if (got < sizeof h) return Status(StatusCode::corruption, path + ": shorter than its header");
  std::memcpy(&h, buf.data(), sizeof h);
  if (h.magic != kSnapshotMagic) return Status(StatusCode::corruption, path + ": not a snapshot (bad magic)");
  if (h.format != kSnapshotFormat)
    return Status(StatusCode::corruption, path + ": snapshot format " + std::to_string(h.format) + ", this build reads " +
                                              std::to_string(kSnapshotFormat));
  if (h.fingerprint != fingerprint_)
    return Status(StatusCode::corruption, path + ": fingerprint " + std::to_string(h.fingerprint) + " is not " +
                                              type_name_ + "'s " + std::to_string(fingerprint_));
  if (h.stream != stream) return Status(StatusCode::corruption, path + ": holds stream " + std::to_string(h.stream));
  if (got != sizeof h + h.state_bytes)
    return Status(StatusCode::corruption, path + ": " + std::to_string(got) + " bytes, header says " +
                                              std::to_string(sizeof h + h.state_bytes));
  if (snapshot_crc(h, buf.data() + sizeof h, h.state_bytes) != h.crc)
    return Status(StatusCode::corruption, path + ": CRC mismatch");
  *version = h.version;
  *position = h.position;
  state->assign(buf.data() + sizeof h, h.state_bytes);
  return Status();
}

void RepositoryCore::snapshot_ignored(std::string why) {
  counters.snapshots_ignored.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(warn_mu_);
  last_warning_ = std::move(why);
}

bool RepositoryCore::enter() noexcept {
  if (o_.max_in_flight == 0) return true;
  // Relaxed: an admission count; it orders nothing else.
  if (in_flight_.fetch_add(1, std::memory_order_relaxed) >= o_.max_in_flight) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void RepositoryCore::leave() noexcept {
  if (o_.max_in_flight != 0) in_flight_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: see enter()
}

RepositoryStats RepositoryCore::stats() const {
  RepositoryStats s;
  auto g = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  s.commands = g(counters.commands);
  s.accepted = g(counters.accepted);
  s.rejected = g(counters.rejected);
  s.duplicates = g(counters.duplicates);
  s.conflicts = g(counters.conflicts);
  s.conflict_failures = g(counters.conflict_failures);
  s.cache_hits = g(counters.cache_hits);
  s.cache_misses = g(counters.cache_misses);
  s.events_replayed = g(counters.events_replayed);
  s.snapshots_written = g(counters.snapshots_written);
  s.snapshots_loaded = g(counters.snapshots_loaded);
  s.snapshots_ignored = g(counters.snapshots_ignored);
  s.keys_out_of_window = g(counters.keys_out_of_window);
  s.key_collisions = g(counters.key_collisions);
  std::lock_guard lock(warn_mu_);
  s.last_warning = last_warning_;
  return s;
}

}  // namespace sluice
