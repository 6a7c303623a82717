// CountersFile: the memory-mapped stats file every layer publishes into, and that another
// process (`sluice stat`, a Prometheus scrape) reads while the engine runs. Aeron's CnC file
// is the model: a fixed header, then fixed-size slots, one per component (a projection),
// each a set of 8-byte counters and a log-linear latency histogram.
//
// Layout (version 1; little-endian; every offset fixed and checked by static_assert below;
// no compiler-dependent padding such as hardware_destructive_interference_size):
//
//   file offset
//   0       +------------------------------------------------------------------+
//           | FileHeader (4096 B)                                               |
//           |   0 magic "SLUICECT"   8 version  12 header_size  16 slot_size    |
//           |  20 slot_count        24 pid      32 start_time_ns                |
//           |  64 heartbeat_ns      (own 64-byte line: the engine's monitor)    |
//           | 128 head_position  136 head_address  144 head_timestamp_ns        |
//           |     (own 64-byte line: written by the log writer's thread)        |
//           | 192 segment_size   200 log_dir[256]                               |
//   4096    +------------------------------------------------------------------+
//           | Slot 0 (kSlotSize = 64 KiB)                                       |
//           |   0     SlotHeader (256 B): state, kind, name[64]                 |
//           |   256   ProjectionCounters (256 B): applied position, address,    |
//           |         timestamp, events, dead letters, checkpoints ...          |
//           |   512   alert/threshold words (256 B)                             |
//           |   4096  HistogramWords: count sum min max, buckets[kBuckets]      |
//   4096 + 64 KiB * i: Slot i
//           +------------------------------------------------------------------+
//
// Publication: every counter has exactly one writing thread (the header's head line: the
// writer thread; a projection slot: its worker; heartbeat and alerts: the engine's monitor).
// Writers update a counter with a relaxed atomic store (a plain `mov` on x86: the hot path
// pays a store and nothing else). Readers load each word atomically; a reader's view is a
// set of individually coherent words, not a snapshot of one instant, so derived figures
// (lag = head - applied) are estimates, documented as such. The slot's `state` word is the
// exception: it is release-stored after the slot's name is written, and readers acquire it
// before reading the name.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/bus/counters.h"
#include "sluice/status.h"

namespace sluice::counters {

inline constexpr uint64_t kMagic = 0x5443454349554C53ull;  // "SLUICECT" little-endian
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kHeaderSize = 4096;
inline constexpr uint32_t kSlotSize = 64 * 1024;
inline constexpr const char* kFileName = "sluice.stats";

// ---- file layout ----------------------------------------------------------------------------
struct FileHeader {
  uint64_t magic;           // 0
  uint32_t version;         // 8
  uint32_t header_size;     // 12
  uint32_t slot_size;       // 16
  uint32_t slot_count;      // 20
  int64_t pid;              // 24
  int64_t start_time_ns;    // 32
  uint8_t pad0[24];         // 40
  uint64_t heartbeat_ns;    // 64: CLOCK_REALTIME of the monitor's last beat
  uint8_t pad1[56];         // 72
  uint64_t head_position;   // 128: one past the last committed event
  uint64_t head_address;    // 136: log address after the last committed record
  int64_t head_timestamp_ns;  // 144: append timestamp of the last committed event
  uint8_t pad2[40];         // 152
  uint64_t segment_size;    // 192: bytes per segment (log address = index * size + offset)
  char log_dir[256];        // 200: NUL-terminated
  uint8_t reserved[kHeaderSize - 456];
};
static_assert(sizeof(FileHeader) == kHeaderSize);
static_assert(offsetof(FileHeader, heartbeat_ns) == 64);
static_assert(offsetof(FileHeader, head_position) == 128);
static_assert(offsetof(FileHeader, head_address) == 136);
static_assert(offsetof(FileHeader, head_timestamp_ns) == 144);
static_assert(offsetof(FileHeader, segment_size) == 192);
static_assert(offsetof(FileHeader, log_dir) == 200);

enum class SlotState : uint32_t {
  free = 0,
  running = 1,
  stopped = 2,      // closed cleanly
  failed = 3,       // stopped by a handler failure (policy stop) or an I/O error
  rebuilding = 4,   // running, with a shadow rebuild in progress
  catching_up = 5,  // running, reading from the log far behind the head
};
std::string_view to_string(SlotState s) noexcept;

enum class SlotKind : uint32_t {
  none = 0,
  projection = 1,  // ProjectionCounters, AlertWords, the append→applied histogram
  consumer = 2,    // ConsumerCounters: one worker's ring consumer (the monitor copies them)
  ingress = 3,     // IngressCounters: the engine's submission queue (the monitor copies them)
  relay = 4,       // RelayCounters: a connector relay (log -> JetStream / Kafka), the
                   // append -> acknowledged histogram (connectors/)
  repository = 5,  // RepositoryCounters: an aggregate repository (the monitor copies them)
  saga = 6,        // SagaCounters: a saga agent (runtime/saga.h; the monitor copies them)
};

struct SlotHeader {
  uint32_t state;     // 0: SlotState; release-stored after name (see file comment)
  uint32_t kind;      // 4: SlotKind
  char name[64];      // 8: NUL-terminated
  uint8_t reserved[256 - 72];
};
static_assert(sizeof(SlotHeader) == 256);
static_assert(offsetof(SlotHeader, name) == 8);

// Written by the projection's worker thread (the rebuild words by the rebuild thread).
struct ProjectionCounters {
  uint64_t applied_position;      // 0: every position below it is applied
  uint64_t applied_address;       // 8: log address after the last applied record
  int64_t applied_timestamp_ns;   // 16: append timestamp of the last applied event
  uint64_t events_applied;        // 24: handled by this projection (no handler: skipped)
  uint64_t batches;               // 32: end_of_batch commits
  uint64_t skipped;               // 40: events with no handler for their type
  uint64_t dead_letters;          // 48: events parked
  uint64_t parked_keys;           // 56: keys with parked events
  uint64_t retries;               // 64: handler retries
  uint64_t handler_errors;        // 72: throws and rejections
  uint64_t checkpoint_position;   // 80: position of the last durable checkpoint
  uint64_t checkpoints_written;   // 88
  int64_t checkpoint_time_ns;     // 96
  uint64_t rebuild_position;      // 104: shadow rebuild: applied so far
  uint64_t rebuild_target;        // 112: shadow rebuild: position it is catching up to
  int64_t rebuild_started_ns;     // 120
  uint64_t rebuilds_completed;    // 128
  uint8_t reserved[256 - 136];
};
static_assert(sizeof(ProjectionCounters) == 256);
static_assert(offsetof(ProjectionCounters, applied_position) == 0);
static_assert(offsetof(ProjectionCounters, checkpoint_position) == 80);
static_assert(offsetof(ProjectionCounters, rebuilds_completed) == 128);

// Written by the engine's monitor thread.
struct AlertWords {
  uint64_t max_events_behind;     // 0: threshold (0 = none)
  uint64_t max_time_behind_ns;    // 8: threshold (0 = none)
  uint64_t alert_active;          // 16: 1 while a threshold is exceeded
  uint64_t alerts_raised;         // 24
  uint8_t reserved[256 - 32];
};
static_assert(sizeof(AlertWords) == 256);

// Kind consumer: one engine worker's RecordConsumer (the ring cursor its projections share).
// Written by the engine's monitor thread from the consumer's own atomics every interval.
struct ConsumerCounters {
  uint64_t events;       // 0: records handed to the worker's projections
  uint64_t overruns;     // 8: times the ring lapped it (it then read from the log)
  uint64_t caught_up;    // 16: records read from the log instead of the ring
  uint64_t rejoins;      // 24: times it went back to the ring
  uint64_t position;     // 32: its sequence + 1 (records below it handed over)
  int64_t cpu;           // 40: the CPU it is pinned to, -1 none (or the pin failed)
  uint8_t reserved[256 - 48];
};
static_assert(sizeof(ConsumerCounters) == 256);

// Kind ingress: the engine's submission queue. Written by the monitor thread.
struct IngressCounters {
  uint64_t requests;        // 0: submissions the writer thread handled
  uint64_t back_pressured;  // 8: submissions refused as back-pressure
  uint64_t queued;          // 16: waiting in the queue (an estimate)
  uint8_t reserved[256 - 24];
};
static_assert(sizeof(IngressCounters) == 256);

// Kind relay: a connector relay (connectors/). Written by the relay's thread; the histogram
// (append -> acknowledged by the broker) by whichever thread holds the relay's window lock
// (one at a time: the lock orders the writes).
struct RelayCounters {
  uint64_t acknowledged_position;  // 0: every event below it is acknowledged by the broker
  uint64_t published_position;     // 8: next event to publish
  uint64_t head_position;          // 16: end of the log as the relay last read it
  uint64_t in_flight;              // 24: published, not yet acknowledged
  uint64_t lag_events;             // 32: head - acknowledged
  uint64_t lag_bytes;              // 40: log bytes between them (estimate)
  int64_t lag_ns;                  // 48: age of the oldest unacknowledged event
  uint64_t published;              // 56: messages sent (resends included)
  uint64_t acknowledged;           // 64: acknowledgements (duplicates included)
  uint64_t duplicates;             // 72: acknowledgements flagged duplicate
  uint64_t failures;               // 80: refused or timed-out publishes
  uint64_t reconnects;             // 88
  uint64_t checkpoint_position;    // 96: position of the last checkpoint written
  uint64_t connected;              // 104: 1 while connected
  uint8_t reserved[256 - 112];
};
static_assert(sizeof(RelayCounters) == 256);
static_assert(offsetof(RelayCounters, lag_events) == 32);
static_assert(offsetof(RelayCounters, connected) == 104);

// Kind repository: one aggregate type's command bus (runtime/repository.h). Written by the
// engine's monitor from the repository's own atomics every interval.
struct RepositoryCounters {
  uint64_t commands;            // 0
  uint64_t accepted;            // 8
  uint64_t rejected;            // 16: by the handler (nothing written)
  uint64_t duplicates;          // 24: answered from the idempotency index
  uint64_t conflicts;           // 32: appends that met a conflict (retried or failed)
  uint64_t conflict_failures;   // 40: commands that gave up after the retry policy
  uint64_t snapshots_written;   // 48
  uint64_t snapshots_loaded;    // 56
  uint64_t snapshots_ignored;   // 64: corrupt, old format, other fingerprint or log: warned, replayed
  uint64_t keys_out_of_window;  // 72
  uint64_t key_collisions;      // 80
  uint8_t reserved[256 - 88];
};
static_assert(sizeof(RepositoryCounters) == 256);

// Kind saga: one saga agent (runtime/saga.h). Written by the engine's monitor from the
// agent's own atomics every interval.
struct SagaCounters {
  uint64_t running;              // 0: sagas started and not finished
  uint64_t completed;            // 8: finished: every step succeeded
  uint64_t compensated;          // 16: finished: every needed compensation succeeded
  uint64_t compensation_failed;  // 24: finished: a compensation failed past its retries
  uint64_t parked;               // 32: could not be resumed (error in `sluice sagas`)
  int64_t oldest_running_started_ns;  // 40: start of the oldest running saga (0: none)
  uint64_t steps_succeeded;      // 48: this process
  uint64_t attempts_failed;      // 56: this process (timeouts included)
  uint64_t timers_fired;         // 64: this process
  uint8_t reserved[256 - 72];
};
static_assert(sizeof(SagaCounters) == 256);
static_assert(offsetof(SagaCounters, oldest_running_started_ns) == 40);

struct Slot {
  SlotHeader header;             // 0
  union {                        // 256: by header.kind
    ProjectionCounters counters;
    ConsumerCounters consumer;
    IngressCounters ingress;
    RelayCounters relay;
    RepositoryCounters repository;
    SagaCounters saga;
  };
  AlertWords alerts;             // 512
  uint8_t pad[4096 - 768];       // 768
  HistogramWords histogram;      // 4096
  uint8_t reserved[kSlotSize - 4096 - sizeof(HistogramWords)];
};
static_assert(sizeof(Slot) == kSlotSize);
static_assert(offsetof(Slot, counters) == 256);
static_assert(offsetof(Slot, alerts) == 512);
static_assert(offsetof(Slot, histogram) == 4096);

// ---- the file -------------------------------------------------------------------------------
// Design
//   create() makes (or replaces) the file, sizes it, maps it shared, writes the header with
//   the magic last. Slots are handed out by allocate() during engine setup (cold). The
//   process keeps the mapping for its whole life; readers map the file read-only.
// Thread safety
//   allocate()/release() are cold and called by one thread (engine setup/shutdown). Each
//   counter word has one writing thread (see the file comment); any thread or process reads.
// Invariants
//   - A slot is `free` or has a NUL-terminated name and a kind.
class CountersFile {
 public:
  struct Meta {
    std::string log_dir;
    uint64_t segment_size = 0;
    uint32_t slot_count = 16;
    mode_t file_mode = 0640;  // owner read/write, group read (the umask applies too)
  };
  // Creates `path` afresh (an old file of a previous run is replaced).
  static Result<std::unique_ptr<CountersFile>> create(const std::string& path, const Meta& meta);
  // Maps an existing file read-only, checking magic, version and sizes.
  static Result<std::unique_ptr<CountersFile>> open_read(const std::string& path);
  ~CountersFile();
  CountersFile(const CountersFile&) = delete;
  CountersFile& operator=(const CountersFile&) = delete;

  FileHeader& header() noexcept { return *reinterpret_cast<FileHeader*>(base_); }
  const FileHeader& header() const noexcept { return *reinterpret_cast<const FileHeader*>(base_); }
  uint32_t slot_count() const noexcept { return slot_count_; }
  Slot& slot(uint32_t i) noexcept { return *reinterpret_cast<Slot*>(base_ + kHeaderSize + size_t{i} * kSlotSize); }
  const Slot& slot(uint32_t i) const noexcept {
    return *reinterpret_cast<const Slot*>(base_ + kHeaderSize + size_t{i} * kSlotSize);
  }
  // Takes a free slot for `name` (cold). Error: no free slot (names the file).
  Result<Slot*> allocate(SlotKind kind, std::string_view name);
  // Marks a slot's final state (stopped or failed); it stays readable until the file goes.
  static void set_state(Slot& s, SlotState state) noexcept;
  static SlotState state(const Slot& s) noexcept;
  const std::string& path() const noexcept { return path_; }

 private:
  CountersFile(std::string path, std::byte* base, size_t size, uint32_t slots, bool writable)
      : path_(std::move(path)), base_(base), size_(size), slot_count_(slots), writable_(writable) {}
  std::string path_;
  std::byte* base_;
  size_t size_;
  uint32_t slot_count_;
  bool writable_;
};

// ---- what a reader derives ------------------------------------------------------------------
// Coarse cumulative latency buckets for a Prometheus histogram: below[i] counts the values
// under coarse_bound_ns(i) = 2^(10+2i) ns (powers of 4 from ~1 us to ~17 s). Exact: each bound
// is a bucket boundary of the fine log-linear histogram. count is the sum of the fine buckets
// copied (the +Inf bucket, consistent with below[]); sum_ns the histogram's running sum.
inline constexpr uint32_t kCoarseBuckets = 13;
constexpr uint64_t coarse_bound_ns(uint32_t i) noexcept { return uint64_t{1} << (10 + 2 * i); }
struct CoarseHistogram {
  std::array<uint64_t, kCoarseBuckets> below{};
  uint64_t count = 0;
  uint64_t sum_ns = 0;
};
CoarseHistogram coarsen(const HistogramWords& h);

struct ProjectionStat {
  std::string name;
  SlotState state = SlotState::free;
  uint64_t applied_position = 0;
  uint64_t head_position = 0;
  uint64_t events_behind = 0;
  uint64_t bytes_behind = 0;
  int64_t time_behind_ns = 0;
  uint64_t events_applied = 0;
  uint64_t dead_letters = 0;
  uint64_t parked_keys = 0;
  uint64_t retries = 0;
  uint64_t handler_errors = 0;
  uint64_t checkpoint_position = 0;
  uint64_t rebuild_position = 0, rebuild_target = 0;
  bool alert_active = false;
  uint64_t alerts_raised = 0;
  HistogramSummary latency;
  CoarseHistogram latency_buckets;
};
struct ConsumerStat {
  std::string name;
  uint64_t events = 0, overruns = 0, caught_up = 0, rejoins = 0, position = 0;
  int64_t cpu = -1;
};
struct IngressStat {
  bool present = false;  // the engine runs in ingress mode
  uint64_t requests = 0, back_pressured = 0, queued = 0;
};
struct RelayStat {
  std::string name;
  SlotState state = SlotState::free;
  bool connected = false;
  uint64_t acknowledged_position = 0, published_position = 0, head_position = 0, in_flight = 0;
  uint64_t lag_events = 0, lag_bytes = 0;
  int64_t lag_ns = 0;
  uint64_t published = 0, acknowledged = 0, duplicates = 0, failures = 0, reconnects = 0;
  uint64_t checkpoint_position = 0;
  HistogramSummary latency;  // append -> acknowledged
  CoarseHistogram latency_buckets;
};
struct RepositoryStat {
  std::string name;  // the aggregate type
  uint64_t commands = 0, accepted = 0, rejected = 0, duplicates = 0, conflicts = 0, conflict_failures = 0;
  uint64_t snapshots_written = 0, snapshots_loaded = 0, snapshots_ignored = 0;
  uint64_t keys_out_of_window = 0, key_collisions = 0;
};
struct SagaStat {
  std::string name;  // the agent's name (its saga types)
  uint64_t running = 0, completed = 0, compensated = 0, compensation_failed = 0, parked = 0;
  int64_t oldest_running_started_ns = 0;
  uint64_t steps_succeeded = 0, attempts_failed = 0, timers_fired = 0;
};
struct EngineStat {
  int64_t pid = 0;
  std::string log_dir;
  int64_t heartbeat_ns = 0;
  uint64_t head_position = 0;
  std::vector<ProjectionStat> projections;
  std::vector<ConsumerStat> consumers;
  IngressStat ingress;
  std::vector<RelayStat> relays;
  std::vector<RepositoryStat> repositories;
  std::vector<SagaStat> sagas;

  // Seconds since the monitor's last beat as seen at `now_ns` (CLOCK_REALTIME); -1 before
  // the first. A beat stamped after the reader took `now_ns` (the monitor ran between the
  // two) is current: age 0. A beat further ahead than kHeartbeatSkewNs (the realtime clock
  // stepped back since it was written) is not trusted: its negative age reads as down.
  static constexpr int64_t kHeartbeatSkewNs = 1'000'000'000;
  double heartbeat_age_s(int64_t now_ns) const {
    if (heartbeat_ns <= 0) return -1;
    if (now_ns >= heartbeat_ns) return static_cast<double>(now_ns - heartbeat_ns) * 1e-9;
    return heartbeat_ns - now_ns <= kHeartbeatSkewNs ? 0.0 : static_cast<double>(now_ns - heartbeat_ns) * 1e-9;
  }
  // The engine counts as up while its heartbeat is under 3 s old.
  bool up(int64_t now_ns) const {
    const double age = heartbeat_age_s(now_ns);
    return age >= 0 && age < 3.0;
  }
};
// One reading of every used slot (an estimate: see the file comment).
EngineStat read_stats(const CountersFile& f);

// A relay run in its own process (`sluice relay`) keeps its slot in its own file,
// <log dir>/relay.<name>.stats, beside the engine's sluice.stats.
std::string relay_stats_path(const std::string& log_dir, std::string_view relay_name);
// Adds the relay slots of every <log dir>/relay.*.stats file to `e` (unreadable files are
// skipped: a relay may be replacing its file).
void add_relay_files(const std::string& log_dir, EngineStat* e);

}  // namespace sluice::counters
