#include "common/jwks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/base64url.h"
#include "tests/support/test_jwt.h"

namespace qai::common {
namespace {

using nlohmann::json;
using qai::testing::JwksJson;
using qai::testing::TestSigningKey;
using ::testing::HasSubstr;

const TestSigningKey& Rsa() {
  static const TestSigningKey key = TestSigningKey::Rsa("rsa-1");
  return key;
}
const TestSigningKey& Ec() {
  static const TestSigningKey key = TestSigningKey::Ec("ec-1");
  return key;
}

bool Verifies(const Jwk& key, const TestSigningKey& signer) {
  const std::string data = "header.payload";
  return VerifyWithPublicKey(key.alg, key.key.get(), data, signer.SignatureOf(data));
}

TEST(JwksTest, ParsesRsaAndP256Keys) {
  absl::StatusOr<JwkSet> set = JwkSet::Parse(JwksJson({Rsa().Jwk(), Ec().Jwk()}));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->keys().size(), 2u);
  EXPECT_TRUE(set->skipped().empty());
  EXPECT_EQ(set->keys()[0].kid, "rsa-1");
  EXPECT_EQ(set->keys()[0].alg, JwsAlg::kRs256);
  EXPECT_EQ(set->keys()[1].kid, "ec-1");
  EXPECT_EQ(set->keys()[1].alg, JwsAlg::kEs256);
  EXPECT_TRUE(Verifies(set->keys()[0], Rsa()));
  EXPECT_TRUE(Verifies(set->keys()[1], Ec()));
  // A key verifies only its own algorithm, and only its own signatures.
  EXPECT_FALSE(
      VerifyWithPublicKey(JwsAlg::kEs256, set->keys()[0].key.get(), "x", Ec().SignatureOf("x")));
  EXPECT_FALSE(Verifies(set->keys()[0], TestSigningKey::Rsa("other")));
}

// `use`, `alg` and an EC key's `crv` are optional; when present they must fit.
TEST(JwksTest, KeysForOtherUsesAlgorithmsOrTypesAreSkippedWithAReason) {
  json enc = Rsa().Jwk();
  enc["kid"] = "enc-1";
  enc["use"] = "enc";
  json rs512 = Rsa().Jwk();
  rs512["kid"] = "rs512";
  rs512["alg"] = "RS512";
  json p384 = Ec().Jwk();
  p384["kid"] = "p384";
  p384["crv"] = "P-384";
  json oct = {{"kty", "oct"}, {"kid", "hmac"}, {"k", Base64UrlEncode(std::string(32, 'k'))}};
  json bare = Ec().Jwk();
  bare.erase("use");
  bare.erase("alg");
  absl::StatusOr<JwkSet> set = JwkSet::Parse(JwksJson({enc, rs512, p384, oct, bare}));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->keys().size(), 1u);
  EXPECT_EQ(set->keys()[0].kid, "ec-1");
  EXPECT_THAT(set->skipped(),
              ::testing::ElementsAre(
                  "key 1 (kid \"enc-1\"): use \"enc\", not \"sig\"",
                  "key 2 (kid \"rs512\"): alg \"RS512\": a RSA key verifies RS256 only",
                  "key 3 (kid \"p384\"): crv \"P-384\": only P-256 keys verify tokens",
                  "key 4 (kid \"hmac\"): kty \"oct\": only RSA and EC keys verify tokens"));
}

TEST(JwksTest, BrokenKeysAreSkipped) {
  json off_curve = Ec().Jwk();
  std::string y = *Base64UrlDecode(off_curve["y"].get<std::string>());
  y[31] = static_cast<char>(y[31] ^ 1);
  off_curve["y"] = Base64UrlEncode(y);
  json padded = Rsa().Jwk();
  padded["n"] = padded["n"].get<std::string>() + "=";
  json short_x = Ec().Jwk();
  short_x["x"] = Base64UrlEncode(std::string(31, 'x'));
  json numeric_kid = Rsa().Jwk();
  numeric_kid["kid"] = 7;
  json weak = TestSigningKey::Rsa("weak", 1024).Jwk();
  absl::StatusOr<JwkSet> set =
      JwkSet::Parse(JwksJson({off_curve, padded, short_x, numeric_kid, weak, Rsa().Jwk()}));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->keys().size(), 1u);
  EXPECT_EQ(set->keys()[0].kid, "rsa-1");
  EXPECT_THAT(
      set->skipped(),
      ::testing::ElementsAre(
          HasSubstr("not a point on P-256"), HasSubstr("`n` is not base64url"),
          HasSubstr("`x` and `y` must be 32 bytes each"), HasSubstr("`kid` is not a string"),
          "key 5 (kid \"weak\"): an RSA modulus of 1024 bits (2048 to 8192 verify)"));
}

TEST(JwksTest, DocumentsWithoutUsableKeysRefused) {
  for (const auto& [text, error] : std::vector<std::pair<std::string, std::string>>{
           {"not json", "JWKS is not a JSON object"},
           {R"([1])", "JWKS is not a JSON object"},
           {R"({"keys":{}})", "JWKS has no `keys` array"},
           {R"({"keys":[]})", "JWKS has no usable RS256 or ES256 key"},
           {R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})",
            "JWKS has no usable RS256 or ES256 key (key 1: kty \"oct\": only RSA and EC keys "
            "verify tokens)"},
       }) {
    absl::StatusOr<JwkSet> set = JwkSet::Parse(text);
    ASSERT_FALSE(set.ok()) << text;
    EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(set.status().message()), error);
  }
  std::vector<json> many(kMaxJwks + 1, Ec().Jwk());
  EXPECT_EQ(std::string(JwkSet::Parse(JwksJson(many)).status().message()),
            "JWKS has more than 64 keys");
}

TEST(JwksTest, FindChoosesByKidAndAlgorithm) {
  json second_rsa = TestSigningKey::Rsa("rsa-2").Jwk();
  absl::StatusOr<JwkSet> set = JwkSet::Parse(JwksJson({Rsa().Jwk(), second_rsa, Ec().Jwk()}));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set->Find("rsa-2", JwsAlg::kRs256))->kid, "rsa-2");
  EXPECT_EQ((*set->Find("ec-1", JwsAlg::kEs256))->kid, "ec-1");
  // Without a kid, only a single candidate of the algorithm will do.
  EXPECT_EQ((*set->Find(std::nullopt, JwsAlg::kEs256))->kid, "ec-1");
  EXPECT_EQ(std::string(set->Find(std::nullopt, JwsAlg::kRs256).status().message()),
            "token names no key (kid) and several could verify it");
  // An unknown kid is NOT_FOUND (the set may be stale); a kid of the wrong type is a refusal.
  EXPECT_EQ(set->Find("rsa-3", JwsAlg::kRs256).status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<const Jwk*> mismatch = set->Find("ec-1", JwsAlg::kRs256);
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(std::string(mismatch.status().message()), "token algorithm does not match its key");
  // No HS256 key ever comes from a key set.
  EXPECT_EQ(set->Find(std::nullopt, JwsAlg::kHs256).status().code(),
            absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace qai::common
