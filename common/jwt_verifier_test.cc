#include "common/jwt_verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace qai::common {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
const std::string kOldKey = "old-hs256-key-0123456789abcdef-0123456789";
const std::string kNewKey = "new-hs256-key-0123456789abcdef-0123456789";

JwtClaims Claims(std::string subject = "user-1") {
  return {.subject = std::move(subject), .expires = kNow + absl::Hours(1), .issued_at = kNow};
}

std::shared_ptr<const JwtVerifier> MustCreate(std::vector<HmacKey> keys, JwtPolicy policy = {}) {
  absl::StatusOr<std::shared_ptr<const JwtVerifier>> verifier = JwtVerifier::Create(std::move(keys), std::move(policy));
  EXPECT_TRUE(verifier.ok()) << verifier.status();
  return verifier.value_or(nullptr);
}

void ExpectRefused(const absl::StatusOr<JwtClaims>& result, std::string_view message) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(std::string(result.status().message()), std::string(message));
}

TEST(ParseHmacKeysTest, OneSecretOrNamedEntries) {
  absl::StatusOr<std::vector<HmacKey>> one = ParseHmacKeys(kOldKey);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].kid, "");
  EXPECT_EQ((*one)[0].secret, kOldKey);

  absl::StatusOr<std::vector<HmacKey>> two = ParseHmacKeys(absl::StrCat("2024=", kOldKey, ", 2025.b=", kNewKey));
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].kid, "2024");
  EXPECT_EQ((*two)[0].secret, kOldKey);
  EXPECT_EQ((*two)[1].kid, "2025.b");
  EXPECT_EQ((*two)[1].secret, kNewKey);

  EXPECT_TRUE(ParseHmacKeys("")->empty());
}

// A base64 secret ends in '=', and anything that is not a list of kid=secret stays one secret.
TEST(ParseHmacKeysTest, SecretsThatMerelyContainEqualsStayWhole) {
  for (std::string value : {std::string("q2T3RvbWFsbG9jYXRlZC1ieXRlcy0wMTIzNDU2Nzg5YWJj="),
                            absl::StrCat("a-kid-much-longer-than-24-characters=", kOldKey),
                            absl::StrCat("2024=", kOldKey, ",", kNewKey)}) {
    absl::StatusOr<std::vector<HmacKey>> keys = ParseHmacKeys(value);
    ASSERT_TRUE(keys.ok()) << keys.status();
    ASSERT_EQ(keys->size(), 1u);
    EXPECT_EQ((*keys)[0].kid, "");
    EXPECT_EQ((*keys)[0].secret, value);
  }
}

TEST(ParseHmacKeysTest, ShortSecretsAndRepeatedNamesRefusedWithoutEchoingThem) {
  struct Case {
    std::string value;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"short-secret", "QAI_JWT_SECRET is shorter than 32 bytes (make one with: openssl rand -hex 32)"},
           {std::string(31, 'x'), "QAI_JWT_SECRET is shorter than 32 bytes (make one with: openssl rand -hex 32)"},
           {absl::StrCat("a=", kOldKey, ",b=tiny-secret"),
            "QAI_JWT_SECRET entry 2 is shorter than 32 bytes (make one with: openssl rand -hex 32)"},
           {absl::StrCat("a=", kOldKey, ",a=", kNewKey), "QAI_JWT_SECRET entry 2 has the key id of entry 1"},
       }) {
    absl::StatusOr<std::vector<HmacKey>> keys = ParseHmacKeys(c.value);
    ASSERT_FALSE(keys.ok()) << c.value;
    EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(keys.status().message(), c.error);
    EXPECT_THAT(std::string(keys.status().message()), ::testing::Not(HasSubstr("tiny-secret")));
  }
  EXPECT_TRUE(ParseHmacKeys(std::string(32, 'x')).ok());
  std::string many;
  for (int i = 0; i <= static_cast<int>(kMaxHmacKeys); ++i) absl::StrAppend(&many, i ? "," : "", "k", i, "=", kOldKey);
  EXPECT_EQ(ParseHmacKeys(many).status().message(), "QAI_JWT_SECRET has more than 16 keys");
}

TEST(JwtVerifierTest, RefusesToBeCreatedWithoutKeysOrWithShortOnes) {
  absl::StatusOr<std::shared_ptr<const JwtVerifier>> none = JwtVerifier::Create({}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::shared_ptr<const JwtVerifier>> empty = JwtVerifier::Create({{"", ""}}, {});
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("shorter than 32 bytes"));
}

// Rotation: both keys verify the tokens signed with them, each chosen by the token's kid.
TEST(JwtVerifierTest, RotationAcceptsEveryNamedKey) {
  std::shared_ptr<const JwtVerifier> verifier = MustCreate({{"2024", kOldKey}, {"2025", kNewKey}});
  absl::StatusOr<JwtClaims> old_token = verifier->Verify(SignJwt(Claims("a"), kOldKey, "2024"), kNow);
  ASSERT_TRUE(old_token.ok()) << old_token.status();
  EXPECT_EQ(old_token->subject, "a");
  absl::StatusOr<JwtClaims> new_token = verifier->Verify(SignJwt(Claims("b"), kNewKey, "2025"), kNow);
  ASSERT_TRUE(new_token.ok()) << new_token.status();
  EXPECT_EQ(new_token->subject, "b");
  // A kid is a lookup, not a hint: the other key never verifies in its place.
  ExpectRefused(verifier->Verify(SignJwt(Claims(), kOldKey, "2025"), kNow), "bad token signature");
}

TEST(JwtVerifierTest, KidMustNameAKeyAndIsNeededAmongSeveral) {
  std::shared_ptr<const JwtVerifier> two = MustCreate({{"2024", kOldKey}, {"2025", kNewKey}});
  ExpectRefused(two->Verify(SignJwt(Claims(), kOldKey, "2023"), kNow), "unknown token key");
  ExpectRefused(two->Verify(SignJwt(Claims(), kOldKey), kNow),
                "token names no key (kid) and several could verify it");

  // One key: a token without kid is checked with it; an unnamed key matches no kid.
  std::shared_ptr<const JwtVerifier> named = MustCreate({{"2025", kNewKey}});
  EXPECT_TRUE(named->Verify(SignJwt(Claims(), kNewKey), kNow).ok());
  std::shared_ptr<const JwtVerifier> unnamed = MustCreate({{"", kNewKey}});
  EXPECT_TRUE(unnamed->Verify(SignJwt(Claims(), kNewKey), kNow).ok());
  ExpectRefused(unnamed->Verify(SignJwt(Claims(), kNewKey, "2025"), kNow), "unknown token key");
}

TEST(JwtVerifierTest, PolicyApplies) {
  std::shared_ptr<const JwtVerifier> verifier =
      MustCreate({{"", kNewKey}}, {.issuer = "https://issuer.example", .max_lifetime = absl::Hours(2)});
  JwtClaims claims = Claims();
  ExpectRefused(verifier->Verify(SignJwt(claims, kNewKey), kNow), "token issuer not accepted");
  claims.issuer = "https://issuer.example";
  EXPECT_TRUE(verifier->Verify(SignJwt(claims, kNewKey), kNow).ok());
  claims.expires = kNow + absl::Hours(3);
  ExpectRefused(verifier->Verify(SignJwt(claims, kNewKey), kNow), "token lifetime longer than 2h");
}

TEST(ChooseSigningKeyTest, TheNamedOrTheOnlyKey) {
  const std::vector<HmacKey> two = {{"2024", kOldKey}, {"2025", kNewKey}};
  EXPECT_EQ(ChooseSigningKey(two, "2025")->secret, kNewKey);
  EXPECT_EQ(ChooseSigningKey(two, "").status().message(), "QAI_JWT_SECRET holds several keys: name one (kid)");
  EXPECT_EQ(ChooseSigningKey(two, "2026").status().message(), "QAI_JWT_SECRET has no key of that name (kid)");
  EXPECT_EQ(ChooseSigningKey({{"", kOldKey}}, "")->secret, kOldKey);
  EXPECT_EQ(ChooseSigningKey({{"", kOldKey}}, "x").status().message(),
            "QAI_JWT_SECRET names no key: give it as kid=secret");
  EXPECT_EQ(ChooseSigningKey({{"2025", kNewKey}}, "")->kid, "2025");
  EXPECT_FALSE(ChooseSigningKey({}, "").ok());
}

}  // namespace
}  // namespace qai::common
