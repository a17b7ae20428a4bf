#pragma once
// RateLimiter: a token bucket per calling principal.
//
// Each principal (its role and id) has a bucket of `burst` tokens that refills at `rate`
// tokens a second; a call takes one token. A call that finds the bucket empty is refused with
// RESOURCE_EXHAUSTED carrying a google.rpc.RetryInfo of the time until a token is free, so a
// well-behaved client waits exactly that long. Memory is bounded: at most `max_principals`
// buckets are tracked, and a new principal beyond that evicts the one idle the longest (its
// bucket is then as good as full, or nearly: an evicted caller at worst gets a fresh burst).
//
// SERVICE principals are exempt: their calls relay work users already paid for (an outbox
// row delivers a prompt accepted by CreateMessage, a worker records a run's result), and a
// refusal would only delay durable work that is retried anyway.
//
//   RateLimiter limiter({.rate = 10, .burst = 20});
//   QAI_RETURN_IF_ERROR(limiter.Acquire(call.principal));

#include <cstddef>
#include <functional>
#include <list>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/auth.h"
#include "common/status_macros.h"

namespace qai::common {

// RateLimitOptions: tokens per second (0 = no limit), bucket size, and the most principals
// tracked at once.
struct RateLimitOptions {
  double rate = 0;
  double burst = 1;
  size_t max_principals = 100000;
};

class RateLimiter {
 public:
  using Clock = std::function<absl::Time()>;

  // RateLimiter: `clock` is the time source (tests pass a fake one).
  explicit RateLimiter(
      RateLimitOptions options, Clock clock = [] { return absl::Now(); });

  // enabled: whether any call can ever be refused.
  bool enabled() const { return options_.rate > 0; }

  // Acquire: takes a token of `principal`'s bucket: OK, or RESOURCE_EXHAUSTED with the delay
  // until a token is free (WithRetryDelay). Thread-safe.
  [[nodiscard]] absl::Status Acquire(const Principal& principal);

  // TryTake: the token bucket itself: zero when a token was taken, else the wait until one is.
  [[nodiscard]] absl::Duration TryTake(const std::string& key);
  // Wait: how long until `key`'s bucket has a token (zero when it has one now); takes nothing.
  [[nodiscard]] absl::Duration Wait(const std::string& key) const;

  // TrackedForTest: buckets held now.
  size_t TrackedForTest() const;

 private:
  struct Bucket {
    absl::Time tat;                        // when the bucket is full again
    std::list<std::string>::iterator lru;  // position in lru_ (front = most recently used)
  };

  const RateLimitOptions options_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qai::common
