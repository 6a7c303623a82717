// Segment preparation (MappedSegment::create with prefault): every PageTouch option leaves a
// mapped segment of zeros, under none and under group/sync, and the preparation yields
// between slices (SlicePacer): a slice per step kind, none yielding while urgent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <string>

#include "internal/segment.h"
#include "sluice/bus/file_ops.h"

namespace sluice::log_internal {
namespace {

class SegmentPrepareTest : public ::testing::TestWithParam<std::tuple<PageTouch, bool>> {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("sluice-segment-prepare-" + std::to_string(::getpid()) + "-" +
             std::to_string(static_cast<int>(std::get<0>(GetParam()))) + "-" +
             std::to_string(std::get<1>(GetParam()))))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_P(SegmentPrepareTest, PreparedSegmentIsMappedAndZero) {
  const auto [touch, durable] = GetParam();
  constexpr uint64_t kSize = 1 << 20;
  SlicePacer pacer;
  auto seg = MappedSegment::create(FileOps::system(), dir_, 7, kSize, /*prefault=*/true, durable, &pacer, 0640,
                                   touch);
  ASSERT_TRUE(seg.ok()) << seg.status().to_string();
  ASSERT_TRUE(seg->valid());
  EXPECT_EQ(seg->mapped_size(), kSize);
  EXPECT_FALSE(seg->activated());
  for (uint64_t off = 0; off < kSize; ++off) ASSERT_EQ(seg->data()[off], std::byte{0}) << "offset " << off;
  EXPECT_EQ(std::filesystem::file_size(seg->path()), kSize);
  // Writable after preparation, whatever the touch.
  seg->data()[kSize - 1] = std::byte{1};
  EXPECT_EQ(seg->data()[kSize - 1], std::byte{1});
  seg->release_sliced(&pacer);
  EXPECT_FALSE(seg->valid());
}

INSTANTIATE_TEST_SUITE_P(AllTouches, SegmentPrepareTest,
                         ::testing::Combine(::testing::Values(PageTouch::none, PageTouch::read, PageTouch::write),
                                            ::testing::Bool()));

// Burns a little CPU (a step of background work).
void spin_a_while() {
  volatile uint64_t x = 0;
  for (int i = 0; i < 100000; ++i) x = x + static_cast<uint64_t>(i);
}

TEST(SlicePacer, EndsASliceWhenTheKindChangesAndChargesItToThatKind) {
  SlicePacer p;
  p.begin(StepKind::zeros);
  spin_a_while();
  p.start(StepKind::zeros);  // the same kind: the slice goes on
  const uint64_t before = p.slices();
  p.start(StepKind::populate);  // another kind: the zeros slice ends here
  EXPECT_EQ(p.slices(), before + 1);
  spin_a_while();
  p.end();
  EXPECT_EQ(p.slices(), before + 2);
  EXPECT_EQ(p.yields(), p.slices());  // not urgent: every slice yields
  EXPECT_GT(p.longest_slice_cpu_ns(StepKind::zeros), 0u);
  EXPECT_GT(p.longest_slice_cpu_ns(StepKind::populate), 0u);
  EXPECT_EQ(p.longest_slice_cpu_ns(StepKind::unmap), 0u);  // never ran
  for (int k = 0; k < static_cast<int>(StepKind::count); ++k)
    EXPECT_LE(p.longest_slice_cpu_ns(static_cast<StepKind>(k)), p.longest_slice_cpu_ns());
}

TEST(SlicePacer, UrgentSlicesAreMeasuredButDoNotYield) {
  SlicePacer p;
  p.set_urgent(true);
  p.begin(StepKind::zeros);
  p.start(StepKind::populate);
  p.start(StepKind::touch);
  p.end();
  EXPECT_EQ(p.slices(), 3u);
  EXPECT_EQ(p.yields(), 0u);
  p.set_urgent(false);
  p.begin(StepKind::unmap);
  p.end();
  EXPECT_EQ(p.slices(), 4u);
  EXPECT_EQ(p.yields(), 1u);
}

TEST(SlicePacer, APacerApartFromTheHotThreadsDoesNotYield) {
  SlicePacer p;
  p.set_yielding(false);
  p.begin(StepKind::fallocate);
  p.start(StepKind::fsync);
  p.end();
  EXPECT_EQ(p.slices(), 2u);
  EXPECT_EQ(p.yields(), 0u);
}

TEST(SlicePacer, ResetForgetsTheLongestSlicesAndKeepsMeasuring) {
  SlicePacer p;
  p.begin(StepKind::zeros);
  spin_a_while();
  p.end();
  ASSERT_GT(p.longest_slice_cpu_ns(), 0u);
  ASSERT_GT(p.longest_slice_cpu_ns(StepKind::zeros), 0u);
  p.reset_longest();
  EXPECT_EQ(p.longest_slice_ns(), 0u);
  EXPECT_EQ(p.longest_slice_cpu_ns(), 0u);
  EXPECT_EQ(p.longest_slice_cpu_ns(StepKind::zeros), 0u);
  p.begin(StepKind::unmap);
  spin_a_while();
  p.end();
  EXPECT_GT(p.longest_slice_cpu_ns(StepKind::unmap), 0u) << "slices after the reset count";
  EXPECT_EQ(p.longest_slice_cpu_ns(StepKind::zeros), 0u);
}

// The total is every slice's CPU time added up, and a reset of the longest leaves it alone.
TEST(SlicePacer, TotalCpuAddsUpEverySlice) {
  SlicePacer p;
  EXPECT_EQ(p.total_cpu_ns(), 0u);
  p.begin(StepKind::zeros);
  spin_a_while();
  p.end();
  const uint64_t first = p.total_cpu_ns();
  EXPECT_GE(first, p.longest_slice_cpu_ns());
  EXPECT_GT(first, 0u);
  p.reset_longest();
  p.begin(StepKind::unmap);
  spin_a_while();
  p.end();
  EXPECT_EQ(p.total_cpu_ns(), first + p.longest_slice_cpu_ns()) << "one slice since the reset";
}

TEST(SlicePacer, PreparingASegmentChargesEveryStepKind) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("sluice-segment-pacer-" + std::to_string(::getpid())))
                              .string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  SlicePacer p;
  auto seg = MappedSegment::create(FileOps::system(), dir, 0, 1 << 20, /*prefault=*/true, /*durable=*/false, &p,
                                   0640, PageTouch::read);
  ASSERT_TRUE(seg.ok()) << seg.status().to_string();
  seg->release_sliced(&p);
  // One slice per kind at least (the kinds follow each other), each of them measured.
  EXPECT_GE(p.slices(), static_cast<uint64_t>(StepKind::count));
  for (int k = 0; k < static_cast<int>(StepKind::count); ++k)
    EXPECT_LE(p.longest_slice_cpu_ns(static_cast<StepKind>(k)), p.longest_slice_cpu_ns()) << step_kind_name(static_cast<StepKind>(k));
  std::filesystem::remove_all(dir);
}

// Counts munmap calls (the TLB shootdowns the hot CPUs take).
struct CountingUnmaps : FileOps {
  int munmap(void* addr, size_t length) override {
    ++calls;
    return FileOps::munmap(addr, length);
  }
  int calls = 0;
};

// Sharing a CPU with a hot thread (the pacer yields), a segment is unmapped in kUnmapStep
// pieces; apart from the hot threads, in one call, so that their CPUs take one interrupt.
TEST(SlicePacer, UnmapsInStepsOnlyWhenItYields) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("sluice-segment-unmap-" + std::to_string(::getpid())))
                              .string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  constexpr uint64_t kSize = 4 * kUnmapStep;
  for (const bool yielding : {true, false}) {
    CountingUnmaps ops;
    SlicePacer p;
    p.set_yielding(yielding);
    auto seg = MappedSegment::create(ops, dir, yielding ? 0 : 1, kSize, /*prefault=*/true, /*durable=*/false, &p);
    ASSERT_TRUE(seg.ok()) << seg.status().to_string();
    ops.calls = 0;
    seg->release_sliced(&p);
    EXPECT_FALSE(seg->valid());
    EXPECT_EQ(ops.calls, yielding ? 4 : 1) << (yielding ? "yielding" : "apart");
  }
  std::filesystem::remove_all(dir);
}

// A read-only mapping (the LogPublisher's) has no dirty pages: yielding, it is unmapped in
// kUnmapStepReadOnly pieces, fewer shootdowns for the hot CPUs.
TEST(SlicePacer, UnmapsAReadOnlyMappingInLargerSteps) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("sluice-segment-unmap-ro-" + std::to_string(::getpid())))
                              .string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  constexpr uint64_t kSize = 2 * kUnmapStepReadOnly;
  {
    SlicePacer p;
    auto made = MappedSegment::create(FileOps::system(), dir, 0, kSize, /*prefault=*/false, /*durable=*/false, &p);
    ASSERT_TRUE(made.ok()) << made.status().to_string();
    made->activate(0, 1);  // a valid header: open_read maps the declared segment size
  }
  CountingUnmaps ops;
  auto seg = MappedSegment::open_read(ops, segment_path(dir, 0), 0);
  ASSERT_TRUE(seg.ok()) << seg.status().to_string();
  ASSERT_EQ(seg->mapped_size(), kSize);
  SlicePacer p;  // yielding, as beside hot threads
  ops.calls = 0;
  seg->release_sliced(&p);
  EXPECT_FALSE(seg->valid());
  EXPECT_EQ(ops.calls, 2) << "two kUnmapStepReadOnly steps, not " << kSize / kUnmapStep << " kUnmapStep ones";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::log_internal
