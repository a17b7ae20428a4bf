#pragma once
// The messages outbox's topics and how each is delivered: StartRun to the orchestrator, as a
// SERVICE principal, with the outbox row id as request id.

#include <map>
#include <memory>
#include <string>

#include "common/outbox.h"
#include "grpcpp/channel.h"
#include "services/messages/store.h"

namespace qai::messages {

// MakeDeliverers: one deliverer per topic the messages store writes. When the orchestrator
// names the run a message started, it is recorded on the message. A StartRun the orchestrator
// refuses with RESOURCE_EXHAUSTED (a cap on active runs is reached) is not a final refusal:
// the relay keeps the row and tries again with backoff until a run ends and makes room.
std::map<std::string, common::OutboxRelay::Deliverer> MakeDeliverers(
    std::shared_ptr<grpc::Channel> orchestrator, const std::string& api_key, MessageStore* store);

// MakeParkedHandlers: a StartRun the orchestrator refuses for good (a setting it will not take,
// say) leaves an ERROR message in the prompt's project with the reason, written with the park.
std::map<std::string, common::OutboxRelay::ParkedHandler> MakeParkedHandlers();

}  // namespace qai::messages
