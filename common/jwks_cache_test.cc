#include "common/jwks_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/jwt_verifier.h"
#include "tests/support/test_jwt.h"

namespace qai::common {
namespace {

using qai::testing::ClaimsJson;
using qai::testing::JwksJson;
using qai::testing::TestSigningKey;

const TestSigningKey& OldKey() {
  static const TestSigningKey key = TestSigningKey::Ec("2024");
  return key;
}
const TestSigningKey& NewKey() {
  static const TestSigningKey key = TestSigningKey::Ec("2025");
  return key;
}

// Source: what the fake provider serves, changed by the test while the cache runs.
class Source {
 public:
  void Serve(std::string body, std::optional<absl::Duration> max_age = std::nullopt) {
    std::lock_guard lock(mu_);
    answer_ = JwksDocument{.body = std::move(body), .max_age = max_age};
  }
  void Fail() {
    std::lock_guard lock(mu_);
    answer_ = absl::UnavailableError("provider down");
  }
  void Delay(absl::Duration delay) {
    std::lock_guard lock(mu_);
    delay_ = delay;
  }
  JwksLoader Loader() {
    return [this](const std::function<bool()>& cancelled) {
      absl::Duration delay;
      {
        std::lock_guard lock(mu_);
        delay = delay_;
      }
      // Slow, as a fetch over the network can be, and cancellable like one.
      for (const absl::Time until = absl::Now() + delay; absl::Now() < until && !cancelled();) {
        absl::SleepFor(absl::Milliseconds(5));
      }
      std::lock_guard lock(mu_);
      return answer_;
    };
  }

 private:
  std::mutex mu_;
  absl::StatusOr<JwksDocument> answer_ = absl::UnavailableError("nothing served yet");
  absl::Duration delay_;
};

std::shared_ptr<JwksCache> Start(Source& source, JwksCacheOptions options = {}) {
  options.source = "test";
  options.load = source.Loader();
  absl::StatusOr<std::shared_ptr<JwksCache>> cache = JwksCache::Start(std::move(options), false);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.value_or(nullptr);
}

absl::Status VerifyWith(const std::shared_ptr<JwksCache>& cache, const TestSigningKey& key) {
  absl::StatusOr<std::shared_ptr<const JwtVerifier>> verifier =
      JwtVerifier::Create({}, cache, {.issuer = "https://issuer.example"});
  if (!verifier.ok()) return verifier.status();
  const std::string token = key.Sign(
      ClaimsJson("alice", absl::Now(), absl::Minutes(5), {{"iss", "https://issuer.example"}}));
  return (*verifier)->Verify(token, absl::Now()).status();
}

// A provider rotating its keys publishes the new one, then signs with it: the first token
// naming it makes the cache reload.
TEST(JwksCacheTest, AnUnknownKidReloadsTheKeys) {
  Source source;
  source.Serve(JwksJson({OldKey().Jwk()}));
  std::shared_ptr<JwksCache> cache = Start(source, {.refetch_interval = absl::ZeroDuration()});
  ASSERT_TRUE(VerifyWith(cache, OldKey()).ok());
  const uint64_t version = cache->version();
  source.Serve(JwksJson({OldKey().Jwk(), NewKey().Jwk()}));
  absl::Status status = VerifyWith(cache, NewKey());
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(cache->LoadsForTest(), 2);
  EXPECT_NE(cache->version(), version);
  EXPECT_TRUE(VerifyWith(cache, OldKey()).ok());
  EXPECT_EQ(cache->LoadsForTest(), 2);  // a known kid costs no load
}

TEST(JwksCacheTest, UnknownKidsReloadAtMostOncePerInterval) {
  Source source;
  source.Serve(JwksJson({OldKey().Jwk()}));
  std::shared_ptr<JwksCache> cache = Start(source, {.refetch_interval = absl::Hours(1)});
  for (int i = 0; i < 5; ++i) {
    absl::Status status = VerifyWith(cache, TestSigningKey::Ec(absl::StrCat("forged-", i)));
    EXPECT_EQ(status.message(), "unknown token key");
  }
  EXPECT_EQ(cache->LoadsForTest(), 1);  // the load at start only
}

TEST(JwksCacheTest, AFailedReloadKeepsTheLastGoodKeys) {
  Source source;
  source.Serve(JwksJson({OldKey().Jwk()}));
  std::shared_ptr<JwksCache> cache = Start(source, {.refetch_interval = absl::ZeroDuration()});
  const uint64_t version = cache->version();
  source.Fail();
  EXPECT_EQ(VerifyWith(cache, NewKey()).message(), "unknown token key");
  EXPECT_EQ(cache->LoadsForTest(), 2);
  EXPECT_TRUE(VerifyWith(cache, OldKey()).ok());
  EXPECT_EQ(cache->version(), version);
  // A set that does not parse is a failure too, not an empty set.
  source.Serve(R"({"keys":[]})");
  EXPECT_EQ(VerifyWith(cache, NewKey()).message(), "unknown token key");
  EXPECT_TRUE(VerifyWith(cache, OldKey()).ok());
}

TEST(JwksCacheTest, AFirstLoadThatFailsIsRetried) {
  Source source;
  absl::StatusOr<std::shared_ptr<JwksCache>> required =
      JwksCache::Start({.source = "test", .load = source.Loader()}, /*require_first=*/true);
  ASSERT_FALSE(required.ok());
  EXPECT_EQ(required.status().message(), "nothing served yet");

  std::shared_ptr<JwksCache> cache = Start(source, {.refetch_interval = absl::ZeroDuration()});
  EXPECT_EQ(cache->Keys(), nullptr);
  EXPECT_EQ(VerifyWith(cache, OldKey()).message(), "token keys not loaded yet");
  source.Serve(JwksJson({OldKey().Jwk()}));
  EXPECT_TRUE(VerifyWith(cache, OldKey()).ok());
}

// Freshness comes from the source (max-age), within the bounds; a no-cache answer is still
// kept for min_refresh.
TEST(JwksCacheTest, RefreshesWhenTheSourceSaysItIsStale) {
  Source source;
  source.Serve(JwksJson({OldKey().Jwk()}), absl::Milliseconds(100));
  std::shared_ptr<JwksCache> fast = Start(source, {.min_refresh = absl::Milliseconds(50)});
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (fast->LoadsForTest() < 4 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_GE(fast->LoadsForTest(), 4);

  source.Serve(JwksJson({OldKey().Jwk()}), absl::ZeroDuration());
  std::shared_ptr<JwksCache> bounded = Start(source, {.min_refresh = absl::Hours(1)});
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(bounded->LoadsForTest(), 1);
  // The same set again changes nothing that depends on the version.
  const uint64_t version = fast->version();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(fast->version(), version);
}

// Callers that meet the new kid while a load is under way wait for it rather than start more.
TEST(JwksCacheTest, ConcurrentMissesShareOneLoad) {
  Source source;
  source.Serve(JwksJson({OldKey().Jwk()}));
  std::shared_ptr<JwksCache> cache = Start(source, {.refetch_interval = absl::ZeroDuration()});
  source.Serve(JwksJson({OldKey().Jwk(), NewKey().Jwk()}));
  source.Delay(absl::Milliseconds(500));
  std::vector<std::thread> threads;
  std::atomic<int> verified = 0;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (VerifyWith(cache, NewKey()).ok()) ++verified;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(verified, 8);
  EXPECT_GE(cache->LoadsForTest(), 2);
  EXPECT_LE(cache->LoadsForTest(), 3);  // one more only if a thread missed just as the load ended
}

TEST(JwksCacheTest, StopsPromptlyDuringALoad) {
  Source source;
  source.Serve(JwksJson({OldKey().Jwk()}), absl::ZeroDuration());
  auto cache = Start(source, {.min_refresh = absl::Milliseconds(10)});
  source.Delay(absl::Seconds(30));  // the next refresh hangs until cancelled
  absl::SleepFor(absl::Milliseconds(100));
  const absl::Time start = absl::Now();
  cache.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

}  // namespace
}  // namespace qai::common
