#pragma once
// EventHub: one replica's fan-out of run events to its watchers.
//
// The replica's one PgListener feeds it every `qai_run_events` notification ("<run id>:<last
// sequence>"). For a run that has watchers, the hub reads the new events from the table once
// (on its own executor, never on the listener's thread), keeps the newest ones in a bounded
// per-run cache, and tells each watcher "the run now has events up to N". Watchers pull at their
// own pace with Read(): from the cache when it still holds what they need, else from the table,
// so a slow watcher costs only itself and nothing is buffered per watcher.
//
//   auto sub = hub.Subscribe(run_id, [](int64_t last_sequence) { ...wake the watcher... });
//   absl::StatusOr<std::vector<StoredEvent>> batch = hub.Read(run_id, after, 64);
//   hub.Unsubscribe(sub);

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/executor.h"
#include "services/orchestrator/store/run_store.h"

namespace qai::orchestrator {

class EventHub {
 public:
  struct Options {
    size_t cached_events_per_run = 256;
    int read_threads = 2;
  };
  // store must outlive the hub.
  EventHub(RunStore* store, Options options);
  ~EventHub();

  using Subscription = uint64_t;
  // Subscribe: `on_new` runs (on a hub thread; keep it short, never block) whenever the run's
  // last sequence grows past what was announced before, and once after a reconnect.
  // Calls for one subscription never overlap, and the sequences they pass never go down.
  Subscription Subscribe(const std::string& run_id,
                         std::function<void(int64_t last_sequence)> on_new);
  // Unsubscribe: once it returns, the subscription's `on_new` is not running and never runs
  // again: it waits for a call in progress, so never call it while holding a lock that `on_new`
  // takes (calling it from that `on_new` itself is fine). The last subscription of a run drops
  // the run's cache. Unknown subscriptions are ignored.
  void Unsubscribe(Subscription subscription);

  // Read: up to `limit` events of the run with sequence > after, in order (cache or table).
  [[nodiscard]] absl::StatusOr<std::vector<StoredEvent>> Read(const std::string& run_id,
                                                              int64_t after, int limit);

  // OnNotify: a `qai_run_events` payload from the listener. Never blocks.
  void OnNotify(std::string_view payload);
  // OnReconnect: notifications may have been missed: every watched run is re-read.
  void OnReconnect();

  size_t subscriptions() const;
  // WatchedRunsForTest: the runs with at least one subscriber.
  size_t WatchedRunsForTest() const;

 private:
  struct Run;
  struct Subscriber;
  // Schedule: a refresh of the run (one at a time per run; news during one makes it go round
  // again). When readers_ is full the run waits in pending_.
  void Schedule(const std::shared_ptr<Run>& run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Refresh: reads the run's new events into its cache and tells its subscribers, on readers_,
  // in rounds until no news came during the last one; then submits pending_ runs.
  void Refresh(const std::shared_ptr<Run>& run) ABSL_LOCKS_EXCLUDED(mu_);

  // Round: where one round of a refresh starts: the last sequence the cache (or the last
  // announcement) has, the highest heard of, and whether a reconnect asks for an announcement.
  struct Round {
    int64_t have = 0;
    int64_t known = 0;
    bool reannounce = false;
  };
  // Announcement: whom a round tells, and the last sequence it tells them.
  struct Announcement {
    std::vector<std::shared_ptr<Subscriber>> subscribers;
    int64_t last_sequence = 0;
  };
  // StartRound: the round's start, or nullopt (and the run no longer scheduled) when the run
  // was dropped or the hub stops. Takes mu_.
  std::optional<Round> StartRound(Run& run) ABSL_LOCKS_EXCLUDED(mu_);
  // ReadNewEvents: the run's newest events past round.have into `fresh` (after a reconnect,
  // round.known from the run's row first), outside mu_. On an error `fresh` keeps what was read.
  absl::Status ReadNewEvents(const std::string& run_id, Round& round,
                             std::vector<StoredEvent>& fresh);
  // ReadNewest: the events after `after`, page by page, keeping the newest `capacity`.
  absl::Status ReadNewest(const std::string& run_id, int64_t after, size_t capacity,
                          std::vector<StoredEvent>& fresh);
  // Publish: fresh into the run's cache, and whom to tell of its new last sequence (nobody
  // when it did not grow); nullopt, as StartRound, when the run was dropped. Takes mu_.
  std::optional<Announcement> Publish(Run& run, const Round& round, std::vector<StoredEvent> fresh)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Tell: each still active subscriber's on_new(last_sequence), outside mu_.
  static void Tell(const std::vector<std::shared_ptr<Subscriber>>& subscribers,
                   int64_t last_sequence);
  // EndRound: true when news came during the round (another one follows); else the run is no
  // longer scheduled. Takes mu_.
  bool EndRound(Run& run) ABSL_LOCKS_EXCLUDED(mu_);
  // SubmitPending: pending_ runs' refreshes, while readers_ takes them. Takes mu_.
  void SubmitPending() ABSL_LOCKS_EXCLUDED(mu_);
  RunStore* const store_;
  const Options options_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Run>> runs_ ABSL_GUARDED_BY(mu_);
  std::map<Subscription, std::string> subscription_runs_ ABSL_GUARDED_BY(mu_);
  Subscription next_subscription_ ABSL_GUARDED_BY(mu_) = 1;
  // Runs whose refresh did not fit into readers_' queue; a finishing refresh submits them.
  std::deque<std::shared_ptr<Run>> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  common::Executor readers_;
};

}  // namespace qai::orchestrator
