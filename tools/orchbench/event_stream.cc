#include "tools/orchbench/event_stream.h"

#include "tools/orchbench/calls.h"
#include "tools/orchbench/stamp.h"

namespace qai::orchbench {

namespace opb = ::qai::orchestrator::v1;

EventStream::EventStream(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                         const std::string& run_id, int64_t after) {
  AsReader(ctx_, token, absl::InfiniteDuration());
  opb::WatchRunRequest req;
  req.set_run_id(run_id);
  req.set_after_sequence(after);
  thread_ = std::thread([this, stub = opb::AgentOrchestrator::NewStub(channel), req]() mutable {
    Read(std::move(stub), std::move(req));
  });
}

EventStream::~EventStream() {
  Cancel();
  thread_.join();
}

void EventStream::Cancel() { ctx_.TryCancel(); }

void EventStream::Read(std::unique_ptr<opb::AgentOrchestrator::Stub> stub,
                       opb::WatchRunRequest req) {
  std::unique_ptr<grpc::ClientReader<opb::RunEvent>> reader = stub->WatchRun(&ctx_, req);
  opb::RunEvent event;
  while (reader->Read(&event)) {
    const int64_t now = SteadyNanos();
    Received r{.sequence = event.sequence(),
               .arrival_ns = now,
               .time = absl::FromUnixSeconds(event.time().seconds()) +
                       absl::Nanoseconds(event.time().nanos()),
               .terminal = event.has_succeeded() || event.has_failed() || event.has_cancelled()};
    if (event.has_model_output()) r.text = event.model_output().text();
    if (event.has_tool_call()) r.tool = event.tool_call().tool();
    {
      absl::MutexLock lock(&mu_);
      received_.push_back(std::move(r));
    }
    changed_.SignalAll();
  }
  grpc::Status status = reader->Finish();
  {
    absl::MutexLock lock(&mu_);
    status_ = std::move(status);
  }
  changed_.SignalAll();
}

bool EventStream::WaitUntil(const std::function<bool(const std::vector<Received>&)>& done,
                            absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  bool result = done(received_);
  bool timed_out = false;
  while (!result && !status_.has_value() && !timed_out) {
    timed_out = changed_.WaitWithDeadline(&mu_, deadline);
    result = done(received_);
  }
  return result;
}

std::vector<EventStream::Received> EventStream::received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

std::optional<grpc::Status> EventStream::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

}  // namespace qai::orchbench
