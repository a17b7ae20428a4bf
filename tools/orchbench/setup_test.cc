#include "tools/orchbench/setup.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "common/ids.h"

namespace qai::orchbench {
namespace {

TEST(SetupTest, ParsesAPlan) {
  absl::StatusOr<std::vector<SetupGroup>> plan =
      ParsePlan("runs-1=300=Build page {n} [[instant]]|hold=1=Build a page [[sleep 600]]");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ((*plan)[0].name, "runs-1");
  EXPECT_EQ((*plan)[0].count, 300);
  EXPECT_EQ(PromptFor((*plan)[0], 7), "Build page 7 [[instant]]");
  EXPECT_EQ((*plan)[1].name, "hold");
  EXPECT_EQ(PromptFor((*plan)[1], 1), "Build a page [[sleep 600]]");
  // A prompt may hold '='.
  EXPECT_EQ(ParsePlan("a=1=x = y")->front().prompt, "x = y");
}

TEST(SetupTest, RefusesBadPlans) {
  for (const char* plan :
       {"", "a=1", "a=0=x", "a=x=y", "=1=x", "a=1=", "A=1=x", "a/b=1=x", "a=1=x|a=2=y"}) {
    EXPECT_EQ(ParsePlan(plan).status().code(), absl::StatusCode::kInvalidArgument) << plan;
  }
}

TEST(SetupTest, ReadsThePromptFilesItWrites) {
  const std::string path = ::testing::TempDir() + "/prompts-" + common::NewUuid() + ".tsv";
  const std::string project = common::NewUuid(), message = common::NewUuid();
  {
    std::ofstream out(path);
    out << project << '\t' << message << "\tBuild a page\twith a tab [[instant]]\n";
  }
  absl::StatusOr<std::vector<Prompt>> prompts = ReadPrompts(path);
  ASSERT_TRUE(prompts.ok()) << prompts.status();
  ASSERT_EQ(prompts->size(), 1u);
  EXPECT_EQ((*prompts)[0].project_id, project);
  EXPECT_EQ((*prompts)[0].message_id, message);
  EXPECT_EQ((*prompts)[0].prompt, "Build a page\twith a tab [[instant]]");
  {
    std::ofstream out(path);
    out << "not-a-uuid\t" << message << "\tx\n";
  }
  EXPECT_EQ(ReadPrompts(path).status().code(), absl::StatusCode::kInvalidArgument);
  std::remove(path.c_str());
  EXPECT_EQ(ReadPrompts(path).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace qai::orchbench
