// Power loss, simulated (CrashFs): a writer runs a workload (streams defined as it goes,
// schema records, batches of 1..5 events whose records span pages, segment rolls, a clean
// close and a second open); at every file-system call and after every append a crash point is
// captured, and crash images are built from it: the durable state plus any subset of the
// pages written since, torn sectors, unflushed directory entries missing. Each image must
//  - open (no refusal of a log a power cut could have left),
//  - hold every event acknowledged at that point (sync, group; under none, what a clean
//    close made durable),
//  - expose nothing that was not written: positions contiguous from 0, every event's stream
//    and bytes those appended at its position, no batch in part, stream names right,
//  - and, once recovered, read back clean and take appends.
// SLUICE_POWER_LOSS_IMAGES (default 10000; 1000 under ASan, 150 under TSan, which run slower)
// sets the images per durability policy, SLUICE_POWER_LOSS_SEED (default 1) the workload and
// image seed.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bus/crash_fs.h"
#include "bus/log_test_util.h"
#include "sluice/bus/log_reader.h"
#include "sluice/bus/log_writer.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;
namespace lf = log_format;

// Sanitizer builds run far slower (TSan ~50x here): fewer images by default there.
#if defined(__SANITIZE_THREAD__)
constexpr uint64_t kDefaultImages = 150;
#elif defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kDefaultImages = 1000;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr uint64_t kDefaultImages = 150;
#elif __has_feature(address_sanitizer)
constexpr uint64_t kDefaultImages = 1000;
#else
constexpr uint64_t kDefaultImages = 10000;
#endif
#else
constexpr uint64_t kDefaultImages = 10000;
#endif

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

// A scratch directory on tmpfs when there is one: images are written and opened by the
// thousand.
std::string scratch_root() {
  static const std::string root = [] {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::path(::testing::TempDir());
    return (base / ("sluice_power_" + std::to_string(::getpid()))).string();
  }();
  return root;
}

// Payload sizes vary (16..1215 bytes), so that records and batches straddle pages.
size_t payload_size(uint64_t position) { return 16 + (position * 131) % 1200; }

// What was appended, by position.
struct Model {
  std::vector<StreamId> stream_of;
  std::vector<uint64_t> batch_end;  // one past the last position of the position's batch
  std::vector<std::string> stream_names;
  std::vector<std::string> payloads;  // payload_for(p, payload_size(p))
  std::vector<std::string> schemas;   // the schema records' payloads, in log order
  std::vector<uint64_t> schemas_before;  // by position: schema records appended before it
};

struct Totals {
  uint64_t crash_points = 0;
  uint64_t images = 0;
  uint64_t acknowledged_checked = 0;
  uint64_t lost = 0;
  uint64_t refusals = 0;
  uint64_t exposed_corrupt = 0;
  CrashImageStats pages;
};

int64_t realtime_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Options of the writer that opens an image: no real flushes (the image is scratch).
LogOptions recovery_options() {
  static FaultFileOps ops;
  ops.no_sync = true;
  LogOptions o = small_log_options();
  o.file_ops = &ops;
  o.prepared_segments = 1;
  o.clock_ns = realtime_now;  // no TSC calibration (2 ms) at each of the thousands of opens
  return o;
}

class PowerLoss : public ::testing::TestWithParam<Durability> {
 protected:
  void TearDown() override { fs::remove_all(scratch_root()); }

  // Checks one image; returns false after recording a failure.
  bool check_image(const std::string& img, uint64_t acknowledged, const std::string& where,
                   uint64_t image_no, bool append_after) {
    auto fail = [&](const std::string& what, uint64_t* counter) {
      ++*counter;
      if (failures_++ < 5) {
        const std::string keep = ::testing::TempDir() + "sluice_power_failure_" + std::to_string(image_no);
        fs::remove_all(keep);
        fs::copy(img, keep, fs::copy_options::recursive);
        ADD_FAILURE() << "image " << image_no << " (crash in " << where << ", " << acknowledged
                      << " acknowledged): " << what << " [image kept in " << keep << "]";
      }
      return false;
    };
    {
      auto w = LogWriter::open(img, recovery_options());
      if (!w.ok()) return fail("refused: " + w.status().to_string(), &totals_.refusals);
      if ((*w)->next_position() < acknowledged)
        return fail("recovered " + std::to_string((*w)->next_position()) + " events", &totals_.lost);
      if (!(*w)->close().ok()) return fail("close after recovery failed", &totals_.refusals);
    }
    auto r = LogReader::open(img);
    if (!r.ok()) return fail("recovered log does not open: " + r.status().to_string(), &totals_.refusals);
    const uint64_t end = (*r)->end_position();
    if ((*r)->begin_position() != 0 || (*r)->info().tail_damaged)
      return fail("recovered log not clean: " + (*r)->info().tail_reason, &totals_.exposed_corrupt);
    if (end < acknowledged)
      return fail("holds " + std::to_string(end) + " events", &totals_.lost);
    if (end > model_.stream_of.size())
      return fail("holds " + std::to_string(end) + " events, more than appended", &totals_.exposed_corrupt);
    if (end > 0 && model_.batch_end[end - 1] != end)
      return fail("ends inside a batch at " + std::to_string(end), &totals_.exposed_corrupt);
    RecordView v;
    for (uint64_t p = 0; p < end; ++p) {
      if (!(*r)->read(p, &v) || v.position() != p)
        return fail("position " + std::to_string(p) + " unreadable", &totals_.exposed_corrupt);
      if (v.stream_id() != model_.stream_of[p] ||
          as_chars(v.payload()) != model_.payloads[p])
        return fail("position " + std::to_string(p) + " holds bytes never appended there",
                    &totals_.exposed_corrupt);
    }
    for (StreamId id = 1; id <= (*r)->stream_count(); ++id)
      if (id > model_.stream_names.size() || (*r)->stream_name(id) != model_.stream_names[id - 1])
        return fail("stream " + std::to_string(id) + " has the wrong name", &totals_.exposed_corrupt);
    // Schema records: a prefix of those appended, whole, holding at least every one appended
    // before a recovered (so before every acknowledged) event — an event is never kept
    // without the schema records it may depend on.
    std::vector<std::string_view> schemas;
    for (const RecordView& sv : (*r)->system_records())
      if (sv.header->type == lf::kTypeSchema) schemas.push_back(as_chars(sv.payload()));
    const uint64_t needed = end > 0 ? model_.schemas_before[end - 1] : 0;
    if (schemas.size() < needed)
      return fail("holds " + std::to_string(schemas.size()) + " schema records, " + std::to_string(needed) +
                      " were appended before its events",
                  &totals_.lost);
    if (schemas.size() > model_.schemas.size())
      return fail("holds more schema records than appended", &totals_.exposed_corrupt);
    for (size_t i = 0; i < schemas.size(); ++i)
      if (schemas[i] != model_.schemas[i])
        return fail("schema record " + std::to_string(i) + " holds bytes never appended", &totals_.exposed_corrupt);
    totals_.acknowledged_checked += acknowledged;
    if (append_after) {
      r->reset();
      auto w = LogWriter::open(img, recovery_options());
      if (!w.ok()) return fail("second open refused: " + w.status().to_string(), &totals_.refusals);
      auto s = (*w)->stream("after-recovery");
      if (!s.ok()) return fail("stream after recovery: " + s.status().to_string(), &totals_.refusals);
      const std::string pl = payload_for(end, payload_size(end));
      AppendResult a = (*w)->append(*s, ExpectedVersion::any(), event(pl));
      if (!a.ok() || a.position != end)
        return fail("append after recovery: " + (*w)->last_error().to_string(), &totals_.refusals);
      if (!(*w)->close().ok()) return fail("close after append", &totals_.refusals);
      auto r2 = LogReader::open(img);
      if (!r2.ok() || (*r2)->end_position() != end + 1 || (*r2)->info().tail_damaged)
        return fail("log after recovery and an append does not reopen clean", &totals_.refusals);
    }
    return true;
  }

  // stride: only every stride-th crash point is used (sanitizer builds, few images).
  void process(CrashFs& sim, uint64_t per_point, uint64_t stride = 1) {
    for (const CrashFs::CrashPoint& cp : sim.take_captures()) {
      if (cp.id % stride != 0) continue;
      ++totals_.crash_points;
      for (uint64_t i = 0; i < per_point; ++i) {
        const std::string img = scratch_root() + "/img";
        CrashFs::build_image(cp, rng_, img, &totals_.pages);
        ++totals_.images;
        check_image(img, cp.acknowledged, cp.where, totals_.images, totals_.images % 16 == 0);
      }
    }
  }

  // One operation of the workload: a new stream, a schema record, or a batch.
  void step(LogWriter& w) {
    const uint64_t r = rng_() % 100;
    if (model_.stream_names.empty() || r < 6) {
      const std::string name = "stream-" + std::to_string(model_.stream_names.size() + 1) +
                               std::string(rng_() % 40, 'n');
      auto s = w.stream(name);
      ASSERT_TRUE(s.ok()) << s.status().to_string();
      ASSERT_EQ(*s, model_.stream_names.size() + 1);
      model_.stream_names.push_back(name);
      return;
    }
    if (r < 10) {
      const std::string schema(40 + rng_() % 300, 's');
      ASSERT_TRUE(w.append_system(lf::kTypeSchema, 7, as_bytes(schema)).ok());
      model_.schemas.push_back(schema);
      return;
    }
    const StreamId s = 1 + rng_() % model_.stream_names.size();
    const size_t n = 1 + rng_() % 5;
    std::vector<std::string> payloads;
    std::vector<EventData> events;
    const uint64_t first = w.next_position();
    for (size_t i = 0; i < n; ++i) payloads.push_back(payload_for(first + i, payload_size(first + i)));
    for (const std::string& p : payloads) events.push_back(event(p));
    AppendResult a = w.append(s, ExpectedVersion::any(), events);
    ASSERT_TRUE(a.ok()) << w.last_error().to_string();
    ASSERT_EQ(a.position, model_.stream_of.size());
    for (size_t i = 0; i < n; ++i) {
      model_.stream_of.push_back(s);
      model_.batch_end.push_back(first + n);
      model_.payloads.push_back(payloads[i]);
      model_.schemas_before.push_back(model_.schemas.size());
    }
  }

  Model model_;
  Totals totals_;
  std::mt19937_64 rng_;
  uint64_t failures_ = 0;
};

std::string policy_name(const ::testing::TestParamInfo<Durability>& info) {
  return std::string(to_string(info.param));
}

TEST_P(PowerLoss, EveryCrashImageOpensWithEveryAcknowledgedEventAndNothingCorrupt) {
  const Durability d = GetParam();
  const uint64_t target = env_u64("SLUICE_POWER_LOSS_IMAGES", kDefaultImages);
  const uint64_t seed = env_u64("SLUICE_POWER_LOSS_SEED", 1);
  rng_.seed(seed * 3 + static_cast<uint64_t>(d));
  TempDir tmp("power");
  const std::string dir = tmp.sub("log");
  fs::create_directories(dir);
  fs::create_directories(scratch_root());
  CrashFs sim(dir);
  std::atomic<LogWriter*> live{nullptr};
  std::atomic<uint64_t> floor{0};  // durable by a clean close (every policy)
  // Acquire/relaxed: the probe runs on the writer's threads inside CrashFs calls; `live` is
  // set by this thread after open returns and cleared before close, and LogWriter's
  // acknowledged_position() is itself an acquire load of what its flushes published.
  sim.set_acknowledged_probe([&] {
    const uint64_t f = floor.load(std::memory_order_acquire);
    LogWriter* w = live.load(std::memory_order_acquire);
    if (w == nullptr || d == Durability::none) return f;
    return std::max(f, w->acknowledged_position());
  });
  // About 350 operations in two opens make ~470 (none) to ~800 (group, sync) crash points
  // (seed 1); the images per point are set so that the total reaches the target (a top-up
  // at the end of each open covers a shortfall).
  const uint64_t ops_per_open = 175;
  const uint64_t expected_points = d == Durability::none ? 450 : 780;
  const uint64_t per_point = std::max<uint64_t>(1, (target + expected_points - 1) / expected_points);
  const uint64_t stride = std::max<uint64_t>(1, expected_points / std::max<uint64_t>(1, target));
  LogOptions o = small_log_options(d);
  o.file_ops = &sim;
  o.prefault = true;  // the default preparation path, under the simulator too
  o.group_interval = std::chrono::microseconds(200);
  o.clock_ns = realtime_now;
  sim.capture_in_calls(1);
  for (int open_no = 0; open_no < 2; ++open_no) {
    auto w = LogWriter::open(dir, o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    live.store(w->get(), std::memory_order_release);
    process(sim, per_point, stride);
    for (uint64_t i = 0; i < ops_per_open; ++i) {
      ASSERT_NO_FATAL_FAILURE(step(**w));
      sim.capture("after-append");
      process(sim, per_point, stride);
    }
    while (totals_.images < target * (open_no + 1) / 2) {  // top up at the last state
      sim.capture("top-up");
      process(sim, per_point, 1);
    }
    ASSERT_TRUE((*w)->close().ok());
    floor.store((*w)->next_position(), std::memory_order_release);
    live.store(nullptr, std::memory_order_release);
    process(sim, per_point, stride);
  }
  std::printf("power loss, durability %s, seed %llu: %llu crash points, %llu images, %llu acknowledged "
              "events checked; lost %llu, refusals %llu, corrupt exposed %llu; dirty pages %llu "
              "(lost %llu, written %llu, torn %llu), directory entries undone %llu\n",
              std::string(to_string(d)).c_str(), static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(totals_.crash_points), static_cast<unsigned long long>(totals_.images),
              static_cast<unsigned long long>(totals_.acknowledged_checked),
              static_cast<unsigned long long>(totals_.lost), static_cast<unsigned long long>(totals_.refusals),
              static_cast<unsigned long long>(totals_.exposed_corrupt),
              static_cast<unsigned long long>(totals_.pages.pages_dirty),
              static_cast<unsigned long long>(totals_.pages.pages_lost),
              static_cast<unsigned long long>(totals_.pages.pages_written),
              static_cast<unsigned long long>(totals_.pages.pages_torn),
              static_cast<unsigned long long>(totals_.pages.entries_undone));
  EXPECT_GE(totals_.images, target);
  EXPECT_EQ(totals_.lost, 0u);
  EXPECT_EQ(totals_.refusals, 0u);
  EXPECT_EQ(totals_.exposed_corrupt, 0u);
  EXPECT_GT(model_.stream_of.size(), 500u);  // the workload rolled segments
}

INSTANTIATE_TEST_SUITE_P(Durability, PowerLoss,
                         ::testing::Values(Durability::none, Durability::group, Durability::sync),
                         policy_name);

}  // namespace
}  // namespace sluice::testing

namespace sluice::testing {
namespace {

// The case the strict "a valid record after an invalid one is corruption" rule got wrong: a
// power cut during the flush of a multi-page batch under sync leaves the batch's first page
// unwritten and a later one written. The batch was never acknowledged: a torn tail, and the
// log opens with every acknowledged event.
TEST(PowerLossRegression, ValidRecordAfterATornOneBeyondTheWatermarkIsATornTail) {
  TempDir tmp("regression");
  const std::string dir = tmp.sub("log");
  fs::create_directories(dir);
  CrashFs sim(dir);
  LogOptions o = small_log_options(Durability::sync);
  o.file_ops = &sim;
  o.clock_ns = realtime_now;
  std::vector<std::string> payloads;
  for (uint64_t p = 0; p < 13; ++p) payloads.push_back(payload_for(p, p < 3 ? 100 : 1000));
  CrashFs::CrashPoint at_flush;
  {
    auto w = LogWriter::open(dir, o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    auto s = (*w)->stream("s");
    ASSERT_TRUE(s.ok());
    for (uint64_t p = 0; p < 3; ++p)
      ASSERT_TRUE((*w)->append(*s, ExpectedVersion::any(), event(payloads[p])).ok());
    // The maintenance thread prepares the next segments meanwhile (open, fallocate, pwrite,
    // fsync: calls the simulator counts); once they are ready it makes none until a roll, so
    // the next counted call is the batch's. (Under TSan its fsync once came first.)
    ASSERT_TRUE((*w)->wait_prepared(std::chrono::seconds(30)));
    sim.take_captures();
    sim.capture_in_calls(1);  // the next call is the batch's msync: capture just before it
    std::vector<EventData> batch;
    for (uint64_t p = 3; p < 13; ++p) batch.push_back(event(payloads[p]));
    ASSERT_TRUE((*w)->append(*s, ExpectedVersion::any(), batch).ok());
    sim.capture_in_calls(0);
    auto caps = sim.take_captures();
    ASSERT_FALSE(caps.empty());
    ASSERT_EQ(caps.front().where, "msync");
    at_flush = caps.front();
    EXPECT_EQ(at_flush.acknowledged, 0u);  // no probe: nothing credited
  }
  // The batch's first page lost, every later page written.
  const std::string seg0 = segment_file(dir, 0).substr(dir.size() + 1);
  size_t first_dirty = SIZE_MAX;
  auto choose = [&](const std::string& name, size_t page) {
    if (name != seg0) return 1;
    if (first_dirty == SIZE_MAX) first_dirty = page;
    return page == first_dirty ? 0 : 1;
  };
  std::mt19937_64 rng(1);
  const std::string img = tmp.sub("img");
  CrashFs::build_image(at_flush, rng, img, nullptr, choose);
  {
    auto r = LogReader::open(img);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ((*r)->end_position(), 3u);
    EXPECT_TRUE((*r)->info().tail_damaged);
    EXPECT_NE((*r)->info().tail_reason.find("decodes, but lies after the durable watermark"), std::string::npos)
        << "the image must hold a valid record after the torn one: " << (*r)->info().tail_reason;
  }
  auto w = LogWriter::open(img, recovery_options());
  ASSERT_TRUE(w.ok()) << "refused a log a power cut left: " << w.status().to_string();
  EXPECT_EQ((*w)->next_position(), 3u);
  ASSERT_TRUE((*w)->close().ok());
  expect_log_holds(img, 3, 100);
  // The bytes cut were kept aside, not deleted.
  EXPECT_TRUE(fs::exists(img + "/" + lf::kQuarantineDir));
}

// The same shape below the durable watermark (the batch acknowledged, the log closed, then
// its first record zeroed) is corruption, refused with segment and offset.
TEST(PowerLossRegression, ValidRecordAfterADamagedOneBelowTheWatermarkIsCorruption) {
  TempDir tmp("regression");
  const std::string dir = tmp.sub("log");
  LogOptions o = small_log_options(Durability::sync);
  o.clock_ns = realtime_now;
  uint32_t victim = 0;
  {
    auto w = LogWriter::open(dir, o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    auto s = (*w)->stream("s");
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(append_events(**w, *s, 13, 300));
    ASSERT_TRUE((*w)->close().ok());
  }
  victim = locate_records(dir)[5].offset;
  const std::vector<char> zeros(56, 0);
  patch_file(segment_file(dir, 0), victim, zeros.data(), zeros.size());
  const auto before = read_file(segment_file(dir, 0));
  auto w = LogWriter::open(dir, o);
  ASSERT_FALSE(w.ok());
  expect_corruption(w.status(), segment_file(dir, 0), victim);
  EXPECT_EQ(read_file(segment_file(dir, 0)), before);
}

}  // namespace
}  // namespace sluice::testing
