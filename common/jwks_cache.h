#pragma once
// JwksCache: an identity provider's keys, kept fresh. It loads the key set at start, again when
// its source says it has gone stale (Cache-Control: max-age, bounded), and again when a token
// names a key it does not hold (a rotation), at most once per refetch_interval. A failed load
// keeps the last good keys and is retried with backoff; every load is logged (how many keys,
// their kids, the error), never a token.
//
//   auto cache = JwksCache::Start({.source = url, .load = *JwksLoaderFor(url)},
//   /*require_first=*/false); std::shared_ptr<const JwkSet> keys = (*cache)->Keys();          //
//   nullptr until a load worked if (keys == nullptr || !keys->Find(kid, alg).ok()) keys =
//   (*cache)->KeysAfterMiss();
//
// Thread-safe. The destructor stops the refreshing thread (cancelling a fetch under way).

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/jwks.h"
#include "common/jwks_fetch.h"

namespace qai::common {

struct JwksCacheOptions {
  // What the log calls the source (a file or a URL: nothing secret).
  std::string source;
  JwksLoader load;
  // Freshness when the source says nothing, and the bounds of what it may say.
  absl::Duration default_refresh = absl::Hours(1);
  absl::Duration min_refresh = absl::Minutes(1);
  absl::Duration max_refresh = absl::Hours(24);
  // A token naming an unknown key reloads at most once per this.
  absl::Duration refetch_interval = absl::Seconds(30);
  // Retries after a failed load: from retry_min, doubling, up to retry_max (with jitter).
  absl::Duration retry_min = absl::Seconds(1);
  absl::Duration retry_max = absl::Minutes(5);
};

class JwksCache {
 public:
  // Start: loads once, then starts refreshing. When that first load fails, Start fails with its
  // error if `require_first` (a file: a typo should stop the service), and otherwise starts
  // without keys, retrying (a URL: the provider may be down for a moment).
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<JwksCache>> Start(JwksCacheOptions options,
                                                                        bool require_first);
  ~JwksCache();
  JwksCache(const JwksCache&) = delete;
  JwksCache& operator=(const JwksCache&) = delete;

  // Keys: the last good key set, nullptr while none has loaded.
  [[nodiscard]] std::shared_ptr<const JwkSet> Keys() const;

  // KeysAfterMiss: for a token naming a key Keys() lacks: reloads, unless the last load began
  // less than refetch_interval ago, and returns the keys then. A load already under way is
  // waited for instead of started again.
  [[nodiscard]] std::shared_ptr<const JwkSet> KeysAfterMiss();

  // version: changes whenever a load brings keys different from the ones held.
  [[nodiscard]] uint64_t version() const;
  // LoadsForTest: how many loads have begun.
  [[nodiscard]] int LoadsForTest() const;

 private:
  explicit JwksCache(JwksCacheOptions options) : options_(std::move(options)) {}

  // Load: loads unless one is under way (then waits for it) or, when `rate_limited`, the last
  // began less than refetch_interval ago. Returns the error of a load it ran that failed.
  absl::Status Load(bool rate_limited);
  // Loaded, Failed: a load's outcome, kept and logged.
  void Loaded(JwkSet set, const std::string& body, std::optional<absl::Duration> max_age);
  void Failed(const absl::Status& error);
  // Refresh: the refreshing thread: loads whenever next_load_ comes, until stopping_.
  void Refresh();

  const JwksCacheOptions options_;
  std::atomic<bool> stopping_{false};
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  std::shared_ptr<const JwkSet> keys_ ABSL_GUARDED_BY(mu_);
  std::string body_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool loading_ ABSL_GUARDED_BY(mu_) = false;
  int loads_ ABSL_GUARDED_BY(mu_) = 0;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_load_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time next_load_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::BitGen rng_ ABSL_GUARDED_BY(mu_);
  std::thread refresher_;
};

}  // namespace qai::common
