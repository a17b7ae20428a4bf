#include "services/projects/deliverers.h"

#include "absl/strings/str_cat.h"
#include "common/client.h"
#include "common/status.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "services/projects/store.h"

namespace qai::projects {
namespace {

constexpr absl::Duration kCallTimeout = absl::Seconds(10);

absl::Status Malformed(const common::OutboxRow& row) {
  return absl::InternalError(absl::StrCat("outbox row ", row.id, " has an unreadable payload"));
}

}  // namespace

std::map<std::string, common::OutboxRelay::Deliverer> MakeDeliverers(const DownstreamTargets& targets) {
  auto messages = std::shared_ptr<messages::v1::MessageService::Stub>(
      messages::v1::MessageService::NewStub(common::MakeChannel(targets.messages_addr)));
  auto orchestrator = std::shared_ptr<orchestrator::v1::AgentOrchestrator::Stub>(
      orchestrator::v1::AgentOrchestrator::NewStub(common::MakeChannel(targets.orchestrator_addr)));
  const std::string key = targets.api_key;

  std::map<std::string, common::OutboxRelay::Deliverer> out;
  out[kTopicCreateMessage] = [messages, key](const common::OutboxRow& row) -> absl::Status {
    messages::v1::CreateMessageRequest req;
    if (!req.ParseFromString(row.payload)) return Malformed(row);
    // The receiver deduplicates on this id: a redelivery returns the first message.
    req.set_request_id(row.id);
    grpc::ClientContext ctx;
    common::PrepareServiceCall(ctx, key, row.trace_request_id, kCallTimeout);
    messages::v1::Message resp;
    return common::FromGrpcStatus(messages->CreateMessage(&ctx, req, &resp));
  };
  out[kTopicPurgeMessages] = [messages, key](const common::OutboxRow& row) -> absl::Status {
    messages::v1::PurgeProjectMessagesRequest req;
    if (!req.ParseFromString(row.payload)) return Malformed(row);
    grpc::ClientContext ctx;
    common::PrepareServiceCall(ctx, key, row.trace_request_id, kCallTimeout);
    google::protobuf::Empty resp;
    return common::FromGrpcStatus(messages->PurgeProjectMessages(&ctx, req, &resp));
  };
  out[kTopicCancelRuns] = [orchestrator, key](const common::OutboxRow& row) -> absl::Status {
    orchestrator::v1::CancelProjectRunsRequest req;
    if (!req.ParseFromString(row.payload)) return Malformed(row);
    grpc::ClientContext ctx;
    common::PrepareServiceCall(ctx, key, row.trace_request_id, kCallTimeout);
    google::protobuf::Empty resp;
    return common::FromGrpcStatus(orchestrator->CancelProjectRuns(&ctx, req, &resp));
  };
  return out;
}

}  // namespace qai::projects
