#include "tools/chainbench/distribution.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace qai::chainbench {
namespace {

constexpr int64_t kMs = 1000000;

TEST(SummarizeTest, EmptyIsAllZero) {
  Summary s = Summarize({});
  EXPECT_EQ(s.count, 0);
  EXPECT_EQ(s.p99_ms, 0);
  EXPECT_EQ(s.mean_ms, 0);
}

TEST(SummarizeTest, NearestRankOnAnyOrder) {
  std::vector<int64_t> nanos;
  for (int64_t v = 100; v >= 1; --v) nanos.push_back(v * kMs);
  Summary s = Summarize(nanos);
  EXPECT_EQ(s.count, 100);
  EXPECT_DOUBLE_EQ(s.min_ms, 1);
  EXPECT_DOUBLE_EQ(s.p50_ms, 50);
  EXPECT_DOUBLE_EQ(s.p90_ms, 90);
  EXPECT_DOUBLE_EQ(s.p99_ms, 99);
  EXPECT_DOUBLE_EQ(s.max_ms, 100);
  EXPECT_DOUBLE_EQ(s.mean_ms, 50.5);
  EXPECT_EQ(s.negative, 0);
  EXPECT_DOUBLE_EQ(Summarize({1 * kMs, 2 * kMs, 3 * kMs, 4 * kMs}).p50_ms, 2);
  EXPECT_DOUBLE_EQ(Summarize({7 * kMs}).p99_ms, 7);
}

TEST(SummarizeTest, NegativeSamplesAreKeptNotClamped) {
  Summary s = Summarize({3 * kMs, -2 * kMs, 4 * kMs, -1 * kMs});
  EXPECT_EQ(s.negative, 2);
  EXPECT_DOUBLE_EQ(s.min_ms, -2);
  EXPECT_DOUBLE_EQ(s.p50_ms, -1);
  EXPECT_DOUBLE_EQ(s.max_ms, 4);
  EXPECT_DOUBLE_EQ(s.mean_ms, 1);
}

TEST(SummarizeTest, SubMillisecondResolution) {
  Summary s = Summarize({1500, 250000});  // 1.5 µs and 0.25 ms
  EXPECT_DOUBLE_EQ(s.min_ms, 0.0015);
  EXPECT_DOUBLE_EQ(s.max_ms, 0.25);
}

}  // namespace
}  // namespace qai::chainbench
