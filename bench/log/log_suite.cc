// sluice bench log: the write log against its physical limits and a real database.
//
//   producer ──append──► LogWriter ──► mmap'd segments (64 MiB, rolls included)
//
//   baselines, same run:  memcpy of the same record bytes into fresh segments prepared the
//                         way the log prepares them (MappedSegment::create: fallocate, zeros,
//                         MADV_POPULATE_WRITE, the page-touch pass), and into one warm mapping
//                         (the same 64 MiB again and again: no first touch at all)
//                         SQLite WAL `events` table, synchronous=OFF, one transaction
//                         SQLite WAL, synchronous=FULL, one transaction per event, and
//                         as many events per transaction as one group flush covered
//                         4 KiB pwrite + fdatasync (the latency floor of a durable append)
//
// Figures (--json): ratio_append_none_vs_memcpy_prepared_64, ratio_prepared_vs_warm_memcpy_64,
// ratio_append_none_vs_memcpy_64 (warm), ratio_append_none_vs_sqlite_off,
// ratio_group_vs_sqlite_full, ratio_group_vs_sqlite_full_batched, the first-touch figures
// (pages the appender stored into first, its minor faults, ns per first touch), the
// preparation options (memcpy_prepared_{none,read,write}_rate_64), ratio_sync_p50_vs_fdatasync_p50, plus the rates behind them,
// 256-byte variants, and the open/recovery time and scan rate of a 10M-event log.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/figures.h"
#include "common/histogram.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"
#include "suites.h"

#include "internal/record_codec.h"
#include "internal/segment.h"

namespace sluice::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kSegmentSize = 64ull << 20;

struct Rate {
  double events_per_s = 0;
  uint64_t rolls = 0;
  uint64_t roll_waits = 0;
  uint64_t roll_wait_ns = 0;  // the time those rolls waited for a prepared segment
  double cpu_share = 0;     // the appending thread's CPU time / wall time
  long preemptions = 0;     // involuntary context switches of the appending thread
  long minor_faults = 0;    // page faults the appending thread took (first touches it paid)
  uint64_t flushes = 0;     // group: flushes that covered the run
};

double thread_cpu_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
long thread_preemptions() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nivcsw;
}
long thread_minor_faults() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt + ru.ru_majflt;
}

std::string fresh(const ScratchDir& scratch, const std::string& name) {
  std::string p = scratch.path() + "/" + name;
  std::string cmd = "rm -rf '" + p + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "cannot clear %s\n", p.c_str());
  return p;
}

// Appends `count` events of `payload` bytes to one stream as fast as one thread can, and
// waits until the last one is acknowledged under `d`. With `series`, every 256 appends it
// also reads the clock and the segment index: a row per 2 ms window (events/s in it) and a
// mark at each segment roll (with how long that roll waited for a prepared segment) — the
// log's append rate across segment rolls. A window that holds a roll's wait reads low: the
// appender was blocked in that one append, not appending slowly (the mark says how long).
// `prepared`: segments the log keeps prepared ahead (LogOptions::prepared_segments; 0: the
// default), all made before the clock starts.
Rate append_rate(const std::string& dir, Durability d, uint64_t count, uint32_t payload,
                 Series* series = nullptr, uint32_t prepared = 0) {
  LogOptions o;
  o.segment_size = kSegmentSize;
  o.durability = d;
  if (prepared != 0) o.prepared_segments = prepared;
  auto w = LogWriter::open(dir, o);
  if (!w.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), w.status().to_string().c_str());
    std::exit(1);
  }
  auto s = (*w)->stream("bench");
  std::vector<std::byte> bytes(payload, std::byte{0x5a});
  EventData e;
  e.type = 1;
  e.payload = bytes;
  // Let the maintenance thread prepare the next segments before the clock starts. If it
  // cannot (a busy machine, a full disk), the run goes on: its rolls wait, and the figure's
  // note says how many did.
  if (!(*w)->wait_prepared(std::chrono::seconds(60)))
    std::fprintf(stderr, "log: %s: the next %u segments were not all prepared before the clock (60 s)\n",
                 dir.c_str(), o.prepared_segments);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // and let its last writes settle
  const long preempted0 = thread_preemptions();
  const long faults0 = thread_minor_faults();
  const double cpu0 = thread_cpu_s();
  const auto t0 = Clock::now();
  auto window_start = t0;
  uint64_t window_first = 0, segment = (*w)->segment_index(), waited_ns = 0;
  for (uint64_t i = 0; i < count; ++i) {
    AppendResult r = (*w)->append(*s, ExpectedVersion::any(), e);
    if (!r.ok()) {
      std::fprintf(stderr, "append: %s\n", (*w)->last_error().to_string().c_str());
      std::exit(1);
    }
    if (series != nullptr && (i % 256 == 255 || i + 1 == count)) {
      const auto now = Clock::now();
      if ((*w)->segment_index() != segment) {
        segment = (*w)->segment_index();
        const uint64_t total_wait = (*w)->stats().roll_wait_ns;
        char waited[48];
        std::snprintf(waited, sizeof waited, ", waited %.1f ms", static_cast<double>(total_wait - waited_ns) / 1e6);
        waited_ns = total_wait;
        series->note("mark: " + std::to_string(std::chrono::duration<double>(now - t0).count()) + " roll to segment " +
                     std::to_string(segment) + waited);
      }
      const double win = std::chrono::duration<double>(now - window_start).count();
      if (win >= 0.002 || i + 1 == count) {
        // Two rows per window, at its start and its end: a stall reads as a long flat stretch.
        const double start = std::chrono::duration<double>(window_start - t0).count();
        const double rate = static_cast<double>(i + 1 - window_first) / win / 1e6;
        series->row({start, rate});
        series->row({start + win, rate});
        window_start = now;
        window_first = i + 1;
      }
    }
  }
  if (d == Durability::group) {
    Status st = (*w)->wait_acknowledged(count - 1, std::chrono::seconds(60));
    if (!st.ok()) bench_fail("log: group acknowledgement of %s: %s", dir.c_str(), st.to_string().c_str());
  }
  const double secs = seconds_since(t0);
  const long faults = thread_minor_faults() - faults0;
  if ((*w)->stats().events != count)
    bench_fail("log: %s holds %llu events after %llu appends", dir.c_str(),
               static_cast<unsigned long long>((*w)->stats().events), static_cast<unsigned long long>(count));
  Rate r;
  r.minor_faults = faults;
  r.flushes = (*w)->stats().flushes;
  r.cpu_share = (thread_cpu_s() - cpu0) / secs;
  r.preemptions = thread_preemptions() - preempted0;
  r.events_per_s = static_cast<double>(count) / secs;
  r.rolls = (*w)->stats().segment_rolls;
  r.roll_waits = (*w)->stats().roll_waits;
  r.roll_wait_ns = (*w)->stats().roll_wait_ns;
  (*w)->close().ignore();
  return r;
}

// Segments to keep prepared so that a run of `count` events of `payload` bytes never waits
// for one (at most LogWriter::kMaxPreparedSegments; a longer run's waits show in its figure).
uint32_t prepared_for(uint64_t count, uint32_t payload);

// The record bytes every memcpy baseline copies: what the log writes for one event.
std::vector<std::byte> sample_record(uint32_t payload) {
  std::vector<std::byte> bytes(payload, std::byte{0x5a});
  EventData e;
  e.type = 1;
  e.payload = bytes;
  const uint32_t len = static_cast<uint32_t>(log_internal::record_length(e));
  std::vector<std::byte> rec(log_format::align_up(len));
  log_internal::RecordFields f;
  f.stream_id = 1;
  f.stream_version = 1;
  log_internal::encode_record(rec.data(), 0, f, e);
  return rec;
}

uint32_t prepared_for(uint64_t count, uint32_t payload) {
  const uint64_t per_segment = (kSegmentSize - log_format::kSegmentHeaderSize - log_format::kSealReserve) /
                               sample_record(payload).size();
  const uint64_t rolls = count / per_segment;  // the first segment is there at open
  return static_cast<uint32_t>(std::clamp<uint64_t>(rolls, 1, LogWriter::kMaxPreparedSegments));
}

// Checks that the last record copied is intact: a copy loop the compiler dropped, or one
// that wrote elsewhere, must not yield a figure.
void verify_copy(const std::byte* at, const std::vector<std::byte>& rec, const char* what) {
  if (std::memcmp(at, rec.data(), rec.size()) != 0) bench_fail("log: %s: the last record copied is not intact", what);
}

// memcpy of the same record bytes into a mapping whose pages are already faulted in,
// wrapping around at the segment size: no first touch at all (the warm baseline).
double memcpy_rate(const std::string& dir, uint64_t count, uint32_t payload) {
  const std::vector<std::byte> rec = sample_record(payload);
  const uint64_t padded = rec.size();
  std::string path = dir + "/memcpy.bin";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ::posix_fallocate(fd, 0, kSegmentSize) != 0) bench_fail("log: cannot create %s", path.c_str());
  auto* base = static_cast<std::byte*>(::mmap(nullptr, kSegmentSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  if (base == MAP_FAILED) bench_fail("log: cannot map %s", path.c_str());
  std::memset(base, 0, kSegmentSize);  // fault everything in
  uint64_t off = 0, last = 0;
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < count; ++i) {
    if (off + padded > kSegmentSize) off = 0;
    std::memcpy(base + off, rec.data(), padded);
    last = off;
    off += padded;
    asm volatile("" ::: "memory");  // keep every copy
  }
  const double secs = seconds_since(t0);
  verify_copy(base + last, rec, "memcpy into the warm mapping");
  ::munmap(base, kSegmentSize);
  ::close(fd);
  ::unlink(path.c_str());
  return static_cast<double>(count) / secs;
}

// memcpy of the same record bytes into fresh segments, each prepared by
// MappedSegment::create exactly as the log's maintenance thread prepares its next segment
// (all of them before the clock starts, as the log prepares ahead), with `touch` as the
// last step. The appender's first store to each page is in the measured loop, as in the log.
double memcpy_prepared_rate(const std::string& dir, uint64_t count, uint32_t payload,
                            log_internal::PageTouch touch) {
  const std::vector<std::byte> rec = sample_record(payload);
  const uint64_t padded = rec.size();
  const uint64_t usable = kSegmentSize - log_format::kSegmentHeaderSize;
  const uint64_t per_segment = usable / padded;
  const uint64_t n_segments = (count + per_segment - 1) / per_segment;
  const std::string sub = dir + "/memcpy-prepared";
  std::string cmd = "rm -rf '" + sub + "' && mkdir -p '" + sub + "'";
  if (std::system(cmd.c_str()) != 0) bench_fail("log: cannot make %s", sub.c_str());
  std::vector<log_internal::MappedSegment> segs;
  log_internal::SlicePacer pacer;
  for (uint64_t k = 0; k < n_segments; ++k) {
    auto s = log_internal::MappedSegment::create(FileOps::system(), sub, k, kSegmentSize, true, false, &pacer,
                                                 0640, touch);
    if (!s.ok()) bench_fail("log: prepare a segment: %s", s.status().to_string().c_str());
    segs.push_back(std::move(s.value()));
  }
  uint64_t left = count;
  std::byte* last = nullptr;
  const auto t0 = Clock::now();
  for (auto& seg : segs) {
    std::byte* p = seg.data() + log_format::kSegmentHeaderSize;
    const uint64_t n = std::min(left, per_segment);
    for (uint64_t i = 0; i < n; ++i) {
      std::memcpy(p, rec.data(), padded);
      last = p;
      p += padded;
      asm volatile("" ::: "memory");  // keep every copy
    }
    left -= n;
  }
  const double secs = seconds_since(t0);
  verify_copy(last, rec, "memcpy into prepared segments");
  for (auto& seg : segs) seg.release_sliced(&pacer);
  segs.clear();
  cmd = "rm -rf '" + sub + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "cannot clear %s\n", sub.c_str());
  return static_cast<double>(count) / secs;
}

void sql(sqlite3* db, const char* q) {
  char* err = nullptr;
  if (sqlite3_exec(db, q, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite: %s: %s\n", q, err ? err : "?");
    std::exit(1);
  }
}

// SQLite WAL `events` table; `per_txn` events per transaction (0: one for all).
double sqlite_rate(const std::string& dir, bool full_sync, uint64_t per_txn, uint64_t count,
                   uint32_t payload) {
  std::string path = dir + "/events.db";
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) std::exit(1);
  sql(db, "PRAGMA journal_mode=WAL");
  sql(db, full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF");
  sql(db, "CREATE TABLE events(id INTEGER PRIMARY KEY, stream TEXT, version INTEGER, type INTEGER,"
          " data BLOB, ts INTEGER)");
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT INTO events(stream, version, type, data, ts) VALUES(?,?,?,?,?)",
                         -1, &st, nullptr) != SQLITE_OK)
    bench_fail("sqlite prepare: %s", sqlite3_errmsg(db));
  std::vector<std::byte> bytes(payload, std::byte{0x5a});
  const auto t0 = Clock::now();
  const uint64_t k = per_txn == 0 ? count : per_txn;
  for (uint64_t i = 0; i < count; ++i) {
    if (i % k == 0) sql(db, "BEGIN");
    sqlite3_bind_text(st, 1, "bench", 5, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(i + 1));
    sqlite3_bind_int(st, 3, 1);
    sqlite3_bind_blob(st, 4, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, static_cast<sqlite3_int64>(i));
    if (sqlite3_step(st) != SQLITE_DONE) {
      std::fprintf(stderr, "sqlite insert: %s\n", sqlite3_errmsg(db));
      std::exit(1);
    }
    sqlite3_reset(st);
    if (i % k == k - 1 || i + 1 == count) sql(db, "COMMIT");
  }
  const double secs = seconds_since(t0);
  {
    sqlite3_stmt* c = nullptr;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &c, nullptr);
    const bool ok = c != nullptr && sqlite3_step(c) == SQLITE_ROW &&
                    static_cast<uint64_t>(sqlite3_column_int64(c, 0)) == count;
    sqlite3_finalize(c);
    if (!ok) bench_fail("sqlite: the table does not hold the %llu events inserted", static_cast<unsigned long long>(count));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
  return static_cast<double>(count) / secs;
}

// p50/p99 latency (ns) of one durable append under sync.
std::vector<double> sync_latencies(const std::string& dir, uint64_t count, uint32_t payload) {
  LogOptions o;
  o.segment_size = kSegmentSize;
  o.durability = Durability::sync;
  auto w = LogWriter::open(dir, o);
  if (!w.ok()) std::exit(1);
  auto s = (*w)->stream("bench");
  std::vector<std::byte> bytes(payload, std::byte{0x5a});
  EventData e;
  e.type = 1;
  e.payload = bytes;
  std::vector<double> lat;
  lat.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const auto t0 = Clock::now();
    AppendResult r = (*w)->append(*s, ExpectedVersion::any(), e);
    lat.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
    if (!r.ok()) std::exit(1);
  }
  (*w)->close().ignore();
  return lat;
}

// 4 KiB overwrite of a written block + fdatasync: what any durable append has to pay.
std::vector<double> fdatasync_latencies(const std::string& dir, uint64_t count) {
  std::string path = dir + "/fdatasync.bin";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  std::vector<char> block(4096, 'x');
  if (fd < 0 || ::pwrite(fd, block.data(), block.size(), 0) != 4096 || ::fdatasync(fd) != 0) std::exit(1);
  std::vector<double> lat;
  lat.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    block[i % 4096] = static_cast<char>(i);
    const auto t0 = Clock::now();
    if (::pwrite(fd, block.data(), block.size(), 0) != 4096 || ::fdatasync(fd) != 0) std::exit(1);
    lat.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
  }
  ::close(fd);
  ::unlink(path.c_str());
  return lat;
}

}  // namespace

int run_log_suite(const SuiteArgs& args) {
  ScratchDir scratch(args.dir, "log");
  Figures fig;
  check_workload(args, "log", kOptEvents | kOptPayload | kOptDurability);
  // --quick: a lower floor, for the fsync-bound parts (SQLite FULL, sync appends, fdatasync).
  const auto n = [&](double base) { return static_cast<uint64_t>(std::max(args.quick ? 100.0 : 1000.0, base * args.scale)); };
  pin_this_thread(args.cpus.empty() ? -1 : args.cpus[0]);
  fig.config("machine", machine_description(scratch.path()));
  fig.config("segment_size", std::to_string(kSegmentSize));
  fig.config("scale", std::to_string(args.scale));
  fig.config("cpus", args.cpus.empty() ? "unpinned" : std::to_string(args.cpus[0]));
  std::printf("sluice bench log — %s\n", machine_description(scratch.path()).c_str());

  const uint64_t n_fast = events_or(args, n(4'000'000));
  // --payload-bytes: that size instead of 64 and 256; --durability: only that part.
  const std::vector<uint32_t> payloads =
      args.workload.payload_bytes != 0 ? std::vector<uint32_t>{args.workload.payload_bytes} : std::vector<uint32_t>{64, 256};
  for (uint32_t payload : durability_wanted(args, "none") ? payloads : std::vector<uint32_t>{}) {
    progress("log", "append rates, " + std::to_string(payload) + " B payloads");
    const std::string sfx = "_" + std::to_string(payload);
    const uint64_t count = payload == 64 ? n_fast : n_fast / 2;
    // Best of three for every side, alternating, so a noisy neighbour on a shared VM favours
    // no side.
    double mem = 0, prep = 0, sq_off = 0;
    Rate none;
    for (int rep = 0; rep < 3; ++rep) {
      ::sync();  // earlier phases' writeback must not run during this one
      mem = std::max(mem, memcpy_rate(scratch.path(), count, payload));
      ::sync();
      prep = std::max(prep, memcpy_prepared_rate(scratch.path(), count, payload, log_internal::kDefaultPageTouch));
      ::sync();
      // The log, like the baseline, has every segment of the run prepared before the clock
      // (as many as LogOptions allows): the ratio measures the encoder and the bookkeeping,
      // and the rolls themselves, not how fast segments are made (the sustained run below).
      Rate r = append_rate(fresh(scratch, "none" + sfx), Durability::none, count, payload, nullptr,
                           prepared_for(count, payload));
      if (r.events_per_s > none.events_per_s) none = r;
      ::sync();
      sq_off = std::max(sq_off, sqlite_rate(scratch.path(), false, 0,
                                            n(1'000'000) / (payload == 64 ? 1 : 2), payload));
    }
    const uint64_t padded = sample_record(payload).size();
    const double pages = std::ceil(static_cast<double>(count * padded) / 4096.0);
    fig.add("memcpy_rate" + sfx, mem, "records/s", "same record bytes into one warm mapping (no first touch)");
    fig.add("memcpy_prepared_rate" + sfx, prep, "records/s",
            "same record bytes into fresh segments prepared as the log prepares them");
    fig.add("append_none_rate" + sfx, none.events_per_s, "events/s",
            std::to_string(none.rolls) + " segment rolls, " + std::to_string(none.roll_waits) +
                " waited; appender on CPU " + std::to_string(static_cast<int>(none.cpu_share * 100 + 0.5)) +
                "% of the time, preempted " + std::to_string(none.preemptions) + "x");
    fig.add("append_first_touch_pages" + sfx, pages, "pages",
            "4 KiB pages the appender stored into for the first time (fresh, prepared)");
    fig.add("append_page_faults" + sfx, static_cast<double>(none.minor_faults), "faults",
            "page faults the appending thread took during the run");
    // What the first store to a prepared page costs: prepared memcpy minus warm memcpy, per page.
    const double touch_ns = std::max(0.0, (1e9 / prep - 1e9 / mem) * static_cast<double>(count) / pages);
    fig.add("first_touch_ns_per_page" + sfx, touch_ns, "ns",
            "(memcpy into prepared segments - into the warm mapping) per page");
    fig.add("first_touch_share_of_append" + sfx, touch_ns * pages / (1e9 * static_cast<double>(count) / none.events_per_s),
            "ratio", "what first touches cost the appender, as a share of its run time");
    fig.add("sqlite_off_rate" + sfx, sq_off, "events/s", "WAL, synchronous=OFF, one transaction");
    fig.add("ratio_append_none_vs_memcpy_prepared" + sfx, none.events_per_s / prep, "ratio",
            payload == 64 ? "target >= 0.5" : "");
    fig.add("ratio_prepared_vs_warm_memcpy" + sfx, prep / mem, "ratio", payload == 64 ? "target >= 0.15" : "");
    fig.add("ratio_append_none_vs_memcpy" + sfx, none.events_per_s / mem, "ratio", payload == 64 ? "warm mapping; was target >= 0.35" : "");
    fig.add("ratio_append_none_vs_sqlite_off" + sfx, none.events_per_s / sq_off, "ratio", payload == 64 ? "target >= 30" : "");
  }
  // The preparation options (PageTouch), measured on this machine: memcpy into fresh
  // segments prepared with each (best of 3, alternating). The log uses kDefaultPageTouch.
  if (durability_wanted(args, "none")) {
    progress("log", "segment preparation");
    const uint64_t count = n_fast;
    double best[3] = {0, 0, 0};
    for (int rep = 0; rep < 3; ++rep)
      for (int t = 0; t < 3; ++t) {
        ::sync();
        best[t] = std::max(best[t], memcpy_prepared_rate(scratch.path(), count, 64, static_cast<log_internal::PageTouch>(t)));
      }
    const char* names[3] = {"none", "read", "write"};
    const char* notes[3] = {"MADV_POPULATE_WRITE only", "+ one byte read per page, sliced",
                            "+ one zero byte stored per page, sliced"};
    for (int t = 0; t < 3; ++t)
      fig.add(std::string("memcpy_prepared_") + names[t] + "_rate_64", best[t], "records/s", notes[t]);
    // The longest slice of the preparation (wall time between two yields).
    log_internal::SlicePacer pacer;
    const std::string sub = fresh(scratch, "slice-probe");
    std::string cmd = "mkdir -p '" + sub + "'";
    if (std::system(cmd.c_str()) != 0) bench_fail("log: cannot make %s", sub.c_str());
    auto seg = log_internal::MappedSegment::create(FileOps::system(), sub, 0, kSegmentSize, true, false, &pacer);
    if (!seg.ok()) bench_fail("log: prepare a segment: %s", seg.status().to_string().c_str());
    seg->release_sliced(&pacer);
    fig.add("prepare_longest_slice_ns", static_cast<double>(pacer.longest_slice_ns()), "ns",
            "longest wall time between two yields while preparing and releasing one segment");
    fig.add("prepare_longest_slice_cpu_ns", static_cast<double>(pacer.longest_slice_cpu_ns()), "ns",
            "the same slices' longest CPU time");
    for (int k = 0; k < static_cast<int>(log_internal::StepKind::count); ++k) {
      const auto kind = static_cast<log_internal::StepKind>(k);
      fig.add(std::string("prepare_longest_slice_cpu_ns_") + log_internal::step_kind_name(kind),
              static_cast<double>(pacer.longest_slice_cpu_ns(kind)), "ns", "slices of this kind of step only");
    }
  }
  if (durability_wanted(args, "none") && args.workload.payload_bytes == 0)
    fig.add("ratio_append_none_vs_sqlite_off", fig.get("ratio_append_none_vs_sqlite_off_64"), "ratio", "64 B payloads; target >= 30");

  // Group commit: durably acknowledged events per second.
  const uint32_t payload = args.workload.payload_bytes != 0 ? args.workload.payload_bytes : 64;
  if (durability_wanted(args, "group")) {
  progress("log", "group commit vs SQLite FULL");
  ::sync();
  Rate group = append_rate(fresh(scratch, "group"), Durability::group, events_or(args, n(5'000'000)), payload);
  double sq_full = sqlite_rate(scratch.path(), true, 1, n(2'000) / 1, 64);
  // The same durability with as many events per transaction as one group flush covered.
  const uint64_t per_flush = std::max<uint64_t>(1, n(5'000'000) / std::max<uint64_t>(1, group.flushes));
  double sq_full_batched = sqlite_rate(scratch.path(), true, per_flush, std::max<uint64_t>(n(2'000), 20 * per_flush), 64);
  fig.add("append_group_acked_rate_64", group.events_per_s, "events/s", "all acknowledged (flushed)");
  fig.add("sqlite_full_rate_64", sq_full, "events/s", "WAL, synchronous=FULL, one transaction per event");
  fig.add("ratio_group_vs_sqlite_full", group.events_per_s / sq_full, "ratio", "target >= 500");
  fig.add("group_events_per_flush_64", static_cast<double>(per_flush), "events",
          std::to_string(group.flushes) + " flushes");
  fig.add("sqlite_full_batched_rate_64", sq_full_batched, "events/s",
          "WAL, synchronous=FULL, " + std::to_string(per_flush) + " events per transaction (as one group flush)");
  fig.add("ratio_group_vs_sqlite_full_batched", group.events_per_s / sq_full_batched, "ratio",
          "same events per commit as the group flush");
  }

  // Sync: latency of one durable append vs the raw flush.
  if (durability_wanted(args, "sync")) {
  progress("log", "sync append vs fdatasync");
  ::sync();
  auto sync_lat = sync_latencies(fresh(scratch, "sync"), n(2'000), payload);
  auto fds_lat = fdatasync_latencies(scratch.path(), n(2'000));
  fig.add("sync_append_p50_ns", percentile(sync_lat, 50), "ns");
  fig.add("sync_append_p99_ns", percentile(sync_lat, 99), "ns");
  fig.add("fdatasync_4k_p50_ns", percentile(fds_lat, 50), "ns");
  fig.add("fdatasync_4k_p99_ns", percentile(fds_lat, 99), "ns");
  fig.add("ratio_sync_p50_vs_fdatasync_p50", percentile(sync_lat, 50) / percentile(fds_lat, 50), "ratio", "target <= 1.5");
  write_distribution(args.data_dir, "log-sync_append_64", sync_lat);
  write_distribution(args.data_dir, "log-fdatasync_4k", fds_lat);
  }

  // Open / recovery and scan of a 10M-event log (page cache warm: it was just written).
  if (durability_wanted(args, "none")) {
    progress("log", "recovery and scan");
    const std::string dir = fresh(scratch, "recovery");
    const uint64_t count = n(10'000'000);
    // Writing this log is not timed for a figure: it draws the append rate across rolls.
    Series rate(args.data_dir, "log-append_rate_across_rolls",
                "log: append rate across segment rolls; one thread, 64 B events, durability none, 2 ms windows; "
                "dashed lines: segment rolls (" + std::to_string(kSegmentSize >> 20) + " MiB segments)",
                {"time_s", "M_events_per_s"});
    rate.note("ylabel: appends (M events/s)");
    const Rate sustained = append_rate(dir, Durability::none, count, 64, &rate);
    rate.flush();
    fig.add("append_sustained_rate_64", sustained.events_per_s, "events/s",
            "the across-rolls run: " + std::to_string(count) + " events, " + std::to_string(sustained.rolls) +
                " segment rolls, " + std::to_string(sustained.roll_waits) + " waited");
    fig.add("roll_wait_ms_per_roll", sustained.rolls == 0 ? 0.0 : static_cast<double>(sustained.roll_wait_ns) / 1e6 / static_cast<double>(sustained.rolls),
            "ms", "the across-rolls run: time the appender waited for a prepared segment, per roll");
    if (fig.get("append_none_rate_64") > 0)
      fig.add("ratio_sustained_vs_append_none_64", sustained.events_per_s / fig.get("append_none_rate_64"), "ratio",
              "sustained across many rolls / within the prepared segments");
    ::sync();
    auto t0 = Clock::now();
    LogOptions o;
    o.segment_size = kSegmentSize;
    auto w = LogWriter::open(dir, o);
    const double open_s = seconds_since(t0);
    if (!w.ok()) std::exit(1);
    (*w)->close().ignore();
    t0 = Clock::now();
    auto r = LogReader::open(dir);
    const double scan_s = seconds_since(t0);
    if (!r.ok()) std::exit(1);
    const double bytes = static_cast<double>((*r)->info().used_bytes);
    fig.add("recovery_events", static_cast<double>(count), "events");
    fig.add("recovery_open_s", open_s, "s", "LogWriter::open: scan, CRC check, stream table");
    fig.add("reader_open_s", scan_s, "s", "LogReader::open: scan, CRC check, full indexes");
    fig.add("scan_rate_events_per_s", static_cast<double>(count) / open_s, "events/s", "recovery scan");
    fig.add("scan_rate_mb_per_s", bytes / open_s / 1e6, "MB/s", "recovery scan");
  }
  if (durability_wanted(args, "none") && args.workload.payload_bytes == 0) {  // the two targets last in the table
    fig.add("ratio_append_none_vs_memcpy_prepared_64", fig.get("ratio_append_none_vs_memcpy_prepared_64"), "ratio",
            "target >= 0.5");
    fig.add("ratio_prepared_vs_warm_memcpy_64", fig.get("ratio_prepared_vs_warm_memcpy_64"), "ratio", "target >= 0.15");
  }
  fig.print_table();
  if (!args.json_path.empty() && !fig.write_json(args.json_path, "log")) return 1;
  return 0;
}

}  // namespace sluice::bench
