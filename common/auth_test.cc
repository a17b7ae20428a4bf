#include "common/auth.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/jwt.h"
#include "common/jwt_verifier.h"

namespace qai::common {
namespace {

constexpr std::string_view kSecret = "jwt-secret-for-tests-0123456789abcdef";
constexpr std::string_view kServiceKey = "service-key-abcdef";
constexpr std::string_view kOtherServiceKey = "another-service-key";
const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

// Tokens: a verifier of HS256 tokens keyed by `secret` (none when empty).
std::shared_ptr<const JwtVerifier> Tokens(std::string secret = std::string(kSecret)) {
  if (secret.empty()) return nullptr;
  absl::StatusOr<std::shared_ptr<const JwtVerifier>> verifier =
      JwtVerifier::Create({{"", std::move(secret)}}, {});
  EXPECT_TRUE(verifier.ok()) << verifier.status();
  return verifier.value_or(nullptr);
}

Authenticator MakeAuthenticator(std::string secret = std::string(kSecret)) {
  absl::StatusOr<Authenticator> auth = Authenticator::Create(
      Tokens(std::move(secret)),
      {"messages=" + Sha256Hex(kOtherServiceKey),
       " orchestrator = " + absl::AsciiStrToUpper(Sha256Hex(kServiceKey)) + "  ",
       "orchestrator=" + Sha256Hex("the orchestrator's next key")});
  EXPECT_TRUE(auth.ok()) << auth.status();
  return *std::move(auth);
}

std::string Token(std::vector<std::string> roles = {}, std::string_view secret = kSecret) {
  return SignJwt({.subject = "user-7",
                  .roles = std::move(roles),
                  .expires = kNow + absl::Hours(1),
                  .issued_at = kNow},
                 secret);
}

void ExpectUnauthenticated(const absl::StatusOr<Principal>& result) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated) << result.status();
}

TEST(AuthTest, RoleNames) {
  EXPECT_EQ(RoleName(Role::kUser), "USER");
  EXPECT_EQ(RoleName(Role::kAdmin), "ADMIN");
  EXPECT_EQ(RoleName(Role::kService), "SERVICE");
}

TEST(AuthTest, Sha256HexKnownVector) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AuthTest, BearerTokenGivesUser) {
  absl::StatusOr<Principal> who =
      MakeAuthenticator().Authenticate(absl::StrCat("Bearer ", Token()), std::nullopt, kNow);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->id, "user-7");
  EXPECT_EQ(who->role, Role::kUser);
}

// A verified token is remembered, but only for as long as it is valid.
TEST(AuthTest, RememberedTokenStillExpires) {
  Authenticator auth = MakeAuthenticator();
  const std::string header = absl::StrCat("Bearer ", Token());
  ASSERT_TRUE(auth.Authenticate(header, std::nullopt, kNow).ok());
  absl::StatusOr<Principal> again =
      auth.Authenticate(header, std::nullopt, kNow + absl::Minutes(59));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, "user-7");
  // exp is kNow + 1h, plus 30 s of leeway.
  EXPECT_TRUE(
      auth.Authenticate(header, std::nullopt, kNow + absl::Hours(1) + absl::Seconds(29)).ok());
  EXPECT_EQ(auth.Authenticate(header, std::nullopt, kNow + absl::Hours(1) + absl::Seconds(30))
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  // A token that failed is not remembered as good: a tampered one stays refused.
  std::string tampered = header;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(auth.Authenticate(tampered, std::nullopt, kNow).ok());
  EXPECT_FALSE(auth.Authenticate(tampered, std::nullopt, kNow).ok());
}

TEST(AuthTest, AdminRoleGivesAdmin) {
  absl::StatusOr<Principal> who = MakeAuthenticator().Authenticate(
      absl::StrCat("Bearer ", Token({"reader", "admin"})), std::nullopt, kNow);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->role, Role::kAdmin);
  // A token cannot make itself a service.
  who = MakeAuthenticator().Authenticate(absl::StrCat("Bearer ", Token({"service"})), std::nullopt,
                                         kNow);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->role, Role::kUser);
}

TEST(AuthTest, SchemeIsCaseInsensitive) {
  for (std::string_view scheme : {"bearer ", "BEARER ", "BeArEr  "}) {
    absl::StatusOr<Principal> who = MakeAuthenticator().Authenticate(
        absl::StrCat(std::string(scheme), Token()), std::nullopt, kNow);
    ASSERT_TRUE(who.ok()) << scheme << who.status();
    EXPECT_EQ(who->id, "user-7");
  }
}

TEST(AuthTest, OtherSchemesRefused) {
  Authenticator auth = MakeAuthenticator();
  for (const std::string& value :
       {absl::StrCat("Basic ", Token()), Token(), absl::StrCat("Bearer", Token()),
        std::string("Bearer "), std::string("")}) {
    ExpectUnauthenticated(auth.Authenticate(value, std::nullopt, kNow));
  }
}

TEST(AuthTest, BadBearerTokensRefused) {
  Authenticator auth = MakeAuthenticator();
  absl::StatusOr<Principal> who =
      auth.Authenticate(absl::StrCat("Bearer ", Token({}, "wrong")), std::nullopt, kNow);
  ExpectUnauthenticated(who);
  EXPECT_EQ(std::string(who.status().message()), "bad token signature");

  who = auth.Authenticate(absl::StrCat("Bearer ", Token()), std::nullopt, kNow + absl::Hours(2));
  ExpectUnauthenticated(who);
  EXPECT_EQ(std::string(who.status().message()), "token expired");
}

TEST(AuthTest, NoTokenKeysRefusesBearer) {
  Authenticator auth = MakeAuthenticator("");
  // Even a token "signed" with the empty key must not pass.
  ExpectUnauthenticated(
      auth.Authenticate(absl::StrCat("Bearer ", Token({"admin"}, "")), std::nullopt, kNow));
  // Services still get in.
  EXPECT_TRUE(auth.Authenticate(std::nullopt, kServiceKey, kNow).ok());
}

// A key names the service that holds it (a service may hold two while one replaces the other).
TEST(AuthTest, ApiKeyGivesTheServiceItWasNamedFor) {
  Authenticator auth = MakeAuthenticator();
  absl::StatusOr<Principal> who = auth.Authenticate(std::nullopt, kServiceKey, kNow);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->role, Role::kService);
  EXPECT_EQ(who->id, "service:orchestrator");
  EXPECT_EQ(who->service, "orchestrator");

  who = auth.Authenticate(std::nullopt, kOtherServiceKey, kNow);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->service, "messages");
  who = auth.Authenticate(std::nullopt, "the orchestrator's next key", kNow);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->service, "orchestrator");
}

TEST(AuthTest, BadApiKeyRefusedEvenWithGoodToken) {
  Authenticator auth = MakeAuthenticator();
  for (std::string_view key : {"nope", "", "service-key-abcdeF"}) {
    absl::StatusOr<Principal> who = auth.Authenticate(absl::StrCat("Bearer ", Token()), key, kNow);
    ExpectUnauthenticated(who);
    EXPECT_EQ(std::string(who.status().message()), "invalid api key");
  }
  // The digest itself is not a key.
  ExpectUnauthenticated(auth.Authenticate(std::nullopt, Sha256Hex(kServiceKey), kNow));
}

TEST(AuthTest, NoServiceKeysRefusesEveryKey) {
  absl::StatusOr<Authenticator> auth = Authenticator::Create(Tokens(), {"", "  "});
  ASSERT_TRUE(auth.ok()) << auth.status();
  ExpectUnauthenticated(auth->Authenticate(std::nullopt, kServiceKey, kNow));
}

TEST(AuthTest, BadDigestConfigRejected) {
  std::string good = "projects=" + Sha256Hex(kServiceKey);
  for (const std::string& entry :
       {good.substr(0, good.size() - 1), good + "0", "projects=" + std::string(63, 'a') + "g",
        std::string("projects=not-hex"), absl::StrCat(good.substr(0, good.size() - 2), "0x")}) {
    absl::StatusOr<Authenticator> auth = Authenticator::Create(Tokens(), {good, entry});
    ASSERT_FALSE(auth.ok()) << entry;
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(auth.status().message(),
              "QAI_SERVICE_KEY_SHA256 entry 2 is not a 64-digit hex SHA-256 digest");
  }
}

// A key without a name would let its holder call every internal RPC of every service: refused
// at start-up, as is one key given to two services.
TEST(AuthTest, AKeyMustNameItsServiceAndOnlyOne) {
  const std::string digest = Sha256Hex(kServiceKey);
  for (const std::string& entry :
       {digest, "=" + digest, "Orchestrator=" + digest, "9lives=" + digest, "a_b=" + digest,
        std::string(33, 'a') + "=" + digest}) {
    absl::StatusOr<Authenticator> auth = Authenticator::Create(Tokens(), {entry});
    ASSERT_FALSE(auth.ok()) << entry;
    EXPECT_EQ(auth.status().message(),
              "QAI_SERVICE_KEY_SHA256 entry 1 must be <service>=<digest>, the service's name in "
              "lower-case "
              "letters, digits and '-'");
  }
  absl::StatusOr<Authenticator> shared =
      Authenticator::Create(Tokens(), {"projects=" + digest, "messages=" + digest});
  ASSERT_FALSE(shared.ok());
  EXPECT_EQ(shared.status().message(),
            "QAI_SERVICE_KEY_SHA256 entry 2 gives the key of projects to messages too");
  EXPECT_TRUE(Authenticator::Create(Tokens(), {"a-1=" + digest, "a-1=" + digest}).ok());
}

TEST(AuthTest, MissingCredentials) {
  absl::StatusOr<Principal> who =
      MakeAuthenticator().Authenticate(std::nullopt, std::nullopt, kNow);
  ExpectUnauthenticated(who);
  EXPECT_EQ(std::string(who.status().message()),
            "missing credentials: send authorization: Bearer <token> or x-api-key");
}

TEST(AuthTest, ErrorsNeverEchoCredentials) {
  Authenticator auth = MakeAuthenticator();
  std::string forged = Token({"admin"}, "wrong-secret");
  std::string expired =
      SignJwt({.subject = "user-7", .expires = kNow - absl::Hours(1), .issued_at = kNow}, kSecret);
  std::vector<absl::StatusOr<Principal>> results = {
      auth.Authenticate(absl::StrCat("Bearer ", forged), std::nullopt, kNow),
      auth.Authenticate(absl::StrCat("Bearer ", expired), std::nullopt, kNow),
      auth.Authenticate(absl::StrCat("Basic ", forged), std::nullopt, kNow),
      auth.Authenticate(std::nullopt, "secret-looking-api-key", kNow),
  };
  for (const absl::StatusOr<Principal>& result : results) {
    ASSERT_FALSE(result.ok());
    std::string message(result.status().message());
    for (std::string_view secret :
         {std::string_view(forged), std::string_view(expired), kSecret,
          std::string_view("secret-looking-api-key"), std::string_view("wrong-secret")}) {
      EXPECT_EQ(message.find(secret), std::string::npos) << message;
    }
  }
}

TEST(AuthTest, AuthenticateCallReadsMetadata) {
  Authenticator auth = MakeAuthenticator();
  // Real tokens expire relative to absl::Now(), which AuthenticateCall uses.
  std::string token = absl::StrCat("Bearer ", SignJwt({.subject = "user-9",
                                                       .expires = absl::Now() + absl::Hours(1),
                                                       .issued_at = absl::Now()},
                                                      kSecret));
  std::multimap<grpc::string_ref, grpc::string_ref> metadata = {{"authorization", token},
                                                                {"user-agent", "test"}};
  absl::StatusOr<Principal> who = AuthenticateCall(auth, metadata);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->id, "user-9");

  std::multimap<grpc::string_ref, grpc::string_ref> service = {{"x-api-key", kServiceKey.data()}};
  who = AuthenticateCall(auth, service);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->role, Role::kService);

  who = AuthenticateCall(auth, {});
  ExpectUnauthenticated(who);
  EXPECT_EQ(std::string(who.status().message()),
            "missing credentials: send authorization: Bearer <token> or x-api-key");
}

TEST(AuthTest, AuthenticateCallRefusesDuplicateHeaders) {
  Authenticator auth = MakeAuthenticator();
  std::multimap<grpc::string_ref, grpc::string_ref> metadata = {{"x-api-key", kServiceKey.data()},
                                                                {"x-api-key", "other"}};
  ExpectUnauthenticated(AuthenticateCall(auth, metadata));
}

}  // namespace
}  // namespace qai::common
