#include "common/ids.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace qai::common {
namespace {

TEST(NewUuidTest, CanonicalVersion4) {
  for (int i = 0; i < 200; ++i) {
    const std::string id = NewUuid();
    ASSERT_EQ(id.size(), 36u) << id;
    EXPECT_TRUE(IsUuid(id)) << id;
    for (size_t k : {8u, 13u, 18u, 23u}) EXPECT_EQ(id[k], '-') << id;
    for (size_t k = 0; k < id.size(); ++k) {
      if (k == 8 || k == 13 || k == 18 || k == 23) continue;
      const char c = id[k];
      EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << "not lowercase hex: " << id;
    }
    EXPECT_EQ(id[14], '4') << "version nibble: " << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << "variant nibble: " << id;
  }
}

TEST(NewUuidTest, Unique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(NewUuid());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(NewUuidTest, RandomBitsVary) {
  // Every random hex position takes more than one value across many ids.
  std::vector<std::set<char>> values(36);
  for (int i = 0; i < 200; ++i) {
    const std::string id = NewUuid();
    for (size_t k = 0; k < id.size(); ++k) values[k].insert(id[k]);
  }
  for (size_t k = 0; k < 36; ++k) {
    if (k == 8 || k == 13 || k == 18 || k == 23 || k == 14) {
      EXPECT_EQ(values[k].size(), 1u) << k;
    } else if (k == 19) {
      EXPECT_EQ(values[k].size(), 4u);  // 8, 9, a, b
    } else {
      EXPECT_GT(values[k].size(), 4u) << k;
    }
  }
}

TEST(IsUuidTest, AcceptsEitherCase) {
  EXPECT_TRUE(IsUuid("123e4567-e89b-42d3-a456-426614174000"));
  EXPECT_TRUE(IsUuid("123E4567-E89B-42D3-A456-426614174000"));
  EXPECT_TRUE(IsUuid("AbCdEf01-2345-6789-aBcD-ef0123456789"));
  EXPECT_TRUE(IsUuid("00000000-0000-0000-0000-000000000000"));
}

TEST(IsUuidTest, RejectsWrongLength) {
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a456-42661417400"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a456-4266141740000"));
  EXPECT_FALSE(IsUuid("123e4567e89b42d3a456426614174000"));
  EXPECT_FALSE(IsUuid("{123e4567-e89b-42d3-a456-426614174000}"));
}

TEST(IsUuidTest, RejectsMisplacedDashes) {
  EXPECT_FALSE(IsUuid("123e456-7e89b-42d3-a456-426614174000"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a4564-26614174000"));
  EXPECT_FALSE(IsUuid("123e4567ee89b-42d3-a456-426614174000"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a456-4266-4174000"));
  EXPECT_FALSE(IsUuid("------------------------------------"));
}

TEST(IsUuidTest, RejectsNonHex) {
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a456-42661417400g"));
  EXPECT_FALSE(IsUuid("g23e4567-e89b-42d3-a456-426614174000"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a456-42661417400 "));
  EXPECT_FALSE(IsUuid("123e4567+e89b-42d3-a456-426614174000"));
  EXPECT_FALSE(IsUuid(std::string_view("123e4567-e89b-42d3-a456-42661417400\0", 36)));
}

}  // namespace
}  // namespace qai::common
