#include "tools/chainbench/recording_orchestrator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"

namespace qai::chainbench {
namespace {

namespace opb = ::qai::orchestrator::v1;

class RecordingService final : public opb::AgentOrchestrator::CallbackService {
 public:
  explicit RecordingService(RecordingOrchestrator* records) : records_(records) {}

  grpc::ServerUnaryReactor* StartRun(grpc::CallbackServerContext* context,
                                     const opb::StartRunRequest* request,
                                     opb::Run* response) override {
    const auto now = std::chrono::steady_clock::now();
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (request->message_id().empty()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "message_id is required"));
      return reactor;
    }
    response->set_id(
        records_->Record(now, request->project_id(), request->message_id(), request->prompt()));
    response->set_project_id(request->project_id());
    response->set_message_id(request->message_id());
    response->set_state(opb::Run::STATE_QUEUED);
    response->set_attempt(1);
    response->set_max_iterations(request->max_iterations() == 0 ? 15 : request->max_iterations());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  RecordingOrchestrator* const records_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RecordingOrchestrator>> RecordingOrchestrator::Start(
    const std::string& listen_addr) {
  std::unique_ptr<RecordingOrchestrator> orchestrator(new RecordingOrchestrator());
  orchestrator->service_ = std::make_unique<RecordingService>(orchestrator.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen_addr, grpc::InsecureServerCredentials(), &orchestrator->port_);
  builder.RegisterService(orchestrator->service_.get());
  orchestrator->server_ = builder.BuildAndStart();
  if (!orchestrator->server_ || orchestrator->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen_addr));
  }
  return orchestrator;
}

RecordingOrchestrator::~RecordingOrchestrator() {
  if (server_) server_->Shutdown();
}

std::string RecordingOrchestrator::Record(std::chrono::steady_clock::time_point now,
                                          const std::string& project_id,
                                          const std::string& message_id,
                                          const std::string& prompt) {
  std::string run_id;
  {
    absl::MutexLock lock(&mu_);
    auto [it, fresh] = arrivals_.try_emplace(message_id);
    Arrival& arrival = it->second;
    if (fresh)
      arrival = Arrival{
          .first = now, .project_id = project_id, .prompt = prompt, .run_id = common::NewUuid()};
    ++arrival.calls;
    run_id = arrival.run_id;
  }
  arrived_.SignalAll();
  return run_id;
}

std::vector<std::string> RecordingOrchestrator::WaitFor(const std::vector<std::string>& message_ids,
                                                        absl::Duration timeout) {
  std::vector<std::string> missing;
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  bool timed_out = false;
  while (!AllArrivedLocked(message_ids) && !timed_out)
    timed_out = arrived_.WaitWithDeadline(&mu_, deadline);
  for (const std::string& id : message_ids) {
    if (!arrivals_.contains(id)) missing.push_back(id);
  }
  return missing;
}

bool RecordingOrchestrator::AllArrivedLocked(const std::vector<std::string>& message_ids) const {
  // A loop, not std::all_of: the thread-safety analysis does not see into a lambda.
  for (const std::string& id : message_ids) {
    if (!arrivals_.contains(id)) return false;
  }
  return true;
}

std::map<std::string, Arrival> RecordingOrchestrator::Arrivals() {
  absl::MutexLock lock(&mu_);
  return arrivals_;
}

}  // namespace qai::chainbench
