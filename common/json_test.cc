#include "common/json.h"

#include <gtest/gtest.h>

#include <string>

namespace qai::common {
namespace {

std::string Nested(int depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonTest, DepthCountsArraysAndObjectsButNotStrings) {
  EXPECT_FALSE(JsonNestedDeeperThan(R"({"a":[{"b":[]}]})", 4));
  EXPECT_TRUE(JsonNestedDeeperThan(R"({"a":[{"b":[]}]})", 3));
  EXPECT_FALSE(JsonNestedDeeperThan(R"({"s":"[[[[[[\"{{{{"})", 1))
      << "brackets in strings, escaped quotes too";
  EXPECT_FALSE(JsonNestedDeeperThan(Nested(3) + Nested(3), 3)) << "siblings, not nesting";
}

TEST(JsonTest, ADeepDocumentIsRefusedBeforeItIsParsed) {
  EXPECT_EQ(ParseUntrustedJson(R"({"files":[{"path":"a"}]})")["files"][0]["path"], "a");
  EXPECT_TRUE(ParseUntrustedJson(Nested(kMaxUntrustedJsonDepth)).is_array());
  EXPECT_TRUE(ParseUntrustedJson(Nested(kMaxUntrustedJsonDepth + 1)).is_discarded());
  // 100,000 levels: dumping or copying it would overflow the stack; it is never built.
  const nlohmann::json deep = ParseUntrustedJson("{\"a\":" + Nested(100000) + "}");
  EXPECT_TRUE(deep.is_discarded());
  EXPECT_TRUE(ParseUntrustedJson("{not json").is_discarded());
}

}  // namespace
}  // namespace qai::common
