// qai-projects as a process, signing users in with an identity provider's keys (a JWKS file, as
// a provider publishes it): RS256 and ES256 tokens of the configured issuer and audience get
// in; HS256 tokens, tokens of other issuers or audiences and tokens signed with other keys do
// not; a bad token configuration stops the service at start, naming the option.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/jwt.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "tests/e2e/harness.h"
#include "tests/support/paths.h"
#include "tests/support/pg_server.h"
#include "tests/support/test_jwt.h"

namespace qai::testing {
namespace {

namespace pb = qai::projects::v1;
using ::testing::HasSubstr;

constexpr char kIssuer[] = "https://clerk.qai.example";
constexpr char kAudience[] = "qai";

const TestSigningKey& Rsa() {
  static const TestSigningKey key = TestSigningKey::Rsa("ins_2rsa");
  return key;
}
const TestSigningKey& Ec() {
  static const TestSigningKey key = TestSigningKey::Ec("ins_2ec");
  return key;
}

// ProviderClaims: what the provider puts in a session token for `sub`.
std::string ProviderClaims(const std::string& sub,
                           nlohmann::json extra = {{"iss", kIssuer}, {"aud", kAudience}}) {
  return ClaimsJson(sub, absl::Now(), absl::Minutes(5), extra);
}

class IdentityE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_url_ = PgServer::Shared().CreateDatabase();
    absl::StatusOr<std::string> dir = MakeTempDir("qai-identity-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    jwks_path_ = dir_ + "/jwks.json";
    std::ofstream(jwks_path_) << JwksJson({Rsa().Jwk(), Ec().Jwk()});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Env: a qai-projects configuration with the provider's keys, plus `extra`.
  EnvVars Env(EnvVars extra) {
    EnvVars env = {{"QAI_DATABASE_URL", db_url_},
                   {"QAI_MESSAGES_ADDR", absl::StrCat("127.0.0.1:", FreePort())},
                   {"QAI_JWT_JWKS", jwks_path_},
                   {"QAI_JWT_ISSUER", kIssuer},
                   {"QAI_JWT_AUDIENCE", kAudience}};
    for (auto& [name, value] : extra) {
      auto same =
          std::find_if(env.begin(), env.end(), [&](const auto& e) { return e.first == name; });
      if (same != env.end()) {
        same->second = value;
      } else {
        env.emplace_back(name, value);
      }
    }
    return env;
  }

  // Start: qai-projects with Env(extra) (fails the test if it does not start).
  void Start(EnvVars extra) {
    absl::StatusOr<RunningService> svc =
        StartService("services/projects/qai-projects", Env(std::move(extra)));
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = *std::move(svc);
    stub_ = pb::ProjectService::NewStub(svc_.Channel());
  }

  // Create: CreateProject with `token` as the bearer.
  grpc::Status Create(const std::string& token, pb::Project* out) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    pb::CreateProjectRequest req;
    req.set_initial_prompt("Build a landing page");
    return stub_->CreateProject(&ctx, req, out);
  }

  void ExpectRefused(const std::string& token, const std::string& why) {
    pb::Project ignored;
    grpc::Status status = Create(token, &ignored);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << why;
    EXPECT_EQ(status.error_message(), why);
  }

  std::string db_url_;
  std::string dir_;
  std::string jwks_path_;
  RunningService svc_;
  std::unique_ptr<pb::ProjectService::Stub> stub_;
};

// The provider's keys only (no HS256 secret), as in production.
TEST_F(IdentityE2ETest, ProviderTokensGetInAndNothingElseDoes) {
  Start({{"QAI_JWT_SECRET", ""}});
  for (const TestSigningKey* key : {&Rsa(), &Ec()}) {
    pb::Project project;
    grpc::Status status = Create(key->Sign(ProviderClaims("user_" + key->alg())), &project);
    ASSERT_TRUE(status.ok()) << key->alg() << ": " << status.error_message();
    EXPECT_EQ(project.owner(), "user_" + key->alg());
  }
  // An HS256 token, signed with some key (the harness' secret, which this service does not hold)
  // or with the provider's public key (which anyone has), is never checked with a public key.
  ExpectRefused(Token("mallory", true), "unsupported token algorithm");
  ExpectRefused(Hs256Token(R"({"alg":"HS256","kid":"ins_2rsa"})", ProviderClaims("mallory"),
                           Rsa().PublicPem()),
                "unsupported token algorithm");
  ExpectRefused(
      Rsa().SignWithHeader(R"({"alg":"none","kid":"ins_2rsa"})", ProviderClaims("mallory")),
      "unsupported token algorithm");
  // Another key claiming the provider's kid, another issuer, another audience.
  ExpectRefused(TestSigningKey::Rsa("ins_2rsa").Sign(ProviderClaims("mallory")),
                "bad token signature");
  ExpectRefused(
      Rsa().Sign(ProviderClaims("mallory", {{"iss", "https://evil.example"}, {"aud", kAudience}})),
      "token issuer not accepted");
  ExpectRefused(Ec().Sign(ProviderClaims("mallory", {{"iss", kIssuer}, {"aud", "another-app"}})),
                "token audience not accepted");
  ExpectRefused(Ec().Sign(ClaimsJson("mallory", absl::Now(), absl::Hours(48),
                                     {{"iss", kIssuer}, {"aud", kAudience}})),
                "token lifetime longer than 24h");
  ExpectRefused(TestSigningKey::Ec("ins_3new").Sign(ProviderClaims("mallory")),
                "unknown token key");
}

// During development both may be set: the provider's tokens and `qai token`'s (which then
// carry the issuer and audience too: qai token --issuer --audience).
TEST_F(IdentityE2ETest, ProviderAndDevelopmentTokensTogether) {
  Start({{"QAI_JWT_SECRET", kJwtSecret}});
  const absl::Time now = absl::Now();
  common::JwtClaims dev{.subject = "dev",
                        .expires = now + absl::Hours(1),
                        .issued_at = now,
                        .issuer = kIssuer,
                        .audience = {kAudience}};
  pb::Project project;
  grpc::Status status = Create(common::SignJwt(dev, kJwtSecret), &project);
  EXPECT_TRUE(status.ok()) << status.error_message();
  status = Create(Rsa().Sign(ProviderClaims("user_1")), &project);
  EXPECT_TRUE(status.ok()) << status.error_message();
  ExpectRefused(Token("dev"), "token issuer not accepted");  // no iss
  ExpectRefused(common::SignJwt(dev, std::string(40, 'x')), "bad token signature");
}

TEST_F(IdentityE2ETest, BadTokenConfigurationsStopTheService) {
  const std::string secret(40, 's');
  struct Case {
    EnvVars env;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {{{"QAI_JWT_JWKS", ""}, {"QAI_JWT_SECRET", "short-secret"}},
            "QAI_JWT_SECRET is shorter than 32 bytes"},
           {{{"QAI_JWT_JWKS", ""}, {"QAI_JWT_SECRET", absl::StrCat("a=", secret, ",a=", secret)}},
            "QAI_JWT_SECRET entry 2 has the key id of entry 1"},
           {{{"QAI_JWT_JWKS", ""}, {"QAI_JWT_SECRET", ""}},
            "QAI_JWT_JWKS or QAI_JWT_SECRET must be set"},
           {{{"QAI_JWT_ISSUER", ""}}, "QAI_JWT_ISSUER must be set with QAI_JWT_JWKS"},
           {{{"QAI_JWT_JWKS", dir_ + "/missing.json"}}, "QAI_JWT_JWKS: cannot read"},
           {{{"QAI_JWT_JWKS", "http://idp.example/jwks.json"}},
            "QAI_JWT_JWKS must be an https:// URL"},
           {{{"QAI_JWT_MAX_LIFETIME", "0s"}}, "QAI_JWT_MAX_LIFETIME"},
       }) {
    absl::StatusOr<RunningService> refused =
        StartService("services/projects/qai-projects", Env(c.env));
    ASSERT_FALSE(refused.ok()) << c.error;
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr(c.error));
    EXPECT_THAT(std::string(refused.status().message()), ::testing::Not(HasSubstr("short-secret")));
  }
}

// A provider that cannot be reached at start does not stop the service: it refuses the
// provider's tokens, says why, and keeps trying.
TEST_F(IdentityE2ETest, AnUnreachableJwksUrlStartsAndRefusesProviderTokens) {
  Start({{"QAI_JWT_JWKS", absl::StrCat("http://127.0.0.1:", FreePort(), "/.well-known/jwks.json")},
         {"QAI_JWT_SECRET", ""}});
  ExpectRefused(Rsa().Sign(ProviderClaims("user_1")), "token keys not loaded yet");
  EXPECT_THAT(svc_.process->Output(), HasSubstr("token keys not loaded: provider tokens refused"));
}

}  // namespace
}  // namespace qai::testing
