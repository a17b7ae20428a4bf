#include "services/orchestrator/messages_client.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "common/client.h"
#include "common/log.h"
#include "common/status.h"

namespace qai::orchestrator {

namespace mpb = ::qai::messages::v1;

MessagesClient::MessagesClient(std::shared_ptr<grpc::Channel> channel, std::string api_key, absl::Duration timeout)
    : stub_(mpb::MessageService::NewStub(std::move(channel))), api_key_(std::move(api_key)), timeout_(timeout) {}

absl::StatusOr<std::vector<ChatMessage>> MessagesClient::History(const std::string& project_id,
                                                                 const std::string& message_id,
                                                                 size_t max_messages) const {
  std::deque<ChatMessage> turns;
  std::string token;
  // A conversation is read page by page up to the run's own message; only the newest turns
  // are kept, so memory stays bounded however long the conversation is.
  for (int pages = 0; pages < 1000; ++pages) {
    grpc::ClientContext ctx;
    common::PrepareServiceCall(ctx, api_key_, common::CurrentRequestId(), timeout_);
    mpb::ListMessagesRequest req;
    req.set_project_id(project_id);
    req.set_page_size(100);
    req.set_page_token(token);
    mpb::ListMessagesResponse resp;
    if (absl::Status s = common::FromGrpcStatus(stub_->ListMessages(&ctx, req, &resp)); !s.ok()) return s;
    for (const mpb::Message& m : resp.messages()) {
      if (m.id() == message_id) return std::vector<ChatMessage>(turns.begin(), turns.end());
      ChatMessage turn;
      if (m.role() == mpb::Message::ROLE_USER) {
        turn.role = ChatMessage::Role::kUser;
        turn.content = m.content();
      } else {
        turn.role = ChatMessage::Role::kAssistant;
        turn.content = m.content();
        if (m.has_fragment() && !m.fragment().summary().empty()) {
          absl::StrAppend(&turn.content, "\n<task_summary>", m.fragment().summary(), "</task_summary>");
        }
      }
      turns.push_back(std::move(turn));
      if (turns.size() > max_messages) turns.pop_front();
    }
    token = resp.next_page_token();
    if (token.empty()) {
      // The run's message is gone (its project was deleted meanwhile): there is nothing to do.
      return absl::NotFoundError(absl::StrCat("message ", message_id, " not found in its project"));
    }
  }
  return absl::FailedPreconditionError("the conversation is too long to read (over 100,000 messages)");
}

absl::StatusOr<std::string> MessagesClient::Record(const mpb::RecordAgentResultRequest& request) const {
  grpc::ClientContext ctx;
  common::PrepareServiceCall(ctx, api_key_, common::CurrentRequestId(), timeout_);
  mpb::Message stored;
  if (absl::Status s = common::FromGrpcStatus(stub_->RecordAgentResult(&ctx, request, &stored)); !s.ok()) return s;
  return stored.id();
}

}  // namespace qai::orchestrator
