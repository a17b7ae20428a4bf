#include "tools/orchbench/stamp.h"

#include <gtest/gtest.h>

namespace qai::orchbench {
namespace {

TEST(StampTest, RoundTrips) {
  const int64_t now = SteadyNanos();
  std::optional<Stamp> stamp = ParseStamp(StampText(17, now));
  ASSERT_TRUE(stamp.has_value());
  EXPECT_EQ(stamp->index, 17);
  EXPECT_EQ(stamp->sent_ns, now);
  EXPECT_EQ(StampText(0, 5), "qai-orchbench 0 5");
}

TEST(StampTest, OtherTextIsNoStamp) {
  for (const char* text :
       {"", "Let me look at what the workspace already has.", "qai-orchbench 1",
        "qai-orchbench x 5", "qai-orchbench 1 2 3", "qai-orchbench -1 5", "other 1 5"}) {
    EXPECT_FALSE(ParseStamp(text).has_value()) << text;
  }
}

TEST(StampTest, TheSteadyClockDoesNotGoBack) {
  const int64_t a = SteadyNanos();
  EXPECT_GE(SteadyNanos(), a);
}

}  // namespace
}  // namespace qai::orchbench
