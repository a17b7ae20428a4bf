#include "common/jwt_verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base64url.h"
#include "tests/support/test_jwt.h"

namespace qai::common {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
const std::string kOldKey = "old-hs256-key-0123456789abcdef-0123456789";
const std::string kNewKey = "new-hs256-key-0123456789abcdef-0123456789";

JwtClaims Claims(std::string subject = "user-1") {
  return {.subject = std::move(subject), .expires = kNow + absl::Hours(1), .issued_at = kNow};
}

std::shared_ptr<const JwtVerifier> MustCreate(std::vector<HmacKey> keys,
                                              std::shared_ptr<JwksCache> jwks, JwtPolicy policy) {
  absl::StatusOr<std::shared_ptr<const JwtVerifier>> verifier =
      JwtVerifier::Create(std::move(keys), std::move(jwks), std::move(policy));
  EXPECT_TRUE(verifier.ok()) << verifier.status();
  return verifier.value_or(nullptr);
}

std::shared_ptr<const JwtVerifier> MustCreate(std::vector<HmacKey> keys, JwtPolicy policy = {}) {
  return MustCreate(std::move(keys), nullptr, std::move(policy));
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

  absl::StatusOr<std::vector<HmacKey>> two =
      ParseHmacKeys(absl::StrCat("2024=", kOldKey, ", 2025.b=", kNewKey));
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
           {"short-secret",
            "QAI_JWT_SECRET is shorter than 32 bytes (make one with: openssl rand -hex 32)"},
           {std::string(31, 'x'),
            "QAI_JWT_SECRET is shorter than 32 bytes (make one with: openssl rand -hex 32)"},
           {absl::StrCat("a=", kOldKey, ",b=tiny-secret"),
            "QAI_JWT_SECRET entry 2 is shorter than 32 bytes (make one with: openssl rand -hex "
            "32)"},
           {absl::StrCat("a=", kOldKey, ",a=", kNewKey),
            "QAI_JWT_SECRET entry 2 has the key id of entry 1"},
       }) {
    absl::StatusOr<std::vector<HmacKey>> keys = ParseHmacKeys(c.value);
    ASSERT_FALSE(keys.ok()) << c.value;
    EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(keys.status().message(), c.error);
    EXPECT_THAT(std::string(keys.status().message()), ::testing::Not(HasSubstr("tiny-secret")));
  }
  EXPECT_TRUE(ParseHmacKeys(std::string(32, 'x')).ok());
  std::string many;
  for (int i = 0; i <= static_cast<int>(kMaxHmacKeys); ++i)
    absl::StrAppend(&many, i ? "," : "", "k", i, "=", kOldKey);
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
  absl::StatusOr<JwtClaims> old_token =
      verifier->Verify(SignJwt(Claims("a"), kOldKey, "2024"), kNow);
  ASSERT_TRUE(old_token.ok()) << old_token.status();
  EXPECT_EQ(old_token->subject, "a");
  absl::StatusOr<JwtClaims> new_token =
      verifier->Verify(SignJwt(Claims("b"), kNewKey, "2025"), kNow);
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
  std::shared_ptr<const JwtVerifier> verifier = MustCreate(
      {{"", kNewKey}}, {.issuer = "https://issuer.example", .max_lifetime = absl::Hours(2)});
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
  EXPECT_EQ(ChooseSigningKey(two, "").status().message(),
            "QAI_JWT_SECRET holds several keys: name one (kid)");
  EXPECT_EQ(ChooseSigningKey(two, "2026").status().message(),
            "QAI_JWT_SECRET has no key of that name (kid)");
  EXPECT_EQ(ChooseSigningKey({{"", kOldKey}}, "")->secret, kOldKey);
  EXPECT_EQ(ChooseSigningKey({{"", kOldKey}}, "x").status().message(),
            "QAI_JWT_SECRET names no key: give it as kid=secret");
  EXPECT_EQ(ChooseSigningKey({{"2025", kNewKey}}, "")->kid, "2025");
  EXPECT_FALSE(ChooseSigningKey({}, "").ok());
}

// RS256 and ES256 tokens, checked with a key set as an identity provider publishes it.

using qai::testing::ClaimsJson;
using qai::testing::Hs256Token;
using qai::testing::JwksJson;
using qai::testing::TestSigningKey;

const TestSigningKey& Rsa() {
  static const TestSigningKey key = TestSigningKey::Rsa("rsa-1");
  return key;
}
const TestSigningKey& Ec() {
  static const TestSigningKey key = TestSigningKey::Ec("ec-1");
  return key;
}

constexpr char kIssuer[] = "https://clerk.qai.example";

// Jwks: a key set that loads `json` (or fails with `error` when given).
std::shared_ptr<JwksCache> Jwks(std::string json, absl::Status error = absl::OkStatus()) {
  absl::StatusOr<std::shared_ptr<JwksCache>> cache = JwksCache::Start(
      {.source = "test",
       .load = [json, error](const std::function<bool()>&) -> absl::StatusOr<JwksDocument> {
         if (!error.ok()) return error;
         return JwksDocument{.body = json, .max_age = std::nullopt};
       }},
      /*require_first=*/false);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.value_or(nullptr);
}

std::shared_ptr<const JwtVerifier> ProviderVerifier(std::vector<HmacKey> hmac = {}) {
  return MustCreate(std::move(hmac), Jwks(JwksJson({Rsa().Jwk(), Ec().Jwk()})),
                    {.issuer = kIssuer, .audiences = {"qai"}});
}

// Provider: claims as the provider issues them, at kNow.
std::string Provider(std::string sub = "user_2abc", absl::Duration ttl = absl::Minutes(5),
                     nlohmann::json extra = {{"iss", kIssuer}, {"aud", "qai"}}) {
  return ClaimsJson(sub, kNow, ttl, extra);
}

TEST(JwtVerifierJwksTest, Rs256AndEs256TokensVerify) {
  std::shared_ptr<const JwtVerifier> verifier = ProviderVerifier();
  for (const TestSigningKey* key : {&Rsa(), &Ec()}) {
    absl::StatusOr<JwtClaims> claims = verifier->Verify(
        key->Sign(Provider("user_2abc", absl::Minutes(5),
                           {{"iss", kIssuer}, {"aud", {"x", "qai"}}, {"roles", {"admin"}}})),
        kNow);
    ASSERT_TRUE(claims.ok()) << key->alg() << ": " << claims.status();
    EXPECT_EQ(claims->subject, "user_2abc");
    EXPECT_EQ(claims->issuer, kIssuer);
    EXPECT_THAT(claims->roles, ::testing::ElementsAre("admin"));
  }
}

TEST(JwtVerifierJwksTest, KidMustNameAKeyOfTheTokensAlgorithm) {
  std::shared_ptr<const JwtVerifier> verifier = ProviderVerifier();
  const std::string payload = Provider();
  // The RSA key signs, the header names the EC key (and the other way round).
  ExpectRefused(
      verifier->Verify(Rsa().SignWithHeader(R"({"alg":"RS256","kid":"ec-1"})", payload), kNow),
      "token algorithm does not match its key");
  ExpectRefused(
      verifier->Verify(Ec().SignWithHeader(R"({"alg":"ES256","kid":"rsa-1"})", payload), kNow),
      "token algorithm does not match its key");
  ExpectRefused(
      verifier->Verify(Rsa().SignWithHeader(R"({"alg":"RS256","kid":"rsa-9"})", payload), kNow),
      "unknown token key");
  // No kid: the only key of the algorithm is used.
  EXPECT_TRUE(verifier->Verify(Rsa().SignWithHeader(R"({"alg":"RS256"})", payload), kNow).ok());
  // Another RSA key that claims rsa-1's kid does not verify.
  ExpectRefused(verifier->Verify(TestSigningKey::Rsa("rsa-1").Sign(payload), kNow),
                "bad token signature");
}

TEST(JwtVerifierJwksTest, TamperedTokensRefused) {
  std::shared_ptr<const JwtVerifier> verifier = ProviderVerifier();
  for (const TestSigningKey* key : {&Rsa(), &Ec()}) {
    SCOPED_TRACE(key->alg());
    std::string token = key->Sign(Provider());
    std::string bad_signature = token;
    bad_signature[bad_signature.size() - 5] =
        bad_signature[bad_signature.size() - 5] == 'A' ? 'B' : 'A';
    ExpectRefused(verifier->Verify(bad_signature, kNow), "bad token signature");
    // Someone else's claims under this token's header and signature.
    const size_t first = token.find('.'), last = token.rfind('.');
    std::string other_claims = absl::StrCat(token.substr(0, first + 1),
                                            Base64UrlEncode(Provider("admin")), token.substr(last));
    ExpectRefused(verifier->Verify(other_claims, kNow), "bad token signature");
    ExpectRefused(verifier->Verify(token.substr(0, last + 1), kNow), "bad token signature");
  }
  // ES256 signatures are r || s; the DER form OpenSSL makes is not JWS.
  const std::string input = absl::StrCat(Base64UrlEncode(R"({"alg":"ES256","kid":"ec-1"})"), ".",
                                         Base64UrlEncode(Provider()));
  ExpectRefused(verifier->Verify(
                    absl::StrCat(input, ".", Base64UrlEncode(Ec().SignatureOf(input, true))), kNow),
                "bad token signature");
  EXPECT_TRUE(
      verifier->Verify(absl::StrCat(input, ".", Base64UrlEncode(Ec().SignatureOf(input))), kNow)
          .ok());
}

TEST(JwtVerifierJwksTest, AlgNoneRefused) {
  std::shared_ptr<const JwtVerifier> verifier = ProviderVerifier({{"", kNewKey}});
  for (std::string_view header :
       {R"({"alg":"none","kid":"rsa-1"})", R"({"alg":"none"})", R"({"alg":"None"})"}) {
    const std::string unsigned_token =
        absl::StrCat(Base64UrlEncode(header), ".", Base64UrlEncode(Provider("admin")), ".");
    ExpectRefused(verifier->Verify(unsigned_token, kNow), "unsupported token algorithm");
  }
}

// Algorithm confusion: a verifier that fed the RSA public key (which anyone has) to HMAC would
// accept this token. HS256 is only ever checked with the configured secrets.
TEST(JwtVerifierJwksTest, Hs256SignedWithThePublicKeyRefused) {
  const std::string pem = Rsa().PublicPem();
  const std::string jwk_text = Rsa().Jwk().dump();
  for (const std::string& fake_secret :
       {pem, jwk_text, *Base64UrlDecode(Rsa().Jwk()["n"].get<std::string>())}) {
    const std::string named =
        Hs256Token(R"({"alg":"HS256","kid":"rsa-1"})", Provider("admin"), fake_secret);
    const std::string unnamed = Hs256Token(R"({"alg":"HS256"})", Provider("admin"), fake_secret);
    ExpectRefused(ProviderVerifier()->Verify(named, kNow), "unsupported token algorithm");
    ExpectRefused(ProviderVerifier()->Verify(unnamed, kNow), "unsupported token algorithm");
    ExpectRefused(ProviderVerifier({{"", kNewKey}})->Verify(named, kNow), "unknown token key");
    ExpectRefused(ProviderVerifier({{"", kNewKey}})->Verify(unnamed, kNow), "bad token signature");
  }
}

// And the other way round: an RS256 or ES256 header is never checked with the HS256 secret.
TEST(JwtVerifierJwksTest, PublicKeyAlgorithmsNeverCheckedWithTheSecret) {
  std::shared_ptr<const JwtVerifier> hs_only = MustCreate({{"", kNewKey}}, {.issuer = kIssuer});
  std::shared_ptr<const JwtVerifier> both = ProviderVerifier({{"", kNewKey}});
  for (std::string_view header :
       {R"({"alg":"RS256"})", R"({"alg":"ES256"})", R"({"alg":"RS256","kid":"rsa-1"})"}) {
    const std::string token = Hs256Token(header, Provider(), kNewKey);
    ExpectRefused(hs_only->Verify(token, kNow), "unsupported token algorithm");
    ExpectRefused(both->Verify(token, kNow), "bad token signature");
  }
  ExpectRefused(hs_only->Verify(Rsa().Sign(Provider()), kNow), "unsupported token algorithm");
}

TEST(JwtVerifierJwksTest, IssuerAudienceAndLifetimeChecked) {
  std::shared_ptr<const JwtVerifier> verifier = ProviderVerifier();
  ExpectRefused(
      verifier->Verify(Rsa().Sign(Provider("u", absl::Minutes(5),
                                           {{"iss", "https://evil.example"}, {"aud", "qai"}})),
                       kNow),
      "token issuer not accepted");
  ExpectRefused(verifier->Verify(Rsa().Sign(Provider("u", absl::Minutes(5),
                                                     {{"iss", kIssuer}, {"aud", "another-app"}})),
                                 kNow),
                "token audience not accepted");
  ExpectRefused(
      verifier->Verify(Rsa().Sign(Provider("u", absl::Minutes(5), {{"iss", kIssuer}})), kNow),
      "token audience not accepted");
  ExpectRefused(verifier->Verify(Ec().Sign(Provider()), kNow + absl::Minutes(6)), "token expired");
  ExpectRefused(verifier->Verify(Ec().Sign(Provider("u", absl::Hours(25))), kNow),
                "token lifetime longer than 24h");
}

// A provider whose keys could not be fetched yet: its tokens are refused, and say why.
TEST(JwtVerifierJwksTest, KeysNotLoadedYetRefused) {
  std::shared_ptr<const JwtVerifier> verifier =
      MustCreate({}, Jwks("", absl::UnavailableError("connection refused")), {.issuer = kIssuer});
  ExpectRefused(verifier->Verify(Rsa().Sign(Provider()), kNow), "token keys not loaded yet");
}

}  // namespace
}  // namespace qai::common
