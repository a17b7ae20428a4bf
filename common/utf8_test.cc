#include "common/utf8.h"

#include <gtest/gtest.h>

namespace qai::common {
namespace {

TEST(Utf8Test, ACharacterCutAtTheEndWaitsForTheNextPiece) {
  EXPECT_EQ(CompleteUtf8Prefix(""), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("abc"), 3u);
  const std::string euro = "\xE2\x82\xAC";  // 3 bytes
  EXPECT_EQ(CompleteUtf8Prefix("a" + euro), 4u);
  EXPECT_EQ(CompleteUtf8Prefix("a" + euro.substr(0, 1)), 1u);
  EXPECT_EQ(CompleteUtf8Prefix("a" + euro.substr(0, 2)), 1u);
  const std::string emoji = "\xF0\x9F\x98\x80";  // 4 bytes
  EXPECT_EQ(CompleteUtf8Prefix(emoji.substr(0, 3)), 0u);
  EXPECT_EQ(CompleteUtf8Prefix(emoji), 4u);
  // Bytes that start no character are not held back: ToValidUtf8 replaces them.
  EXPECT_EQ(CompleteUtf8Prefix("a\xFF"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("\x80\x80\x80\x80\x80"), 5u);
}

TEST(Utf8Test, InvalidBytesAndNulBecomeReplacementCharacters) {
  EXPECT_EQ(ToValidUtf8("ok"), "ok");
  EXPECT_EQ(ToValidUtf8(std::string("a\0b", 3)),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(ToValidUtf8("\xFF"), "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace qai::common
