#include "services/projects/client/owner_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace qai::projects {
namespace {

constexpr char kProject[] = "6f1c1c3e-8a52-4d8e-9a36-2b1b2c0e7d11";

// FakeClock: time moves only when a test says so.
struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1000000);
  OwnerCache::Clock clock() {
    return [this] { return now; };
  }
};

TEST(OwnerCacheTest, AnAnswerIsKeptForTheTtlAndNoLonger) {
  FakeClock t;
  OwnerCache cache({.ttl = absl::Seconds(5)}, t.clock());
  EXPECT_EQ(cache.Owner(kProject), std::nullopt);
  cache.Remember(kProject, "alice", cache.Generation());
  EXPECT_EQ(cache.Owner(kProject), "alice");
  t.now += absl::Milliseconds(4999);
  EXPECT_EQ(cache.Owner(kProject), "alice");
  t.now += absl::Milliseconds(1);
  EXPECT_EQ(cache.Owner(kProject), std::nullopt) << "expired at the ttl";
  EXPECT_EQ(cache.SizeForTest(), 0u) << "an expired entry is dropped when found";
}

TEST(OwnerCacheTest, AClockSetBackExpiresTheEntry) {
  FakeClock t;
  OwnerCache cache({.ttl = absl::Seconds(5)}, t.clock());
  cache.Remember(kProject, "alice", cache.Generation());
  t.now -= absl::Seconds(1);
  EXPECT_EQ(cache.Owner(kProject), std::nullopt);
}

TEST(OwnerCacheTest, ProjectIdsAreCaseInsensitive) {
  FakeClock t;
  OwnerCache cache({}, t.clock());
  cache.Remember("6F1C1C3E-8A52-4D8E-9A36-2B1B2C0E7D11", "alice", cache.Generation());
  EXPECT_EQ(cache.Owner(kProject), "alice");
  cache.Forget("6F1C1C3E-8A52-4D8E-9A36-2B1B2C0E7D11");
  EXPECT_EQ(cache.Owner(kProject), std::nullopt);
}

TEST(OwnerCacheTest, ForgetDropsTheProjectAtOnce) {
  FakeClock t;
  OwnerCache cache({.ttl = absl::Seconds(60)}, t.clock());
  cache.Remember(kProject, "alice", cache.Generation());
  cache.Remember("other", "bob", cache.Generation());
  cache.Forget(kProject);
  EXPECT_EQ(cache.Owner(kProject), std::nullopt);
  EXPECT_EQ(cache.Owner("other"), "bob") << "other projects stay";
  cache.Forget("never-seen");  // fine
}

// An answer asked for before a deletion was heard may be from before the deletion: it is not
// kept, while an answer asked for after it is.
TEST(OwnerCacheTest, AnAnswerFromBeforeAForgetIsNotKept) {
  FakeClock t;
  OwnerCache cache({}, t.clock());
  const uint64_t before = cache.Generation();
  cache.Forget(kProject);
  cache.Remember(kProject, "alice", before);
  EXPECT_EQ(cache.Owner(kProject), std::nullopt);
  cache.Remember(kProject, "alice", cache.Generation());
  EXPECT_EQ(cache.Owner(kProject), "alice");
}

TEST(OwnerCacheTest, TheLeastRecentlyUsedGoesFirstBeyondTheBound) {
  FakeClock t;
  OwnerCache cache({.max_projects = 3}, t.clock());
  for (const char* p : {"p1", "p2", "p3"}) cache.Remember(p, "alice", cache.Generation());
  EXPECT_EQ(cache.Owner("p1"), "alice");  // p2 is now the least recently used
  cache.Remember("p4", "alice", cache.Generation());
  EXPECT_EQ(cache.SizeForTest(), 3u);
  EXPECT_EQ(cache.Owner("p2"), std::nullopt);
  for (const char* p : {"p1", "p3", "p4"}) EXPECT_EQ(cache.Owner(p), "alice") << p;
}

TEST(OwnerCacheTest, AZeroTtlKeepsNothing) {
  FakeClock t;
  OwnerCache cache({.ttl = absl::ZeroDuration()}, t.clock());
  cache.Remember(kProject, "alice", cache.Generation());
  EXPECT_EQ(cache.Owner(kProject), std::nullopt);
  EXPECT_EQ(cache.SizeForTest(), 0u);
}

TEST(OwnerCacheTest, ManyThreadsAtOnceStayWithinTheBound) {
  OwnerCache cache({.max_projects = 50});
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < 2000; ++n) {
        const std::string project = absl::StrCat("p", (n * 7 + i) % 120);
        cache.Remember(project, "alice", cache.Generation());
        std::optional<std::string> owner = cache.Owner(project);
        if (owner && *owner != "alice") wrong.fetch_add(1);
        if (n % 97 == 0) cache.Forget(project);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(cache.SizeForTest(), 50u);
}

TEST(OwnerCacheTest, TheOptionTakesZeroToSixtySeconds) {
  const common::Option option = OwnerCacheOption();
  EXPECT_EQ(option.validate("0s"), "");
  EXPECT_EQ(option.validate("60s"), "");
  EXPECT_NE(option.validate("61s"), "");
  EXPECT_NE(option.validate("-1s"), "");
  EXPECT_NE(option.validate("soon"), "");
}

}  // namespace
}  // namespace qai::projects
