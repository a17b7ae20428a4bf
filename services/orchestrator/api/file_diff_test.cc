#include "services/orchestrator/api/file_diff.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace qai::orchestrator {
namespace {

TEST(UnifiedDiffTest, ShowsTheChangeWithThreeLinesOfContext) {
  const std::string before = "a\nb\nc\nd\ne\nf\ng\nh\n";
  const std::string after = "a\nb\nc\nd\nE\nf\ng\nh\ni\n";
  std::optional<TextDiff> d = UnifiedDiff(before, after);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->truncated);
  EXPECT_EQ(d->unified, "@@ -2,7 +2,8 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n+i\n");
  EXPECT_EQ(UnifiedDiff(before, before)->unified, "") << "no change, no hunk";
  EXPECT_EQ(UnifiedDiff("", "new\n")->unified, "@@ -0,0 +1,1 @@\n+new\n");
}

TEST(UnifiedDiffTest, BinaryIsNotDiffedAndBigInputsAndOutputsAreBounded) {
  EXPECT_FALSE(UnifiedDiff(std::string("a\0b", 3), "ab"));
  EXPECT_FALSE(UnifiedDiff("ok", "\xff\xfe"));
  EXPECT_TRUE(IsText("caf\xc3\xa9\n"));
  std::string many, other;
  for (int i = 0; i < 2000; ++i) {
    absl::StrAppend(&many, "line ", i, "\n");
    absl::StrAppend(&other, "LINE ", i, "\n");
  }
  std::optional<TextDiff> cut = UnifiedDiff(many, other, {.max_bytes = 1000});
  ASSERT_TRUE(cut);
  EXPECT_TRUE(cut->truncated);
  EXPECT_LE(cut->unified.size(), 1000u);
  EXPECT_EQ(cut->unified.back(), '\n') << "cut at a line";
  std::optional<TextDiff> skipped = UnifiedDiff(many, other, {.max_lines = 100});
  ASSERT_TRUE(skipped);
  EXPECT_TRUE(skipped->too_long);
  EXPECT_TRUE(skipped->unified.empty());
}

}  // namespace
}  // namespace qai::orchestrator
