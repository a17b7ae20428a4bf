#pragma once
// OwnerCache: who owns which project, as ProjectService said a moment ago. A project's owner
// never changes, so an answer stays true until the project is deleted; the cache keeps each
// answer for `ttl` at most, and a service told of a deletion (the orchestrator's
// CancelProjectRuns, messages' PurgeProjectMessages) forgets the project at once. So a deleted
// project's data stays readable on another replica for `ttl` at most after its purge, and on
// the replica that was told, not at all. Only answers that a project exists are kept: a
// NOT_FOUND is never cached, so a project created a moment ago is never hidden.
//
// Memory is bounded: at most `max_projects` entries, the least recently used going first.
// Thread-safe. `clock` is the time source (tests pass a fake one); an entry is fresh only while
// the clock stays between its storing and its expiry, so a clock set back expires it.
//
//   OwnerCache cache({.ttl = absl::Seconds(5)});
//   if (std::optional<std::string> owner = cache.Owner(project_id)) ...;  // fresh, or nullopt
//   const uint64_t generation = cache.Generation();
//   ... ask ProjectService ...
//   cache.Remember(project_id, owner, generation);  // unless a Forget came meanwhile
//   cache.Forget(project_id);                       // the project was deleted

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/config.h"

namespace qai::projects {

// OwnerCacheOptions: how long an answer is trusted (zero: nothing is kept) and how many
// projects are kept at most.
struct OwnerCacheOptions {
  absl::Duration ttl = absl::Seconds(5);
  size_t max_projects = 10000;
};

// OwnerCacheOption: QAI_PROJECT_OWNER_TTL, the ttl of the services that ask ProjectService (0s
// to 60s; 0s asks every time). OwnerCacheOptionsFrom: the options it configures.
common::Option OwnerCacheOption();
OwnerCacheOptions OwnerCacheOptionsFrom(const common::Config& config);

class OwnerCache {
 public:
  using Clock = std::function<absl::Time()>;

  explicit OwnerCache(
      OwnerCacheOptions options, Clock clock = [] { return absl::Now(); });

  // Owner: the project's owner while a fresh answer is kept; nullopt otherwise.
  [[nodiscard]] std::optional<std::string> Owner(const std::string& project_id);
  // Generation: taken before asking ProjectService and passed to Remember, which keeps the
  // answer only if no Forget came in between (the answer may predate the deletion).
  [[nodiscard]] uint64_t Generation() const;
  // Remember: `owner` owns the project, as ProjectService just said.
  void Remember(const std::string& project_id, const std::string& owner, uint64_t generation);
  // Forget: the project was deleted: its entry goes, and answers asked before now are not kept.
  void Forget(const std::string& project_id);

  // SizeForTest: entries held now (fresh or not).
  size_t SizeForTest() const;

 private:
  struct Entry {
    std::string owner;
    absl::Time stored, expires;
    std::list<std::string>::iterator lru;  // position in lru_ (front = most recently used)
  };

  const OwnerCacheOptions options_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
  uint64_t forgets_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace qai::projects
