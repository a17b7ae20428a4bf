#pragma once
// What the orchestrator tells the other services, all of it: each topic of its outbox
// (orchestrator.outbox), the payload a row of it carries, and how the relay delivers it, over
// gRPC as this service (x-api-key). RunStore writes the rows in the transaction of the change
// they announce (common/outbox.h), a run's result included, whatever the run's outcome.
//
//   RunStore store(db, LatestRunNews);
//   OutboxRelay::Options options = ...;
//   options.on_parked = MakeParkedHandlers(&store);
//   OutboxRelay relay(db, options, MakeDeliverers(messages, projects, sandbox, key, &store),
//                     MakeBatchDeliverers(projects, key));

#include <map>
#include <memory>
#include <string>

#include "common/outbox.h"
#include "grpcpp/channel.h"

namespace qai::orchestrator {

class RunStore;
struct RunStateChange;

inline constexpr char kOutboxTable[] = "orchestrator.outbox";

// A run's result, to MessageService.RecordAgentResult (idempotent on the run id): a finished
// run's ASSISTANT message (TYPE_RESULT with its fragment, posted by the worker; the run ends
// SUCCEEDED once it is stored, FAILED if it is refused for good) or a failed run's ERROR
// message (written in the transaction that fails the run). Keyed by project (ResultKey), so a
// project's results are stored in order. The stored message's id is recorded on the run.
inline constexpr char kTopicRecordResult[] = "messages.RecordRunResult";
// The topic of the ERROR rows written before results took this road, delivered the same way.
// (A replica of that release does not know kTopicRecordResult, so it leaves those rows to this
// one instead of recording a success it would not end.)
inline constexpr char kTopicRecordErrorBefore[] = "messages.RecordAgentResult";
inline std::string ResultKey(const std::string& project_id) { return project_id; }
// The ERROR message's payload. The details stay in the run's `error`; the user reads
// kErrorMessage.
inline constexpr char kErrorMessage[] = "Something went wrong. Please try again.";
std::string ErrorResult(const std::string& run_id, const std::string& project_id);

// Every change of a run's state, to ProjectService.RecordLatestRuns (Project.latest_run; older
// news ignored), written in the transaction of the change, keyed by project so they arrive in
// order, as many to a call as a relay pass has.
inline constexpr char kTopicRecordLatestRun[] = "projects.RecordLatestRun";
std::string LatestRunNews(const RunStateChange& change);

// A deleted project's purge, to SandboxService.PurgeProject (its workspace, snapshots and
// previews; idempotent), written with the orchestrator's own purge of the project.
inline constexpr char kTopicPurgeSandbox[] = "sandbox.PurgeProject";
std::string PurgeSandboxPayload(const std::string& project_id);

// MakeDeliverers: one deliverer per topic above.
std::map<std::string, common::OutboxRelay::Deliverer> MakeDeliverers(
    std::shared_ptr<grpc::Channel> messages, std::shared_ptr<grpc::Channel> projects,
    std::shared_ptr<grpc::Channel> sandbox, const std::string& api_key, RunStore* store);

// MakeParkedHandlers: a result MessageService refuses for good fails the run waiting for it.
std::map<std::string, common::OutboxRelay::ParkedHandler> MakeParkedHandlers(RunStore* store);

// MakeBatchDeliverers: the topics delivered several rows to a call (the run news).
std::map<std::string, common::OutboxRelay::BatchDeliverer> MakeBatchDeliverers(
    std::shared_ptr<grpc::Channel> projects, const std::string& api_key);

}  // namespace qai::orchestrator
