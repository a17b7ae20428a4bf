#pragma once
// IdleWatchers: many WatchRun streams held open at once with gRPC's callback API (no thread per
// stream), spread round-robin over a few channels, each counting the events it received.
//
//   IdleWatchers watchers(MakeChannels(target, 8), admin_token);
//   watchers.Open({run_a, run_b}, 10000);          // watcher i watches runs[i % runs.size()]
//   watchers.WaitUntilCaughtUp({{run_a, 16}, {run_b, 1}}, absl::Seconds(60));
//   ... the streams idle ...
//   watchers.WaitUntilEnded(absl::Seconds(60));   // after the runs ended

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"

namespace qai::orchbench {

class IdleWatchers {
 public:
  IdleWatchers(std::vector<std::shared_ptr<grpc::Channel>> channels, std::string token);
  // Cancels the streams still open and waits until every one has ended.
  ~IdleWatchers();

  // Open: `count` more streams, from the first event of their run.
  void Open(const std::vector<std::string>& run_ids, int count);

  // WaitUntilCaughtUp: until every open stream received the events of its run up to the given
  // sequence (or ended); false on timeout.
  bool WaitUntilCaughtUp(const std::map<std::string, int64_t>& last_sequences,
                         absl::Duration timeout);
  // WaitUntilEnded: until every stream ended; false on timeout.
  bool WaitUntilEnded(absl::Duration timeout);

  struct Counts {
    int opened = 0;
    int ended = 0;
    int ended_ok = 0;         // with status OK
    int saw_terminal = 0;     // received their run's terminal event
    int64_t events = 0;       // received in all
    std::string first_error;  // of the first stream that ended with an error
  };
  Counts counts() const;

 private:
  class Watcher;
  void Ended(Watcher* watcher, const grpc::Status& status);

  const std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<orchestrator::v1::AgentOrchestrator::Stub>> stubs_;
  const std::string token_;  // an admin's bearer token
  mutable absl::Mutex mu_;
  absl::CondVar ended_cv_;
  std::vector<std::unique_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
  int ended_ ABSL_GUARDED_BY(mu_) = 0;
  int ended_ok_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qai::orchbench
