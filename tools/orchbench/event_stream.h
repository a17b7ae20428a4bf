#pragma once
// EventStream: one WatchRun stream read on a thread of its own, noting the steady-clock instant
// each event arrived (right after gRPC handed it over), for latency measurements.
//
//   EventStream stream(channel, admin_token, run_id, /*after=*/0);
//   stream.WaitUntil([](const auto& got) { return !got.empty() && got.back().terminal; },
//   absl::Seconds(30)); for (const EventStream::Received& e : stream.Received()) ...

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"

namespace qai::orchbench {

class EventStream {
 public:
  struct Received {
    int64_t sequence = 0;
    int64_t arrival_ns = 0;  // SteadyNanos() when Read returned it
    absl::Time time;         // the event's own time (its transaction's start, PostgreSQL's clock)
    bool terminal = false;
    std::string text;  // model_output text; "" for other events
    std::string tool;  // tool_call tool; "" for other events
  };

  // Opens the stream at once (after_sequence = after).
  EventStream(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
              const std::string& run_id, int64_t after);
  // Cancels the stream if it is still open, and waits for its thread.
  ~EventStream();

  // WaitUntil: waits until done(events so far) holds or the stream ended, at most `timeout`;
  // returns done's last answer.
  bool WaitUntil(const std::function<bool(const std::vector<Received>&)>& done,
                 absl::Duration timeout);
  std::vector<Received> received() const;
  // status: how the stream ended, once it has.
  std::optional<grpc::Status> status() const;
  void Cancel();

 private:
  void Read(std::unique_ptr<orchestrator::v1::AgentOrchestrator::Stub> stub,
            orchestrator::v1::WatchRunRequest req);

  grpc::ClientContext ctx_;
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace qai::orchbench
