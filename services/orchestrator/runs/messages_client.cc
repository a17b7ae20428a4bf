#include "services/orchestrator/runs/messages_client.h"

#include "absl/strings/str_cat.h"
#include "common/client.h"
#include "common/log.h"
#include "common/status.h"
#include "common/status_macros.h"

namespace qai::orchestrator {

namespace mpb = ::qai::messages::v1;

MessagesClient::MessagesClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
                               absl::Duration timeout)
    : stub_(mpb::MessageService::NewStub(std::move(channel))),
      api_key_(std::move(api_key)),
      timeout_(timeout) {}

absl::StatusOr<std::vector<ChatMessage>> MessagesClient::History(const std::string& project_id,
                                                                 const std::string& message_id,
                                                                 size_t max_messages) const {
  // The conversation is read newest first and without the fragments' files, down to the run's
  // own message (only prompts queued behind it are newer) and then the `max_messages` turns
  // before it: a few small pages however long the conversation is.
  std::vector<ChatMessage> newest_first;
  bool found = false;
  std::string token;
  for (int pages = 0; pages < 1000; ++pages) {
    grpc::ClientContext ctx;
    common::PrepareServiceCall(ctx, api_key_, common::CurrentRequestId(), timeout_);
    mpb::ListMessagesRequest req;
    req.set_project_id(project_id);
    req.set_page_size(100);
    req.set_page_token(token);
    req.set_order_by("create_time desc");
    req.set_view(mpb::ListMessagesRequest::VIEW_BASIC);
    mpb::ListMessagesResponse resp;
    QAI_RETURN_IF_ERROR(common::FromGrpcStatus(stub_->ListMessages(&ctx, req, &resp)));
    for (const mpb::Message& m : resp.messages()) {
      if (!found) {
        found = m.id() == message_id;
        continue;
      }
      if (newest_first.size() == max_messages) break;
      ChatMessage turn;
      turn.content = m.content();
      if (m.role() == mpb::Message::ROLE_USER) {
        turn.role = ChatMessage::Role::kUser;
      } else {
        turn.role = ChatMessage::Role::kAssistant;
        if (m.has_fragment() && !m.fragment().summary().empty()) {
          absl::StrAppend(&turn.content, "\n<task_summary>", m.fragment().summary(),
                          "</task_summary>");
        }
      }
      newest_first.push_back(std::move(turn));
    }
    token = resp.next_page_token();
    if (newest_first.size() == max_messages || token.empty()) break;
  }
  if (!found && !token.empty()) {
    return absl::FailedPreconditionError("over 100,000 messages were sent after the run's own");
  }
  // The run's message is gone (its project was deleted meanwhile): there is nothing to do.
  if (!found)
    return absl::NotFoundError(absl::StrCat("message ", message_id, " not found in its project"));
  return std::vector<ChatMessage>(newest_first.rbegin(), newest_first.rend());
}

absl::StatusOr<std::string> MessagesClient::Record(
    const mpb::RecordAgentResultRequest& request) const {
  grpc::ClientContext ctx;
  common::PrepareServiceCall(ctx, api_key_, common::CurrentRequestId(), timeout_);
  mpb::Message stored;
  QAI_RETURN_IF_ERROR(common::FromGrpcStatus(stub_->RecordAgentResult(&ctx, request, &stored)));
  return stored.id();
}

}  // namespace qai::orchestrator
