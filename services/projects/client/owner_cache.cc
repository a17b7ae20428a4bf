#include "services/projects/client/owner_cache.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "common/strings.h"

namespace qai::projects {

common::Option OwnerCacheOption() {
  return {.name = "project-owner-ttl",
          .default_value = "5s",
          .help =
              "how long ProjectService's answer that a user owns a project is trusted here "
              "(0s: asked on every call); a deleted project stays readable on a replica not "
              "told of its purge at most this long",
          .validate = [](std::string_view value) -> std::string {
            if (std::string bad = common::IsDuration(value); !bad.empty()) return bad;
            absl::Duration ttl;
            (void)absl::ParseDuration(common::ToAbsl(value), &ttl);
            return ttl <= absl::Seconds(60) ? "" : "must be at most 60s";
          }};
}

OwnerCacheOptions OwnerCacheOptionsFrom(const common::Config& config) {
  return {.ttl = config.GetDuration("project-owner-ttl")};
}

OwnerCache::OwnerCache(OwnerCacheOptions options, Clock clock)
    : options_{.ttl = std::max(options.ttl, absl::ZeroDuration()),
               .max_projects = std::max<size_t>(options.max_projects, 1)},
      clock_(std::move(clock)) {}

std::optional<std::string> OwnerCache::Owner(const std::string& project_id) {
  if (options_.ttl == absl::ZeroDuration()) return std::nullopt;
  const std::string key = absl::AsciiStrToLower(project_id);
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (now < it->second.stored || now >= it->second.expires) {
    lru_.erase(it->second.lru);
    entries_.erase(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.owner;
}

uint64_t OwnerCache::Generation() const {
  absl::MutexLock lock(&mu_);
  return forgets_;
}

void OwnerCache::Remember(const std::string& project_id, const std::string& owner,
                          uint64_t generation) {
  if (options_.ttl == absl::ZeroDuration()) return;
  const std::string key = absl::AsciiStrToLower(project_id);
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  if (generation != forgets_) return;  // a deletion may have come after the answer
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= options_.max_projects) {
      entries_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(key);
    it = entries_.emplace(key, Entry{.lru = lru_.begin()}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  it->second.owner = owner;
  it->second.stored = now;
  it->second.expires = now + options_.ttl;
}

void OwnerCache::Forget(const std::string& project_id) {
  const std::string key = absl::AsciiStrToLower(project_id);
  absl::MutexLock lock(&mu_);
  ++forgets_;
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

size_t OwnerCache::SizeForTest() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace qai::projects
