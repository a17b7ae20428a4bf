#include "common/page_token.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "absl/status/status.h"
#include "common/status.h"

namespace qai::common {
namespace {

constexpr char kScope[] = "projects/owner:alice";
constexpr char kWebSafeAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void ExpectBadToken(const absl::StatusOr<std::string>& decoded, const std::string& context = "") {
  ASSERT_FALSE(decoded.ok()) << context << " decoded to \"" << *decoded << "\"";
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << context;
  auto violations = GetFieldViolations(decoded.status());
  ASSERT_EQ(violations.size(), 1u) << context;
  EXPECT_EQ(violations[0].field, "page_token") << context;
}

TEST(PageTokenTest, RoundTrip) {
  PageTokenCodec codec("secret-key");
  for (std::string cursor : {std::string("2024-01-01T00:00:00Z|6f1c"), std::string("x"),
                             std::string("\x00\xff binary \x01", 11), std::string(1000, 'c')}) {
    std::string token = codec.Encode(kScope, cursor);
    EXPECT_EQ(token.find(cursor), std::string::npos) << "cursor should not appear in clear";
    absl::StatusOr<std::string> decoded = codec.Decode(token, kScope);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, cursor);
  }
}

TEST(PageTokenTest, TokenIsUrlSafe) {
  PageTokenCodec codec("k");
  std::string token = codec.Encode(kScope, std::string(200, '\xfb'));
  EXPECT_EQ(token.find_first_not_of(kWebSafeAlphabet), std::string::npos) << token;
}

TEST(PageTokenTest, EmptyCursor) {
  PageTokenCodec codec("secret-key");
  std::string token = codec.Encode(kScope, "");
  EXPECT_FALSE(token.empty());
  absl::StatusOr<std::string> decoded = codec.Decode(token, kScope);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, "");
}

TEST(PageTokenTest, ScopeMismatchRefused) {
  PageTokenCodec codec("secret-key");
  std::string token = codec.Encode(kScope, "cursor-1");
  ExpectBadToken(codec.Decode(token, "projects/owner:bob"));
  ExpectBadToken(codec.Decode(token, ""));
  ExpectBadToken(codec.Decode(token, "projects/owner:alice "));
}

TEST(PageTokenTest, ScopeAndCursorBoundaryIsUnambiguous) {
  PageTokenCodec codec("k");
  // Without the scope's length in the MAC, ("ab", "c") and ("a", "bc") would sign the same bytes.
  std::string token = codec.Encode("a", "bc");
  ExpectBadToken(codec.Decode(token, "ab"));
}

// Flips every character of tokens of all three base64 tail shapes (raw size % 3 == 0, 1, 2)
// into every other character, calling check(tampered, position, token, cursor).
template <typename Check>
void ForEachChangedCharacter(const PageTokenCodec& codec, Check check) {
  for (std::string cursor :
       {std::string("cursor-12"), std::string("cursor-123"), std::string("cursor-1234")}) {
    const std::string token = codec.Encode(kScope, cursor);
    ASSERT_TRUE(codec.Decode(token, kScope).ok());
    for (size_t i = 0; i < token.size(); ++i) {
      for (char replacement : std::string(kWebSafeAlphabet) + "+/=.~ \x01\xff") {
        if (replacement == token[i]) continue;
        std::string tampered = token;
        tampered[i] = replacement;
        check(tampered, i, token, cursor,
              "cursor " + cursor + " position " + std::to_string(i) + " -> '" + replacement + "'");
      }
    }
  }
}

// Base64 decoders ignore a last character's unused bits; only the canonical spelling passes.
TEST(PageTokenTest, EveryChangedCharacterRefused) {
  PageTokenCodec codec("secret-key");
  ForEachChangedCharacter(codec, [&](const std::string& tampered, size_t, const std::string&,
                                     const std::string&, const std::string& context) {
    ExpectBadToken(codec.Decode(tampered, kScope), context);
  });
}

TEST(PageTokenTest, TruncatedOrExtendedRefused) {
  PageTokenCodec codec("secret-key");
  const std::string token = codec.Encode(kScope, "some-cursor-value");
  for (size_t len = 0; len < token.size(); ++len) {
    ExpectBadToken(codec.Decode(token.substr(0, len), kScope),
                   "prefix of length " + std::to_string(len));
  }
  ExpectBadToken(codec.Decode(token + "A", kScope), "appended A");
  ExpectBadToken(codec.Decode(token + "AAAA", kScope), "appended AAAA");
}

TEST(PageTokenTest, GarbageRefused) {
  PageTokenCodec codec("secret-key");
  for (std::string garbage :
       {std::string("not a token!"), std::string("%%%%"), std::string("\xff\xfe\x00", 3),
        std::string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), std::string(5000, 'A'),
        std::string("0")}) {
    ExpectBadToken(codec.Decode(garbage, kScope), garbage.substr(0, 40));
  }
}

TEST(PageTokenTest, ErrorNamesPageToken) {
  PageTokenCodec codec("k");
  absl::StatusOr<std::string> decoded = codec.Decode("bogus", kScope);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(decoded.status().message()).find("page_token"), std::string::npos);
  ASSERT_EQ(GetFieldViolations(decoded.status()).size(), 1u);
  EXPECT_EQ(GetFieldViolations(decoded.status())[0].field, "page_token");
}

TEST(PageTokenTest, DifferentKeysRejectEachOther) {
  PageTokenCodec a("key-a");
  PageTokenCodec b("key-b");
  PageTokenCodec a_again("key-a");
  std::string from_a = a.Encode(kScope, "cursor");
  std::string from_b = b.Encode(kScope, "cursor");
  EXPECT_NE(from_a, from_b);
  ExpectBadToken(b.Decode(from_a, kScope));
  ExpectBadToken(a.Decode(from_b, kScope));
  // Another replica with the same key accepts it.
  absl::StatusOr<std::string> decoded = a_again.Decode(from_a, kScope);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, "cursor");
}

TEST(PageTokenTest, EncodingIsDeterministic) {
  PageTokenCodec codec("k");
  EXPECT_EQ(codec.Encode(kScope, "c"), codec.Encode(kScope, "c"));
  EXPECT_NE(codec.Encode(kScope, "c"), codec.Encode("other", "c"));
}

TEST(NormalizePageSizeTest, Values) {
  EXPECT_EQ(NormalizePageSize(0).value(), 20);
  EXPECT_EQ(NormalizePageSize(1).value(), 1);
  EXPECT_EQ(NormalizePageSize(20).value(), 20);
  EXPECT_EQ(NormalizePageSize(100).value(), 100);
  EXPECT_EQ(NormalizePageSize(101).value(), 100);
  EXPECT_EQ(NormalizePageSize(2'000'000'000).value(), 100);
}

TEST(NormalizePageSizeTest, NegativeIsInvalidArgumentNamingPageSize) {
  for (int size : {-1, -100, std::numeric_limits<int>::min()}) {
    absl::StatusOr<int> normalized = NormalizePageSize(size);
    ASSERT_FALSE(normalized.ok()) << size;
    EXPECT_EQ(normalized.status().code(), absl::StatusCode::kInvalidArgument);
    auto violations = GetFieldViolations(normalized.status());
    ASSERT_EQ(violations.size(), 1u);
    EXPECT_EQ(violations[0].field, "page_size");
  }
}

}  // namespace
}  // namespace qai::common

namespace qai::common {
namespace {

TEST(KeysetPositionTest, RoundTripsAndRefusesOtherCursors) {
  PageTokenCodec codec("secret");
  const std::string id = "0b5c8c58-8f9e-4a1e-9c59-0e9a8f5f6a11";
  std::string token = EncodePosition(codec, "runs/project:x", {1795331533123456, id});
  absl::StatusOr<std::optional<KeysetPosition>> back =
      DecodePosition(codec, token, "runs/project:x");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ((*back)->micros, 1795331533123456);
  EXPECT_EQ((*back)->id, id);
  EXPECT_FALSE(DecodePosition(codec, "", "runs/project:x")->has_value())
      << "no token: the first page";
  EXPECT_EQ(DecodePosition(codec, token, "runs/project:y").status().code(),
            absl::StatusCode::kInvalidArgument);
  // A validly signed cursor of another shape is still refused.
  EXPECT_EQ(DecodePosition(codec, codec.Encode("s", "not-a-position"), "s").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qai::common
