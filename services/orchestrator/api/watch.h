#pragma once
// WatchRun: a run's events as a server stream: the stored ones after `after_sequence`, then
// the live ones as they are written (on any replica: the event hub follows the database), and
// the end of the stream right after the run's terminal event.
//
// The reactor keeps at most one batch of events (read from the hub's cache or the table) and
// one write in flight: a slow client only slows its own stream, and holds no growing buffer;
// when it catches up it reads on from the table. Reads happen on the executor, never on gRPC's
// threads.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/executor.h"
#include "common/rpc.h"
#include "grpcpp/grpcpp.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "services/orchestrator/api/handlers.h"
#include "services/orchestrator/stream/event_hub.h"

namespace qai::orchestrator {

// WatchRegistry: the open WatchRun streams of a replica, so shutdown can end them at once
// (UNAVAILABLE: the client reconnects to another replica with its last sequence) instead of
// letting them hold the drain until its deadline, and so no principal holds more than its share.
class WatchRegistry {
 public:
  class Stream {
   public:
    virtual ~Stream() = default;
    virtual void Close() = 0;
  };
  // max_per_principal: open streams one principal may hold on this replica (0 = no cap).
  explicit WatchRegistry(int max_per_principal = 0) : max_per_principal_(max_per_principal) {}
  // Add: registers a stream of `principal` (e.g. "USER:alice"; "" is not counted), or
  // RESOURCE_EXHAUSTED when that principal already holds max_per_principal streams.
  [[nodiscard]] absl::Status Add(Stream* stream, const std::string& principal);
  void Remove(Stream* stream);
  // CloseAll: ends every open stream, and every stream opened from now on.
  void CloseAll();
  bool closing() const;

 private:
  const int max_per_principal_;
  mutable absl::Mutex mu_;
  std::map<Stream*, std::string> streams_ ABSL_GUARDED_BY(mu_);  // -> its principal
  std::map<std::string, int> per_principal_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

struct WatchEnv {
  const common::RpcEnv* rpc = nullptr;
  const RunHandlers* handlers = nullptr;  // for the run's visibility
  EventHub* hub = nullptr;
  common::Executor* executor = nullptr;
  int batch = 32;  // events read at a time
  WatchRegistry* registry = nullptr;
  // A stream asks again whether its caller may see the run (the project's owner, with the
  // credentials it opened with: an expired token fails) before it reads on, once this long has
  // passed since the last time.
  absl::Duration recheck_after = absl::Seconds(60);
};

// WatchLimits: how many streams a principal may hold on a replica (0 = no cap), and how often a
// stream asks again whether its caller may see the run.
struct WatchLimits {
  int max_per_principal = 0;
  absl::Duration recheck_after = absl::Seconds(60);
};

// StartWatch: the reactor for one WatchRun call (it deletes itself when done).
grpc::ServerWriteReactor<v1::RunEvent>* StartWatch(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchRunRequest* req,
                                                   const WatchEnv& env);

}  // namespace qai::orchestrator
