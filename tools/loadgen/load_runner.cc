#include "tools/loadgen/load_runner.h"

#include <atomic>
#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "qai/projects/v1/projects.grpc.pb.h"

namespace qai::loadgen {
namespace {

using Clock = std::chrono::steady_clock;
namespace health = ::grpc::health::v1;
namespace pb = ::qai::projects::v1;
namespace opb = ::qai::orchestrator::v1;

// Stubs: one per channel; stubs are thread-safe, so the callers of a channel share them.
struct Stubs {
  explicit Stubs(const std::shared_ptr<grpc::Channel>& channel)
      : health(health::Health::NewStub(channel)),
        projects(pb::ProjectService::NewStub(channel)),
        orchestrator(opb::AgentOrchestrator::NewStub(channel)) {}
  std::unique_ptr<health::Health::Stub> health;
  std::unique_ptr<pb::ProjectService::Stub> projects;
  std::unique_ptr<opb::AgentOrchestrator::Stub> orchestrator;
};

// Run: what every caller of one RunLoad shares: the time window, the error printer and the
// count of callers still going.
class Run {
 public:
  Run(const LoadOptions& options, int callers)
      : options_(options),
        measure_start_(Clock::now() + absl::ToChronoNanoseconds(options.warmup)),
        measure_end_(measure_start_ + absl::ToChronoNanoseconds(options.duration)),
        active_(callers) {}

  const LoadOptions& options() const { return options_; }
  Clock::time_point measure_start() const { return measure_start_; }
  Clock::time_point measure_end() const { return measure_end_; }

  void ReportError(const grpc::Status& status) {
    if (printed_errors_.fetch_add(1, std::memory_order_relaxed) >= options_.errors_to_print) return;
    std::fprintf(stderr, "qai-loadgen: %s failed: code %d: %s\n",
                 std::string(MethodName(options_.method)).c_str(),
                 static_cast<int>(status.error_code()), status.error_message().c_str());
  }

  // CallerFinished: the last thing a caller does; afterwards it may be destroyed.
  void CallerFinished() {
    absl::MutexLock lock(&mu_);
    if (--active_ == 0) done_.SignalAll();
  }

  void WaitForCallers() {
    absl::MutexLock lock(&mu_);
    while (active_ != 0) done_.Wait(&mu_);
  }

 private:
  const LoadOptions& options_;
  const Clock::time_point measure_start_;
  const Clock::time_point measure_end_;
  std::atomic<int> printed_errors_{0};
  absl::Mutex mu_;
  absl::CondVar done_;
  int active_ ABSL_GUARDED_BY(mu_);
};

// Caller: one closed loop. Only one of its calls is in flight at a time, and each completion
// happens-after the start of its call, so its fields need no lock.
class Caller {
 public:
  Caller(Run* run, Stubs* stubs) : run_(run), stubs_(stubs) {
    get_request_.set_id(run->options().project_id);
    versions_request_.set_project_id(run->options().project_id);
    create_request_.set_initial_prompt("Build a one-page site for a benchmark bakery.");
  }

  void Issue() {
    // A ClientContext serves one call only; the previous one has completed, so replacing it here
    // (even from inside its completion callback) is safe: gRPC holds its own call reference.
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() +
                           absl::ToChronoNanoseconds(run_->options().timeout));
    if (!run_->options().token.empty()) {
      context_->AddMetadata("authorization", absl::StrCat("Bearer ", run_->options().token));
    }
    auto done = [this](grpc::Status status) { OnDone(status); };
    start_ = Clock::now();
    switch (run_->options().method) {
      case Method::kHealth:
        health_response_.Clear();
        stubs_->health->async()->Check(context_.get(), &health_request_, &health_response_,
                                       std::move(done));
        break;
      case Method::kGetProject:
        project_.Clear();
        stubs_->projects->async()->GetProject(context_.get(), &get_request_, &project_,
                                              std::move(done));
        break;
      case Method::kCreateProject:
        project_.Clear();
        stubs_->projects->async()->CreateProject(context_.get(), &create_request_, &project_,
                                                 std::move(done));
        break;
      case Method::kListVersions:
        versions_.Clear();
        stubs_->orchestrator->async()->ListVersions(context_.get(), &versions_request_, &versions_,
                                                    std::move(done));
        break;
    }
  }

  const LatencyHistogram& latencies() const { return latencies_; }
  int64_t calls() const { return calls_; }
  int64_t errors() const { return errors_; }

 private:
  void OnDone(grpc::Status status) {
    const Clock::time_point now = Clock::now();
    // A health check that answers "not serving" is a failure for a benchmark, not a success.
    if (status.ok() && run_->options().method == Method::kHealth &&
        health_response_.status() != health::HealthCheckResponse::SERVING) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            absl::StrCat("health status ", health_response_.status()));
    }
    const bool measured = now >= run_->measure_start() && now < run_->measure_end();
    if (measured) {
      ++calls_;
      if (status.ok()) {
        latencies_.Record(
            std::chrono::duration_cast<std::chrono::microseconds>(now - start_).count());
      } else {
        ++errors_;
      }
    }
    if (!status.ok()) run_->ReportError(status);
    if (now >= run_->measure_end()) {
      run_->CallerFinished();
      return;
    }
    Issue();
  }

  Run* run_;
  Stubs* stubs_;
  std::unique_ptr<grpc::ClientContext> context_;
  Clock::time_point start_;
  health::HealthCheckRequest health_request_;
  health::HealthCheckResponse health_response_;
  pb::GetProjectRequest get_request_;
  opb::ListVersionsRequest versions_request_;
  opb::ListVersionsResponse versions_;
  pb::CreateProjectRequest create_request_;
  pb::Project project_;
  LatencyHistogram latencies_;
  int64_t calls_ = 0;
  int64_t errors_ = 0;
};

}  // namespace

std::optional<Method> ParseMethod(std::string_view name) {
  if (name == "health") return Method::kHealth;
  if (name == "get-project") return Method::kGetProject;
  if (name == "list-versions") return Method::kListVersions;
  if (name == "create-project") return Method::kCreateProject;
  return std::nullopt;
}

std::string_view MethodName(Method method) {
  switch (method) {
    case Method::kHealth:
      return "health";
    case Method::kGetProject:
      return "get-project";
    case Method::kListVersions:
      return "list-versions";
    case Method::kCreateProject:
      return "create-project";
  }
  return "unknown";
}

LoadResult RunLoad(const LoadOptions& options,
                   const std::vector<std::shared_ptr<grpc::Channel>>& channels) {
  std::vector<std::unique_ptr<Stubs>> stubs;
  for (const auto& channel : channels) stubs.push_back(std::make_unique<Stubs>(channel));

  Run run(options, options.callers);
  std::vector<std::unique_ptr<Caller>> callers;
  for (int i = 0; i < options.callers; ++i) {
    callers.push_back(std::make_unique<Caller>(&run, stubs[i % stubs.size()].get()));
  }
  for (auto& caller : callers) caller->Issue();
  run.WaitForCallers();

  LoadResult result;
  result.seconds = absl::ToDoubleSeconds(options.duration);
  for (const auto& caller : callers) {
    result.calls += caller->calls();
    result.errors += caller->errors();
    result.latencies.Merge(caller->latencies());
  }
  return result;
}

}  // namespace qai::loadgen
