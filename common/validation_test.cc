#include "common/validation.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace qai::common {
namespace {

std::vector<FieldViolation> Text(std::string_view value, size_t min_chars, size_t max_chars) {
  FieldViolations bad;
  CheckText(bad, "display_name", value, min_chars, max_chars);
  return GetFieldViolations(bad.ToStatus());
}

std::vector<FieldViolation> Uuid(std::string_view value, bool required) {
  FieldViolations bad;
  CheckUuid(bad, "project_id", value, required);
  return GetFieldViolations(bad.ToStatus());
}

std::string Repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(Utf8LengthTest, Ascii) {
  EXPECT_EQ(Utf8Length(""), 0);
  EXPECT_EQ(Utf8Length("hello"), 5);
  EXPECT_EQ(Utf8Length(std::string_view("a\0b", 3)), 3);
}

TEST(Utf8LengthTest, MultiByteCountsCharacters) {
  EXPECT_EQ(Utf8Length("\xc3\xa9"), 1);                  // é
  EXPECT_EQ(Utf8Length("caf\xc3\xa9"), 4);               // café
  EXPECT_EQ(Utf8Length("\xe6\x97\xa5\xe6\x9c\xac"), 2);  // 日本
  EXPECT_EQ(Utf8Length("\xf0\x9f\x98\x80"), 1);          // 😀
  EXPECT_EQ(Utf8Length("a\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80z"), 5);
}

TEST(Utf8LengthTest, InvalidSequences) {
  EXPECT_EQ(Utf8Length("\xff"), -1);
  EXPECT_EQ(Utf8Length("\x80"), -1);          // lone continuation byte
  EXPECT_EQ(Utf8Length("abc\xc3"), -1);       // truncated 2-byte sequence
  EXPECT_EQ(Utf8Length("\xe6\x97"), -1);      // truncated 3-byte sequence
  EXPECT_EQ(Utf8Length("\xf0\x9f\x98"), -1);  // truncated 4-byte sequence
  EXPECT_EQ(Utf8Length("\xc3\x28"), -1);      // bad continuation
  EXPECT_EQ(Utf8Length("\xe6\x97\x41"), -1);
  EXPECT_EQ(Utf8Length("\xf8\x88\x80\x80\x80"), -1);  // 5-byte form
}

TEST(Utf8LengthTest, RejectsOverlongSurrogatesAndOutOfRange) {
  EXPECT_EQ(Utf8Length("\xc0\x80"), -1);          // overlong NUL
  EXPECT_EQ(Utf8Length("\xc1\xbf"), -1);          // overlong
  EXPECT_EQ(Utf8Length("\xe0\x80\xaf"), -1);      // overlong '/'
  EXPECT_EQ(Utf8Length("\xed\xa0\x80"), -1);      // surrogate U+D800
  EXPECT_EQ(Utf8Length("\xf4\x90\x80\x80"), -1);  // U+110000
  EXPECT_EQ(Utf8Length("\xf5\x80\x80\x80"), -1);
}

TEST(CheckTextTest, NulCharactersRefused) {
  FieldViolations bad;
  CheckText(bad, "display_name", std::string_view("abc\0def", 7), 0, 100);
  ASSERT_FALSE(bad.empty());
  auto violations = GetFieldViolations(bad.ToStatus());
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].field, "display_name");
}

TEST(CheckTextTest, ValidTextPasses) {
  EXPECT_TRUE(Text("My project", 1, 100).empty());
  EXPECT_TRUE(Text("", 0, 100).empty());  // optional
  EXPECT_TRUE(Text("   ", 0, 100).empty());
  EXPECT_TRUE(Text(std::string(100, 'x'), 1, 100).empty());
}

TEST(CheckTextTest, EmptyRequired) {
  auto v = Text("", 1, 100);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].field, "display_name");
  EXPECT_EQ(v[0].description, "is required");
}

TEST(CheckTextTest, BlankRequired) {
  for (const char* blank : {" ", "   ", "\t\n", " \r\n\v\f "}) {
    auto v = Text(blank, 1, 100);
    ASSERT_EQ(v.size(), 1u) << "[" << blank << "]";
    EXPECT_EQ(v[0].field, "display_name");
    EXPECT_EQ(v[0].description, "must not be blank");
  }
}

TEST(CheckTextTest, TooShort) {
  auto v = Text("ab", 3, 100);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].description.find("at least 3"), std::string::npos) << v[0].description;
  EXPECT_TRUE(Text("abc", 3, 100).empty());
  // Characters, not bytes: two characters are too short even though they are four bytes.
  EXPECT_EQ(Text("\xc3\xa9\xc3\xa9", 3, 100).size(), 1u);
}

TEST(CheckTextTest, TooLongCountsCharactersNotBytes) {
  EXPECT_TRUE(Text(Repeat("\xc3\xa9", 100), 1, 100).empty())
      << "100 x e-acute is 200 bytes but 100 chars";
  EXPECT_TRUE(Text(Repeat("\xf0\x9f\x98\x80", 100), 1, 100).empty());
  EXPECT_TRUE(Text(Repeat("\xe6\x97\xa5", 100), 1, 100).empty());

  auto v = Text(Repeat("\xc3\xa9", 101), 1, 100);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].field, "display_name");
  EXPECT_NE(v[0].description.find("at most 100"), std::string::npos) << v[0].description;
  EXPECT_NE(v[0].description.find("101"), std::string::npos) << v[0].description;

  EXPECT_EQ(Text(std::string(101, 'x'), 1, 100).size(), 1u);
}

TEST(CheckTextTest, InvalidUtf8) {
  for (std::string bad : {std::string("abc\xff"), std::string("\xc3"), std::string("ok\x80ok")}) {
    auto v = Text(bad, 0, 100);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].field, "display_name");
    EXPECT_NE(v[0].description.find("UTF-8"), std::string::npos) << v[0].description;
  }
}

TEST(CheckTextTest, ViolationsAccumulateAcrossFields) {
  FieldViolations bad;
  CheckText(bad, "a", "", 1, 10);
  CheckText(bad, "b", "fine", 1, 10);
  CheckText(bad, "c", std::string(11, 'x'), 1, 10);
  CheckUuid(bad, "d", "nope", false);
  auto v = GetFieldViolations(bad.ToStatus());
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].field, "a");
  EXPECT_EQ(v[1].field, "c");
  EXPECT_EQ(v[2].field, "d");
}

TEST(CheckUuidTest, Valid) {
  EXPECT_TRUE(Uuid("123e4567-e89b-42d3-a456-426614174000", true).empty());
  EXPECT_TRUE(Uuid("123E4567-E89B-42D3-A456-426614174000", false).empty());
}

TEST(CheckUuidTest, RequiredMissing) {
  auto v = Uuid("", true);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].field, "project_id");
  EXPECT_EQ(v[0].description, "is required");
}

TEST(CheckUuidTest, OptionalMissing) { EXPECT_TRUE(Uuid("", false).empty()); }

TEST(CheckUuidTest, Malformed) {
  for (const char* bad :
       {"x", "123e4567e89b42d3a456426614174000", "123e4567-e89b-42d3-a456-42661417400g",
        " 123e4567-e89b-42d3-a456-426614174000"}) {
    for (bool required : {true, false}) {
      auto v = Uuid(bad, required);
      ASSERT_EQ(v.size(), 1u) << bad;
      EXPECT_EQ(v[0].field, "project_id");
      EXPECT_EQ(v[0].description, "must be a UUID");
    }
  }
}

}  // namespace
}  // namespace qai::common
