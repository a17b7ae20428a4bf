#pragma once
// The orchestrator outbox's topics and how each is delivered: a failed run's ERROR message to
// MessageService.RecordAgentResult (idempotent on the run id), as a SERVICE principal.

#include <map>
#include <memory>
#include <string>

#include "common/outbox.h"
#include "grpcpp/channel.h"
#include "services/orchestrator/run_store.h"

namespace qai::orchestrator {

// MakeDeliverers: one deliverer per topic RunStore writes. The stored message's id is
// recorded on the run.
std::map<std::string, common::OutboxRelay::Deliverer> MakeDeliverers(std::shared_ptr<grpc::Channel> messages,
                                                                     const std::string& api_key, RunStore* store);

}  // namespace qai::orchestrator
