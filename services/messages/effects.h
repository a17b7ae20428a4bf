#pragma once
// What MessageService tells the other services, all of it: each topic of its outbox
// (messages.outbox), the payload a row of it carries, and how the relay delivers it: over gRPC
// as this service (x-api-key), with the row's id as the request id. The store writes the rows
// in the transaction of the change they announce (common/outbox.h).
//
//   EnqueueOutbox(conn, kOutboxTable, {kTopicStartRun, StartRunPayload(prompt, settings), ...});
//   OutboxRelay relay(db, options, MakeDeliverers(channel, api_key, &store), {},
//   MakeParkedHandlers());

#include <map>
#include <memory>
#include <string>

#include "common/outbox.h"
#include "grpcpp/channel.h"
#include "qai/messages/v1/messages.pb.h"
#include "services/messages/store.h"
#include "services/orchestrator/client/run_settings.h"

namespace qai::messages {

// A USER message's run, to AgentOrchestrator.StartRun: the prompt, who wrote it (the principal
// the run counts against) and the run's settings as the request asked for them.
// (kTopicStartRun and kOutboxTable are in store.h, whose cap counts read the rows.)
std::string StartRunPayload(const std::string& project_id, const std::string& message_id,
                            const std::string& prompt, const std::string& author,
                            const orchestrator::RequestedRunSettings& settings,
                            const messages::v1::ForkOf* fork = nullptr);

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
