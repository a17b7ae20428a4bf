#include "common/jwt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/jwt_verifier.h"

namespace qai::common {
namespace {

constexpr std::string_view kSecret = "test-secret-0123456789-of-32-bytes-or-more";
const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

JwtClaims ValidClaims() {
  return JwtClaims{.subject = "user-42",
                   .roles = {"reader", "admin"},
                   .expires = kNow + absl::Hours(1),
                   .not_before = kNow - absl::Minutes(1),
                   .issued_at = kNow - absl::Minutes(1)};
}

std::string B64(std::string_view s) {
  return absl::WebSafeBase64Escape(absl::string_view(s.data(), s.size()));
}

std::string Parts(std::string_view header, std::string_view payload, std::string_view sig) {
  return absl::StrCat(B64(header), ".", B64(payload), ".", std::string(sig));
}

// Signs an arbitrary payload independently of the code under test, so payload checks are
// reached past a valid signature.
std::string SignRaw(std::string_view payload_json, std::string_view secret = kSecret) {
  std::string input = absl::StrCat(B64(R"({"alg":"HS256","typ":"JWT"})"), ".", B64(payload_json));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
  return absl::StrCat(input, ".",
                      B64(std::string_view(reinterpret_cast<const char*>(mac), mac_len)));
}

// Verify: `token` checked as a service keyed by kSecret alone checks it at kNow.
absl::StatusOr<JwtClaims> Verify(std::string_view token,
                                 absl::Duration leeway = absl::Seconds(30)) {
  absl::StatusOr<std::shared_ptr<const JwtVerifier>> verifier =
      JwtVerifier::Create({{"", std::string(kSecret)}}, {.leeway = leeway});
  if (!verifier.ok()) return verifier.status();
  return (*verifier)->Verify(token, kNow);
}

absl::StatusOr<JwtClaims> VerifyWith(std::string_view token, JwtPolicy policy) {
  absl::StatusOr<std::shared_ptr<const JwtVerifier>> verifier =
      JwtVerifier::Create({{"", std::string(kSecret)}}, std::move(policy));
  if (!verifier.ok()) return verifier.status();
  return (*verifier)->Verify(token, kNow);
}

std::string Exp() { return absl::StrCat(absl::ToUnixSeconds(kNow + absl::Hours(1))); }

void ExpectUnauthenticated(const absl::StatusOr<JwtClaims>& result, std::string_view message) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(std::string(result.status().message()), message);
}

TEST(JwtTest, RoundTripKeepsClaims) {
  std::string token = SignJwt(ValidClaims(), kSecret);
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(token, '.')).size(), 3u);
  absl::StatusOr<JwtClaims> claims = Verify(token);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->subject, "user-42");
  EXPECT_EQ(claims->roles, (std::vector<std::string>{"reader", "admin"}));
  EXPECT_EQ(claims->expires, kNow + absl::Hours(1));
  ASSERT_TRUE(claims->not_before.has_value());
  EXPECT_EQ(*claims->not_before, kNow - absl::Minutes(1));
  EXPECT_EQ(claims->issued_at, kNow - absl::Minutes(1));
}

TEST(JwtTest, HeaderIsHs256Jwt) {
  std::string token = SignJwt(ValidClaims(), kSecret);
  std::string header;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token.substr(0, token.find('.')), &header));
  EXPECT_EQ(header, R"({"alg":"HS256","typ":"JWT"})");
}

TEST(JwtTest, OptionalClaimsOmitted) {
  JwtClaims claims = ValidClaims();
  claims.roles.clear();
  claims.not_before.reset();
  std::string token = SignJwt(claims, kSecret);
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  std::string payload;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(parts[1], &payload));
  EXPECT_EQ(payload.find("nbf"), std::string::npos);
  EXPECT_EQ(payload.find("roles"), std::string::npos);
  absl::StatusOr<JwtClaims> verified = Verify(token);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_TRUE(verified->roles.empty());
  EXPECT_FALSE(verified->not_before.has_value());
}

TEST(JwtTest, ExpiredRefusedBeyondLeeway) {
  JwtClaims claims = ValidClaims();
  claims.expires = kNow - absl::Seconds(31);
  ExpectUnauthenticated(Verify(SignJwt(claims, kSecret)), "token expired");
  // Within the leeway the token is still good; with no leeway it is not.
  claims.expires = kNow - absl::Seconds(10);
  std::string token = SignJwt(claims, kSecret);
  EXPECT_TRUE(Verify(token).ok());
  ExpectUnauthenticated(Verify(token, absl::ZeroDuration()), "token expired");
}

// A subject StartRun would refuse as a run's author is refused at the door, with its reason.
TEST(JwtTest, ASubjectLongerThan256CharactersIsRefused) {
  JwtClaims claims = ValidClaims();
  claims.subject = std::string(kMaxJwtSubjectChars, 'u');
  EXPECT_TRUE(Verify(SignJwt(claims, kSecret)).ok());
  claims.subject += "u";
  ExpectUnauthenticated(Verify(SignJwt(claims, kSecret)),
                        "token subject longer than 256 characters");
}

TEST(JwtTest, NotYetValidRefused) {
  JwtClaims claims = ValidClaims();
  claims.not_before = kNow + absl::Minutes(5);
  ExpectUnauthenticated(Verify(SignJwt(claims, kSecret)), "token not yet valid");
  claims.not_before = kNow + absl::Seconds(10);
  EXPECT_TRUE(Verify(SignJwt(claims, kSecret)).ok());
}

TEST(JwtTest, OtherSecretRefused) {
  std::string token = SignJwt(ValidClaims(), "some-other-secret");
  ExpectUnauthenticated(Verify(token), "bad token signature");
}

TEST(JwtTest, ChangedPayloadRefused) {
  std::string token = SignJwt(ValidClaims(), kSecret);
  size_t payload_start = token.find('.') + 1;
  // Flip one character of the payload to another valid base64url character.
  token[payload_start + 3] = token[payload_start + 3] == 'A' ? 'B' : 'A';
  ExpectUnauthenticated(Verify(token), "bad token signature");
}

TEST(JwtTest, ChangedSignatureRefused) {
  std::string token = SignJwt(ValidClaims(), kSecret);
  token.back() = token.back() == 'A' ? 'B' : 'A';
  ExpectUnauthenticated(Verify(token), "bad token signature");
  // A truncated signature is refused too, not compared as a prefix.
  std::string truncated = SignJwt(ValidClaims(), kSecret);
  truncated.pop_back();
  ExpectUnauthenticated(Verify(truncated), "bad token signature");
}

TEST(JwtTest, AlgNoneRefused) {
  std::string payload = absl::StrCat(R"({"sub":"attacker","roles":["admin"],"exp":)",
                                     absl::ToUnixSeconds(kNow + absl::Hours(1)), "}");
  std::string header = R"({"alg":"none","typ":"JWT"})";
  ExpectUnauthenticated(Verify(Parts(header, payload, "")), "unsupported token algorithm");
  ExpectUnauthenticated(Verify(Parts(header, payload, "c2ln")), "unsupported token algorithm");
  // Two parts, as some libraries emit for "none", are structurally malformed.
  ExpectUnauthenticated(Verify(absl::StrCat(B64(header), ".", B64(payload))), "malformed token");
}

TEST(JwtTest, OtherAlgorithmsRefused) {
  std::string good = SignJwt(ValidClaims(), kSecret);
  std::vector<std::string> parts = absl::StrSplit(good, '.');
  for (std::string_view header : {R"({"alg":"HS512","typ":"JWT"})", R"({"alg":"hs256"})",
                                  R"({"typ":"JWT"})", R"({"alg":256})", R"({"alg":"RS256"})"}) {
    ExpectUnauthenticated(Verify(absl::StrCat(B64(header), ".", parts[1], ".", parts[2])),
                          "unsupported token algorithm");
  }
}

TEST(JwtTest, MalformedStructureRefused) {
  std::string good = SignJwt(ValidClaims(), kSecret);
  std::vector<std::string> parts = absl::StrSplit(good, '.');
  for (const std::string& token : {
           std::string(""),
           std::string("abc"),
           absl::StrCat(parts[0], ".", parts[1]),
           absl::StrCat(good, ".", parts[2]),
           absl::StrCat("!!!.", parts[1], ".", parts[2]),          // header not base64url
           absl::StrCat(parts[0], "=.", parts[1], ".", parts[2]),  // padding not allowed
           absl::StrCat(B64("not json"), ".", parts[1], ".", parts[2]),
           absl::StrCat(B64("[1,2]"), ".", parts[1], ".", parts[2]),  // not an object
           std::string(10'000, 'a'),
       }) {
    ExpectUnauthenticated(Verify(token), "malformed token");
  }
}

TEST(JwtTest, IndependentlySignedTokenAccepted) {
  absl::StatusOr<JwtClaims> claims =
      Verify(SignRaw(absl::StrCat(R"({"sub":"u1","exp":)", Exp(), "}")));
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->subject, "u1");
  EXPECT_EQ(claims->issued_at, absl::InfinitePast());
}

TEST(JwtTest, MalformedPayloadRefused) {
  const std::string exp = Exp();
  for (const std::string& payload : {
           std::string("not json"),
           std::string(R"(["sub","exp"])"),
           absl::StrCat(R"({"sub":"u1"})"),                       // exp missing
           absl::StrCat(R"({"sub":"u1","exp":")", exp, R"("})"),  // exp a string
           absl::StrCat(R"({"sub":"u1","exp":null})"),
           absl::StrCat(R"({"sub":"u1","exp":1e300})"),                  // out of range
           absl::StrCat(R"({"exp":)", exp, "}"),                         // sub missing
           absl::StrCat(R"({"sub":"","exp":)", exp, "}"),                // sub empty
           absl::StrCat(R"({"sub":7,"exp":)", exp, "}"),                 // sub not a string
           absl::StrCat(R"({"sub":"alice\u0000bob","exp":)", exp, "}"),  // NUL in sub
           absl::StrCat(R"({"sub":"u1","exp":)", exp, R"(,"nbf":"soon"})"),
           absl::StrCat(R"({"sub":"u1","exp":)", exp, R"(,"iat":"now"})"),
           absl::StrCat(R"({"sub":"u1","exp":)", exp, R"(,"roles":"admin"})"),
           absl::StrCat(R"({"sub":"u1","exp":)", exp, R"(,"roles":["admin",1]})"),
       }) {
    SCOPED_TRACE(payload);
    ExpectUnauthenticated(Verify(SignRaw(payload)), "malformed token");
  }
}

TEST(JwtTest, ErrorsNeverEchoTokenOrSecret) {
  JwtClaims expired = ValidClaims();
  expired.expires = kNow - absl::Hours(1);
  std::string good = SignJwt(ValidClaims(), kSecret);
  for (const std::string& token :
       {SignJwt(expired, kSecret), SignJwt(ValidClaims(), "other-secret"), good.substr(1),
        SignRaw(R"({"sub":"u1"})"), Parts(R"({"alg":"none"})", R"({"sub":"u1"})", "")}) {
    absl::StatusOr<JwtClaims> result = Verify(token);
    ASSERT_FALSE(result.ok());
    std::string message(result.status().message());
    EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
    for (const std::string& part : std::vector<std::string>(absl::StrSplit(token, '.'))) {
      if (part.size() >= 8) {
        EXPECT_EQ(message.find(part), std::string::npos) << message;
      }
    }
  }
}

TEST(JwtTest, IssuerMustBeTheConfiguredOne) {
  JwtClaims claims = ValidClaims();
  claims.issuer = "https://issuer.example";
  const JwtPolicy policy{.issuer = "https://issuer.example"};
  absl::StatusOr<JwtClaims> verified = VerifyWith(SignJwt(claims, kSecret), policy);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->issuer, "https://issuer.example");
  claims.issuer = "https://issuer.example/";  // exactly, not a prefix or a near miss
  ExpectUnauthenticated(VerifyWith(SignJwt(claims, kSecret), policy), "token issuer not accepted");
  claims.issuer = "";
  ExpectUnauthenticated(VerifyWith(SignJwt(claims, kSecret), policy), "token issuer not accepted");
  // Unconfigured, any issuer (or none) passes.
  EXPECT_TRUE(Verify(SignJwt(claims, kSecret)).ok());
  ExpectUnauthenticated(Verify(SignRaw(absl::StrCat(R"({"sub":"u1","iss":7,"exp":)", Exp(), "}"))),
                        "malformed token");
}

TEST(JwtTest, AudienceMustNameAConfiguredOne) {
  const JwtPolicy policy{.audiences = {"qai", "qai-staging"}};
  JwtClaims claims = ValidClaims();
  for (std::vector<std::string> audience :
       std::vector<std::vector<std::string>>{{"qai"}, {"other", "qai-staging"}}) {
    claims.audience = audience;
    absl::StatusOr<JwtClaims> verified = VerifyWith(SignJwt(claims, kSecret), policy);
    ASSERT_TRUE(verified.ok()) << verified.status();
    EXPECT_EQ(verified->audience, audience);
  }
  for (std::vector<std::string> audience :
       std::vector<std::vector<std::string>>{{}, {"other"}, {"QAI", "qai "}}) {
    claims.audience = audience;
    ExpectUnauthenticated(VerifyWith(SignJwt(claims, kSecret), policy),
                          "token audience not accepted");
  }
  for (const char* aud : {R"(7)", R"(["qai",7])", R"({"qai":1})"}) {
    ExpectUnauthenticated(
        VerifyWith(SignRaw(absl::StrCat(R"({"sub":"u1","aud":)", aud, R"(,"exp":)", Exp(), "}")),
                   policy),
        "malformed token");
  }
}

TEST(JwtTest, LifetimeLongerThanTheMaximumRefused) {
  JwtClaims claims = ValidClaims();
  claims.issued_at = kNow;
  claims.expires = kNow + absl::Hours(24);
  EXPECT_TRUE(Verify(SignJwt(claims, kSecret)).ok());
  claims.expires += absl::Seconds(1);
  ExpectUnauthenticated(Verify(SignJwt(claims, kSecret)), "token lifetime longer than 24h");
  // Without iat, what is left of it counts.
  ExpectUnauthenticated(
      Verify(SignRaw(
          absl::StrCat(R"({"sub":"u1","exp":)", absl::ToUnixSeconds(kNow + absl::Hours(25)), "}"))),
      "token lifetime longer than 24h");
  EXPECT_TRUE(Verify(SignRaw(absl::StrCat(R"({"sub":"u1","exp":)",
                                          absl::ToUnixSeconds(kNow + absl::Hours(23)), "}")))
                  .ok());
  // An old iat cannot stretch it either: exp - iat counts, not what is left.
  claims.issued_at = kNow - absl::Hours(20);
  claims.expires = kNow + absl::Hours(5);
  ExpectUnauthenticated(Verify(SignJwt(claims, kSecret)), "token lifetime longer than 24h");
  claims.issued_at = kNow;
  claims.expires = kNow + absl::Minutes(61);
  ExpectUnauthenticated(VerifyWith(SignJwt(claims, kSecret), {.max_lifetime = absl::Hours(1)}),
                        "token lifetime longer than 1h");
}

TEST(JwtTest, IssuedInTheFutureRefusedBeyondLeeway) {
  JwtClaims claims = ValidClaims();
  claims.not_before.reset();
  claims.issued_at = kNow + absl::Seconds(20);
  EXPECT_TRUE(Verify(SignJwt(claims, kSecret)).ok());
  claims.issued_at = kNow + absl::Minutes(2);
  ExpectUnauthenticated(Verify(SignJwt(claims, kSecret)), "token issued in the future");
}

TEST(JwtTest, HeaderExtensionsAndOddKidsRefused) {
  const std::string payload = absl::StrCat(R"({"sub":"u1","exp":)", Exp(), "}");
  std::vector<std::string> parts = absl::StrSplit(SignRaw(payload), '.');
  // The signature does not matter: the header is refused first.
  ExpectUnauthenticated(
      Verify(Parts(R"({"alg":"HS256","crit":["b64"],"b64":false})", payload, parts[2])),
      "unsupported token header");
  for (std::string kid :
       {std::string("7"), std::string("null"), absl::StrCat("\"", std::string(257, 'k'), "\"")}) {
    ExpectUnauthenticated(
        Verify(Parts(absl::StrCat(R"({"alg":"HS256","kid":)", kid, "}"), payload, parts[2])),
        "malformed token");
  }
}

TEST(JwtTest, SignedKidIsInTheHeader) {
  std::string token = SignJwt(ValidClaims(), kSecret, "2025-06");
  absl::StatusOr<JwtParts> parts = SplitJwt(token);
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->alg, "HS256");
  EXPECT_EQ(parts->kid, "2025-06");
  EXPECT_FALSE(SplitJwt(SignJwt(ValidClaims(), kSecret))->kid.has_value());
}

}  // namespace
}  // namespace qai::common
