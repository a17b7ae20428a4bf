#include "tools/loadgen/histogram.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace qai::loadgen {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 0);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 50);
  EXPECT_EQ(h.ValueAtQuantile(0.99), 99);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 100);
  EXPECT_EQ(h.max(), 100);
}

TEST(LatencyHistogramTest, LargeValuesStayWithinRelativeError) {
  for (int64_t v :
       {int64_t{256}, int64_t{257}, int64_t{1000}, int64_t{123456}, int64_t{987654321}}) {
    LatencyHistogram h;
    h.Record(v);
    h.Record(v * 2);  // so the reported value comes from the bucket, not from max()
    const int64_t got = h.ValueAtQuantile(0.5);
    EXPECT_GE(got, v) << v;
    EXPECT_LE(static_cast<double>(got - v), static_cast<double>(v) / 128.0) << v;
  }
}

TEST(LatencyHistogramTest, NeverReportsAboveMax) {
  LatencyHistogram h;
  h.Record(1001);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 1001);
}

TEST(LatencyHistogramTest, ClampsOutOfRangeValues) {
  LatencyHistogram h;
  h.Record(-5);
  h.Record(LatencyHistogram::kMaxMicros * 4);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 0);
  EXPECT_EQ(h.max(), LatencyHistogram::kMaxMicros);
  EXPECT_EQ(h.ValueAtQuantile(1.0), LatencyHistogram::kMaxMicros);
}

TEST(LatencyHistogramTest, MergeAddsCounts) {
  LatencyHistogram a, b;
  for (int i = 0; i < 90; ++i) a.Record(10);
  for (int i = 0; i < 10; ++i) b.Record(5000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 100);
  EXPECT_EQ(a.ValueAtQuantile(0.9), 10);
  EXPECT_GE(a.ValueAtQuantile(0.91), 5000);
  EXPECT_EQ(a.max(), 5000);
}

}  // namespace
}  // namespace qai::loadgen
