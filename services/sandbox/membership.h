#pragma once
// Membership: this replica's place in the sandbox tier, held on a database session of its own.
// Start registers a new incarnation of the replica and returns once that session holds its
// liveness lock (ReplicaStore); from then on the session LISTENs for purges: a project purged
// on any replica loses its workspace here too, and the preview cache hears which snapshots went.
// After every reconnection (notifications may have been missed) the incarnation's row is made
// sure of and workspaces of purged projects are discarded; the first connection does the same,
// for what happened while the replica was down.
//
//   auto membership = Membership::Start({.db_url = url, .name = "qai-sandbox-0", .address = "..."},
//                                       &replicas, &workspaces, {.snapshots_purged = ...});
//   SandboxHandlers handlers(&workspaces, &replicas, {.self = (*membership)->self(), ...});

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/pg_listener.h"
#include "services/sandbox/replica_store.h"
#include "services/sandbox/workspaces.h"

namespace qai::sandbox {

class Membership {
 public:
  struct Options {
    std::string db_url;
    std::string name;     // ranks the replica for projects; stable across restarts
    std::string address;  // host:port the orchestrators call it at ("" for a single replica)
    absl::Duration start_timeout = absl::Seconds(30);  // to take the lock
  };
  struct Hooks {
    std::function<void(std::string_view ids)> snapshots_purged;  // "<id>,<id>,..."
    std::function<void()> reconnected;                           // after the catch-up
  };

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Membership>> Start(Options options,
                                                                         ReplicaStore* replicas,
                                                                         Workspaces* workspaces,
                                                                         Hooks hooks = {});
  ~Membership();  // Stop()s

  const Replica& self() const { return self_; }
  // alive: whether this replica's session (and so its lock) is up right now.
  bool alive() const { return listener_ != nullptr && listener_->connected(); }
  // Stop: ends the session; the replica is gone for the tier. Idempotent.
  void Stop();

 private:
  Membership(Replica self, ReplicaStore* replicas, Workspaces* workspaces, Hooks hooks)
      : self_(std::move(self)),
        replicas_(replicas),
        workspaces_(workspaces),
        hooks_(std::move(hooks)) {}
  void OnNotify(std::string_view channel, std::string_view payload);
  void OnConnect();

  const Replica self_;
  ReplicaStore* const replicas_;
  Workspaces* const workspaces_;
  const Hooks hooks_;
  std::unique_ptr<common::PgListener> listener_;
};

}  // namespace qai::sandbox
