#pragma once
// What ProjectService tells the other services, all of it: each topic of its outbox
// (projects.outbox), the payload a row of it carries, and how the relay delivers it: over gRPC
// as this service (x-api-key), with the row's id as the request id where the receiver
// deduplicates on one. The store writes the rows in the transaction of the change they announce
// (common/outbox.h); nothing else of this service calls another.
//
//   EnqueueOutbox(conn, kOutboxTable, {kTopicCreateMessage, FirstPromptPayload(id, prompt, owner),
//   id}); OutboxRelay relay(db, options, MakeDeliverers({.messages_addr = ..., .api_key = ...}));

#include <map>
#include <memory>
#include <string>

#include "common/grpc_limits.h"
#include "common/outbox.h"

namespace qai::projects {

inline constexpr char kOutboxTable[] = "projects.outbox";

// A new project's first prompt, to MessageService.CreateMessage. It names the project's owner,
// who wrote it, so MessageService stores it without asking this service back.
inline constexpr char kTopicCreateMessage[] = "messages.CreateMessage";
std::string FirstPromptPayload(const std::string& project_id, const std::string& prompt,
                               const std::string& owner);
// A fork's first message (ForkProject), the same way: its run restores version `version` of
// `source` into the new project instead of asking a model.
std::string ForkFirstMessagePayload(const std::string& project_id, const std::string& content,
                                    const std::string& owner, const std::string& source,
                                    int version);

// A deleted project's messages go: MessageService.PurgeProjectMessages.
inline constexpr char kTopicPurgeMessages[] = "messages.PurgeProjectMessages";
std::string PurgeMessagesPayload(const std::string& project_id);

// A deleted project's runs stop and its previews go: AgentOrchestrator.CancelProjectRuns.
inline constexpr char kTopicCancelRuns[] = "orchestrator.CancelProjectRuns";
std::string CancelRunsPayload(const std::string& project_id);

struct DownstreamTargets {
  std::string messages_addr;
  std::string orchestrator_addr;
  std::string api_key;
  common::GrpcLimits limits;  // of the channels to them
};

// MakeDeliverers: one deliverer per topic above.
std::map<std::string, common::OutboxRelay::Deliverer> MakeDeliverers(
    const DownstreamTargets& targets);

}  // namespace qai::projects
