#include "common/rate_limit.h"

#include <atomic>
#include <thread>
#include <vector>

#include "common/status.h"
#include "gtest/gtest.h"

namespace qai::common {
namespace {

// FakeClock: time moves only when a test says so.
struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1000000);
  RateLimiter::Clock clock() {
    return [this] { return now; };
  }
};

TEST(RateLimiterTest, OffWhenRateIsZero) {
  RateLimiter limiter({.rate = 0, .burst = 1});
  for (int i = 0; i < 100; ++i)
    EXPECT_TRUE(limiter.Acquire({.id = "alice", .role = Role::kUser}).ok());
  EXPECT_EQ(limiter.TrackedForTest(), 0u);
}

TEST(RateLimiterTest, BurstThenRefusedWithRetryDelay) {
  FakeClock t;
  RateLimiter limiter({.rate = 2, .burst = 3}, t.clock());
  const Principal alice{.id = "alice", .role = Role::kUser};
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Acquire(alice).ok()) << i;
  absl::Status refused = limiter.Acquire(alice);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("QAI_RATE_LIMIT"), std::string_view::npos) << refused;
  ASSERT_TRUE(GetRetryDelay(refused).has_value());
  EXPECT_EQ(*GetRetryDelay(refused), absl::Milliseconds(500));  // one token at 2/s
}

TEST(RateLimiterTest, RefillsAtTheRateUpToTheBurst) {
  FakeClock t;
  RateLimiter limiter({.rate = 10, .burst = 5}, t.clock());
  for (int i = 0; i < 5; ++i) ASSERT_EQ(limiter.TryTake("k"), absl::ZeroDuration());
  EXPECT_EQ(limiter.TryTake("k"), absl::Milliseconds(100));
  t.now += absl::Milliseconds(99);
  EXPECT_EQ(limiter.TryTake("k"), absl::Milliseconds(1));
  t.now += absl::Milliseconds(1);
  EXPECT_EQ(limiter.TryTake("k"), absl::ZeroDuration());
  // A long pause refills no more than the burst.
  t.now += absl::Hours(1);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limiter.TryTake("k"), absl::ZeroDuration()) << i;
  EXPECT_GT(limiter.TryTake("k"), absl::ZeroDuration());
}

TEST(RateLimiterTest, WaitingTheRetryDelayFindsAToken) {
  FakeClock t;
  RateLimiter limiter({.rate = 3, .burst = 1}, t.clock());
  ASSERT_EQ(limiter.TryTake("k"), absl::ZeroDuration());
  const absl::Duration wait = limiter.TryTake("k");
  ASSERT_GT(wait, absl::ZeroDuration());
  t.now += wait;
  EXPECT_EQ(limiter.TryTake("k"), absl::ZeroDuration());
}

// Wait tells how long until a bucket has a token without taking one: the auth-failure throttle
// asks it before every call and takes a token only when a call fails.
TEST(RateLimiterTest, WaitTakesNothingAndTellsWhenATokenIsThere) {
  FakeClock t;
  RateLimiter limiter({.rate = 1, .burst = 2}, t.clock());
  EXPECT_EQ(limiter.Wait("k"), absl::ZeroDuration());  // never seen: a full bucket
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limiter.Wait("k"), absl::ZeroDuration());
  ASSERT_EQ(limiter.TryTake("k"), absl::ZeroDuration());
  EXPECT_EQ(limiter.Wait("k"), absl::ZeroDuration());  // one token left
  ASSERT_EQ(limiter.TryTake("k"), absl::ZeroDuration());
  EXPECT_EQ(limiter.Wait("k"), absl::Seconds(1));
  t.now += absl::Milliseconds(400);
  EXPECT_EQ(limiter.Wait("k"), absl::Milliseconds(600));
  t.now += absl::Milliseconds(600);
  EXPECT_EQ(limiter.Wait("k"), absl::ZeroDuration());
  EXPECT_EQ(limiter.TryTake("k"), absl::ZeroDuration());
  EXPECT_EQ(RateLimiter({.rate = 0, .burst = 1}).Wait("k"), absl::ZeroDuration());
}

TEST(RateLimiterTest, PrincipalsHaveTheirOwnBucketsAndServicesAreExempt) {
  FakeClock t;
  RateLimiter limiter({.rate = 1, .burst = 1}, t.clock());
  EXPECT_TRUE(limiter.Acquire({.id = "alice", .role = Role::kUser}).ok());
  EXPECT_FALSE(limiter.Acquire({.id = "alice", .role = Role::kUser}).ok());
  EXPECT_TRUE(limiter.Acquire({.id = "bob", .role = Role::kUser}).ok());
  // The same subject as an admin is another principal.
  EXPECT_TRUE(limiter.Acquire({.id = "alice", .role = Role::kAdmin}).ok());
  for (int i = 0; i < 50; ++i)
    EXPECT_TRUE(limiter.Acquire({.id = "service:abc", .role = Role::kService}).ok());
  EXPECT_EQ(limiter.TrackedForTest(), 3u);
}

TEST(RateLimiterTest, EvictsTheLeastRecentlyUsedBucketBeyondTheMaximum) {
  FakeClock t;
  RateLimiter limiter({.rate = 1, .burst = 1, .max_principals = 2}, t.clock());
  ASSERT_EQ(limiter.TryTake("a"), absl::ZeroDuration());
  ASSERT_EQ(limiter.TryTake("b"), absl::ZeroDuration());
  EXPECT_GT(limiter.TryTake("a"), absl::ZeroDuration());  // a is now the most recent
  ASSERT_EQ(limiter.TryTake("c"), absl::ZeroDuration());  // evicts b, the idlest
  EXPECT_EQ(limiter.TrackedForTest(), 2u);
  EXPECT_GT(limiter.TryTake("a"), absl::ZeroDuration());  // a kept its empty bucket
  EXPECT_EQ(limiter.TryTake("b"), absl::ZeroDuration());  // b starts afresh (evicting c)
  EXPECT_EQ(limiter.TrackedForTest(), 2u);
}

TEST(RateLimiterTest, ConcurrentCallersNeverGetMoreThanTheBurst) {
  FakeClock t;  // time stands still: exactly `burst` tokens exist
  RateLimiter limiter({.rate = 1, .burst = 100, .max_principals = 8}, t.clock());
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 100; ++j) {
        if (limiter.TryTake("shared") == absl::ZeroDuration()) granted.fetch_add(1);
        (void)limiter.TryTake("own" + std::to_string(i % 4));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(granted.load(), 100);
  EXPECT_LE(limiter.TrackedForTest(), 8u);
}

}  // namespace
}  // namespace qai::common
