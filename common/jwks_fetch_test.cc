#include "common/jwks_fetch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/jwks_cache.h"
#include "common/jwt_verifier.h"
#include "tests/support/test_jwt.h"

namespace qai::common {
namespace {

using qai::testing::ClaimsJson;
using qai::testing::JwksJson;
using qai::testing::TestSigningKey;
using ::testing::HasSubstr;

constexpr char kIssuer[] = "https://issuer.example";

// Provider: an identity provider's JWKS endpoint on 127.0.0.1 (cpp-httplib), whose answer the
// test changes.
class Provider {
 public:
  Provider() {
    server_.Get("/.well-known/jwks.json", [this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      absl::Duration delay;
      {
        std::lock_guard lock(mu_);
        delay = delay_;
      }
      absl::SleepFor(delay);
      std::lock_guard lock(mu_);
      res.status = status_;
      if (!cache_control_.empty()) res.set_header("Cache-Control", cache_control_);
      res.set_content(body_, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Provider() {
    server_.stop();
    thread_.join();
  }
  void Serve(std::string body, std::string cache_control = "public, max-age=3600",
             int status = 200) {
    std::lock_guard lock(mu_);
    body_ = std::move(body);
    cache_control_ = std::move(cache_control);
    status_ = status;
  }
  void Delay(absl::Duration delay) {
    std::lock_guard lock(mu_);
    delay_ = delay;
  }
  std::string url() const {
    return absl::StrCat("http://127.0.0.1:", port_, "/.well-known/jwks.json");
  }
  int requests() const { return requests_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_ = 0;
  std::mutex mu_;
  std::string body_;
  std::string cache_control_;
  int status_ = 200;
  absl::Duration delay_;
};

const TestSigningKey& OldKey() {
  static const TestSigningKey key = TestSigningKey::Rsa("2024-rsa");
  return key;
}
const TestSigningKey& NewKey() {
  static const TestSigningKey key = TestSigningKey::Ec("2025-ec");
  return key;
}

const std::function<bool()> kNeverCancelled = [] { return false; };

TEST(JwksFetchTest, ReadsTheBodyAndItsFreshness) {
  Provider provider;
  provider.Serve(JwksJson({OldKey().Jwk()}), "public, max-age=600, must-revalidate");
  absl::StatusOr<JwksDocument> doc = FetchJwks(provider.url(), {}, kNeverCancelled);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->body, JwksJson({OldKey().Jwk()}));
  EXPECT_EQ(doc->max_age, absl::Seconds(600));
  provider.Serve(JwksJson({OldKey().Jwk()}), "");
  EXPECT_EQ(FetchJwks(provider.url(), {}, kNeverCancelled)->max_age, std::nullopt);
}

TEST(JwksFetchTest, ErrorsOversizedAndSlowAnswersRefused) {
  Provider provider;
  provider.Serve("{}", "", 404);
  absl::StatusOr<JwksDocument> missing = FetchJwks(provider.url(), {}, kNeverCancelled);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), absl::StrCat(provider.url(), " answered HTTP 404"));

  provider.Serve(std::string(2 << 20, ' '));
  absl::StatusOr<JwksDocument> large = FetchJwks(provider.url(), {}, kNeverCancelled);
  ASSERT_FALSE(large.ok());
  EXPECT_THAT(std::string(large.status().message()),
              HasSubstr("key set larger than 1048576 bytes"));

  provider.Serve("{}");
  provider.Delay(absl::Seconds(2));
  absl::StatusOr<JwksDocument> slow =
      FetchJwks(provider.url(), {.timeout = absl::Milliseconds(300)}, kNeverCancelled);
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded) << slow.status();
  std::atomic<bool> cancel = true;
  absl::StatusOr<JwksDocument> cancelled =
      FetchJwks(provider.url(), {}, [&] { return cancel.load(); });
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled) << cancelled.status();
}

TEST(JwksFetchTest, UrlsMustBeHttpsOrLoopback) {
  for (std::string ok :
       {"https://clerk.example.com/.well-known/jwks.json", "HTTPS://idp.example:8443/keys",
        "http://127.0.0.1:8080/jwks.json", "http://localhost/jwks", "http://[::1]:9/jwks"}) {
    EXPECT_TRUE(JwksLoaderFor(ok).ok()) << ok;
  }
  for (std::string bad : {"http://idp.example/jwks.json", "http://127.0.0.1.evil.example/jwks",
                          "ftp://idp.example/jwks.json", "file:///etc/jwks.json",
                          "https://user:secret@idp.example/jwks.json", "https:///jwks.json"}) {
    absl::StatusOr<JwksLoader> loader = JwksLoaderFor(bad);
    ASSERT_FALSE(loader.ok()) << bad;
    EXPECT_THAT(std::string(loader.status().message()), HasSubstr("QAI_JWT_JWKS"));
    EXPECT_THAT(std::string(loader.status().message()), ::testing::Not(HasSubstr("secret")));
  }
}

TEST(JwksFetchTest, FilesAreReadWhole) {
  const std::string path = ::testing::TempDir() + "/jwks-fetch-test.json";
  std::ofstream(path) << JwksJson({OldKey().Jwk()});
  absl::StatusOr<JwksLoader> loader = JwksLoaderFor(path);
  ASSERT_TRUE(loader.ok()) << loader.status();
  absl::StatusOr<JwksDocument> doc = (*loader)(kNeverCancelled);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->body, JwksJson({OldKey().Jwk()}));
  EXPECT_EQ(doc->max_age, std::nullopt);
  EXPECT_EQ((*JwksLoaderFor(path, {.max_bytes = 10}))(kNeverCancelled).status().message(),
            absl::StrCat(path, " is larger than 10 bytes"));
  std::remove(path.c_str());
  EXPECT_EQ((*loader)(kNeverCancelled).status().message(), absl::StrCat("cannot read ", path));
}

TEST(JwksFetchTest, CacheControlMaxAge) {
  EXPECT_EQ(CacheControlMaxAge("max-age=60"), absl::Seconds(60));
  EXPECT_EQ(CacheControlMaxAge("public, Max-Age=\"3600\", stale-while-revalidate=60"),
            absl::Seconds(3600));
  EXPECT_EQ(CacheControlMaxAge("max-age=600, max-age=60"), absl::Seconds(60));
  EXPECT_EQ(CacheControlMaxAge("no-cache"), absl::ZeroDuration());
  EXPECT_EQ(CacheControlMaxAge("max-age=600, no-store"), absl::ZeroDuration());
  EXPECT_EQ(CacheControlMaxAge("max-age=99999999999999999999"), absl::Hours(365 * 24));
  for (std::string nothing :
       {"", "public", "max-age=", "max-age=-5", "max-age=1h", "s-maxage=60"}) {
    EXPECT_EQ(CacheControlMaxAge(nothing), std::nullopt) << nothing;
  }
}

// The key set of a real HTTP endpoint: loaded at start, reloaded when a token names a key it
// lacks (the provider rotated), and kept when a reload fails.
TEST(JwksFetchTest, KeysFromAUrlFollowRotationAndSurviveOutages) {
  Provider provider;
  provider.Serve(JwksJson({OldKey().Jwk()}), "public, max-age=86400");
  absl::StatusOr<JwksLoader> loader = JwksLoaderFor(provider.url());
  ASSERT_TRUE(loader.ok()) << loader.status();
  absl::StatusOr<std::shared_ptr<JwksCache>> cache = JwksCache::Start(
      {.source = provider.url(),
       .load = *loader,
       .refetch_interval = absl::Milliseconds(200),
       .retry_min = absl::Minutes(1)},  // no retry of its own while the test counts requests
      false);
  ASSERT_TRUE(cache.ok()) << cache.status();
  absl::StatusOr<std::shared_ptr<const JwtVerifier>> verifier =
      JwtVerifier::Create({}, *cache, {.issuer = kIssuer});
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  auto verify = [&](const TestSigningKey& key) {
    return (*verifier)->Verify(
        key.Sign(ClaimsJson("alice", absl::Now(), absl::Minutes(5), {{"iss", kIssuer}})),
        absl::Now());
  };
  EXPECT_TRUE(verify(OldKey()).ok());
  EXPECT_EQ(provider.requests(), 1);

  // Rotation: the new key is published; the first token naming it reloads the set.
  absl::SleepFor(absl::Milliseconds(250));
  provider.Serve(JwksJson({OldKey().Jwk(), NewKey().Jwk()}), "public, max-age=86400");
  absl::StatusOr<JwtClaims> rotated = verify(NewKey());
  EXPECT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(provider.requests(), 2);

  // An outage: the reload a forged kid causes fails, and the keys held stay in use.
  absl::SleepFor(absl::Milliseconds(250));
  provider.Serve("upstream error", "", 503);
  EXPECT_EQ(verify(TestSigningKey::Ec("forged")).status().message(), "unknown token key");
  EXPECT_EQ(provider.requests(), 3);
  EXPECT_TRUE(verify(OldKey()).ok());
  EXPECT_TRUE(verify(NewKey()).ok());
  // Unknown kids within the interval cost the provider nothing.
  EXPECT_EQ(verify(TestSigningKey::Ec("forged-again")).status().message(), "unknown token key");
  EXPECT_EQ(provider.requests(), 3);
}

}  // namespace
}  // namespace qai::common
