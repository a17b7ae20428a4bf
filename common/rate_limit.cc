#include "common/rate_limit.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/status.h"

namespace qai::common {

RateLimiter::RateLimiter(RateLimitOptions options, Clock clock)
    : options_{.rate = options.rate,
               .burst = std::max(1.0, options.burst),
               .max_principals = options.max_principals},
      clock_(std::move(clock)) {}

absl::Duration RateLimiter::TryTake(const std::string& key) {
  if (!enabled()) return absl::ZeroDuration();
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= std::max<size_t>(options_.max_principals, 1)) {
      buckets_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(key);
    it = buckets_.emplace(key, Bucket{.tat = now, .lru = lru_.begin()}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  // Kept as the "theoretical arrival time" (GCRA), the token bucket in integer time: the
  // bucket is full when tat <= now, and each call moves tat one interval later.
  Bucket& b = it->second;
  const absl::Duration interval = absl::Seconds(1) / options_.rate;
  const absl::Time next = std::max(b.tat, now) + interval;
  const absl::Duration over = (next - now) - interval * options_.burst;
  if (over > absl::ZeroDuration()) return over;
  b.tat = next;
  return absl::ZeroDuration();
}

absl::Duration RateLimiter::Wait(const std::string& key) const {
  if (!enabled()) return absl::ZeroDuration();
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) return absl::ZeroDuration();
  const absl::Duration interval = absl::Seconds(1) / options_.rate;
  const absl::Duration over =
      (std::max(it->second.tat, now) + interval - now) - interval * options_.burst;
  return std::max(over, absl::ZeroDuration());
}

absl::Status RateLimiter::Acquire(const Principal& principal) {
  if (!enabled() || principal.role == Role::kService) return absl::OkStatus();
  const absl::Duration wait = TryTake(std::string(RoleName(principal.role)) + ":" + principal.id);
  if (wait == absl::ZeroDuration()) return absl::OkStatus();
  return WithRetryDelay(
      absl::ResourceExhaustedError(absl::StrFormat(
          "rate limit exceeded (QAI_RATE_LIMIT %g calls/s, QAI_RATE_BURST %g); retry in %s",
          options_.rate, options_.burst, absl::FormatDuration(wait))),
      wait);
}

size_t RateLimiter::TrackedForTest() const {
  absl::MutexLock lock(&mu_);
  return buckets_.size();
}

}  // namespace qai::common
