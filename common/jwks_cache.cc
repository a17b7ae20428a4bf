#include "common/jwks_cache.h"

#include <algorithm>

#include "absl/status/status.h"
#include "common/backoff.h"
#include "common/log.h"
#include "nlohmann/json.hpp"

namespace qai::common {
namespace {

nlohmann::json Kids(const JwkSet& set) {
  nlohmann::json kids = nlohmann::json::array();
  for (const Jwk& key : set.keys()) kids.push_back(key.kid);
  return kids;
}

}  // namespace

absl::StatusOr<std::shared_ptr<JwksCache>> JwksCache::Start(JwksCacheOptions options,
                                                            bool require_first) {
  std::shared_ptr<JwksCache> cache(new JwksCache(std::move(options)));
  absl::Status first = cache->Load(/*rate_limited=*/false);
  if (!first.ok() && require_first) return first;
  cache->refresher_ = std::thread([c = cache.get()] { c->Refresh(); });
  return cache;
}

JwksCache::~JwksCache() {
  stopping_ = true;
  {
    absl::MutexLock lock(&mu_);
    changed_.SignalAll();
  }
  if (refresher_.joinable()) refresher_.join();
}

std::shared_ptr<const JwkSet> JwksCache::Keys() const {
  absl::MutexLock lock(&mu_);
  return keys_;
}

std::shared_ptr<const JwkSet> JwksCache::KeysAfterMiss() {
  (void)Load(/*rate_limited=*/true);
  return Keys();
}

uint64_t JwksCache::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

int JwksCache::LoadsForTest() const {
  absl::MutexLock lock(&mu_);
  return loads_;
}

absl::Status JwksCache::Load(bool rate_limited) {
  {
    absl::MutexLock lock(&mu_);
    if (loading_) {
      while (loading_) changed_.Wait(&mu_);
      return absl::OkStatus();
    }
    if (rate_limited && absl::Now() - last_load_ < options_.refetch_interval)
      return absl::OkStatus();
    loading_ = true;
    last_load_ = absl::Now();
    ++loads_;
  }
  // Unlocked: a fetch takes up to its timeout, and Keys() must not wait for it.
  absl::StatusOr<JwksDocument> doc = options_.load([this] { return stopping_.load(); });
  if (stopping_) {
    absl::MutexLock lock(&mu_);
    loading_ = false;
    changed_.SignalAll();
    return absl::CancelledError("stopping");
  }
  absl::StatusOr<JwkSet> set =
      doc.ok() ? JwkSet::Parse(doc->body) : absl::StatusOr<JwkSet>(doc.status());
  if (!set.ok()) {
    Failed(set.status());
    return set.status();
  }
  Loaded(*std::move(set), doc->body, doc->max_age);
  return absl::OkStatus();
}

void JwksCache::Loaded(JwkSet set, const std::string& body, std::optional<absl::Duration> max_age) {
  const absl::Duration fresh = std::clamp(max_age.value_or(options_.default_refresh),
                                          options_.min_refresh, options_.max_refresh);
  nlohmann::json fields = {{"source", options_.source},
                           {"keys", set.keys().size()},
                           {"kids", Kids(set)},
                           {"skipped", set.skipped()},
                           {"fresh_for", absl::FormatDuration(fresh)}};
  bool changed = false;
  {
    absl::MutexLock lock(&mu_);
    loading_ = false;
    failures_ = 0;
    next_load_ = absl::Now() + fresh;
    if (body != body_) {
      keys_ = std::make_shared<const JwkSet>(std::move(set));
      body_ = body;
      ++version_;
      changed = true;
    }
    changed_.SignalAll();
  }
  Log(changed ? LogLevel::kInfo : LogLevel::kDebug,
      changed ? "token keys loaded" : "token keys unchanged", fields);
}

void JwksCache::Failed(const absl::Status& error) {
  bool kept = false;
  absl::Duration retry;
  {
    absl::MutexLock lock(&mu_);
    loading_ = false;
    retry = BackoffDelay(failures_++, options_.retry_min, options_.retry_max, rng_);
    next_load_ = absl::Now() + retry;
    kept = keys_ != nullptr;
    changed_.SignalAll();
  }
  // Without keys, every token the provider signs is refused: that is an error, not a warning.
  Log(kept ? LogLevel::kWarn : LogLevel::kError,
      kept ? "token keys not refreshed: the last good ones stay in use"
           : "token keys not loaded: provider tokens refused",
      {{"source", options_.source},
       {"error", std::string(error.message())},
       {"retry_in", absl::FormatDuration(retry)}});
}

void JwksCache::Refresh() {
  mu_.Lock();
  while (!stopping_) {
    if (absl::Now() < next_load_) {
      changed_.WaitWithDeadline(&mu_, next_load_);
      continue;
    }
    mu_.Unlock();
    (void)Load(/*rate_limited=*/false);
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace qai::common
