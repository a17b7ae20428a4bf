#pragma once
// The orchestrator outbox's topics and how each is delivered, as a SERVICE principal: a failed
// run's ERROR message to MessageService.RecordAgentResult (idempotent on the run id), each
// run's state changes to ProjectService.RecordLatestRuns, as many as a relay pass has in one
// call (Project.latest_run; older news ignored), and a deleted project's purge to
// SandboxService.PurgeProject (idempotent).

#include <map>
#include <memory>
#include <string>

#include "common/outbox.h"
#include "grpcpp/channel.h"
#include "services/orchestrator/store/run_store.h"

namespace qai::orchestrator {

// MakeDeliverers: one deliverer per topic RunStore writes. The stored message's id is
// recorded on the run.
std::map<std::string, common::OutboxRelay::Deliverer> MakeDeliverers(
    std::shared_ptr<grpc::Channel> messages, std::shared_ptr<grpc::Channel> projects,
    std::shared_ptr<grpc::Channel> sandbox, const std::string& api_key, RunStore* store);

// MakeBatchDeliverers: the topics delivered several rows to a call (the run news).
std::map<std::string, common::OutboxRelay::BatchDeliverer> MakeBatchDeliverers(
    std::shared_ptr<grpc::Channel> projects, const std::string& api_key);

// LatestRunNews: the RecordLatestRunRequest announcing a run's state change (RunStore's StateNews).
std::string LatestRunNews(const RunStateChange& change);

}  // namespace qai::orchestrator
