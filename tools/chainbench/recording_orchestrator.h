#pragma once
// RecordingOrchestrator: a stand-in AgentOrchestrator that notes when each StartRun arrives.
//
// It answers StartRun as the real one does for the caller's purposes (idempotent on
// message_id: a repeat gets the same run id back, a UUID, since MessageService stores it) and
// records, per message, the steady-clock instant of the first call and how many calls came.
// The instant is read before any lock is taken, so a busy reader of the records cannot delay
// it. Every other method stays UNIMPLEMENTED.
//
//   auto orchestrator = RecordingOrchestrator::Start("127.0.0.1:0");
//   ... point qai-messages at (*orchestrator)->port() and create messages ...
//   std::vector<std::string> missing = (*orchestrator)->WaitFor(ids, absl::Seconds(30));
//   std::map<std::string, Arrival> arrivals = (*orchestrator)->Arrivals();

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace qai::chainbench {

// Arrival: what StartRun saw of one message.
struct Arrival {
  // When the first StartRun for the message began to be handled.
  std::chrono::steady_clock::time_point first;
  // StartRun calls for the message: 1 unless it was delivered more than once.
  int calls = 0;
  std::string project_id;
  std::string prompt;
  std::string run_id;
};

class RecordingOrchestrator {
 public:
  // Start: serves on `listen_addr` (port 0 picks a free one) until destroyed.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RecordingOrchestrator>> Start(
      const std::string& listen_addr);
  ~RecordingOrchestrator();

  int port() const { return port_; }

  // WaitFor: waits until a StartRun for every message in `message_ids` has arrived, at most
  // `timeout`; returns those still missing (empty: all arrived).
  [[nodiscard]] std::vector<std::string> WaitFor(const std::vector<std::string>& message_ids,
                                                 absl::Duration timeout);

  // Arrivals: a copy of every record, by message id.
  std::map<std::string, Arrival> Arrivals();

  // Record: what StartRun does with a request, minus the RPC; returns the run id to answer with.
  std::string Record(std::chrono::steady_clock::time_point now, const std::string& project_id,
                     const std::string& message_id, const std::string& prompt);

 private:
  RecordingOrchestrator() = default;
  // AllArrivedLocked: whether every one of message_ids has arrived.
  bool AllArrivedLocked(const std::vector<std::string>& message_ids) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  absl::CondVar arrived_;
  std::map<std::string, Arrival> arrivals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qai::chainbench
