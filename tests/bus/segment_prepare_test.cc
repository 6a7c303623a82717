// Segment preparation (MappedSegment::create with prefault): every PageTouch option leaves a
// mapped segment of zeros, under none and under group/sync, and the preparation yields
// between slices (SlicePacer).
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

TEST(SlicePacer, DueAfterTheBudget) {
  SlicePacer p;
  p.begin();
  EXPECT_FALSE(p.due(60'000'000'000));  // a minute: not yet
  EXPECT_TRUE(p.due(0));
  p.between();
  EXPECT_FALSE(p.due(60'000'000'000));
}

}  // namespace
}  // namespace sluice::log_internal
