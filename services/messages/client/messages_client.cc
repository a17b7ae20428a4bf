#include "services/messages/client/messages_client.h"

#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/client.h"
#include "common/log.h"
#include "common/status.h"
#include "common/status_macros.h"

namespace qai::messages {

MessagesClient::MessagesClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
                               absl::Duration timeout)
    : stub_(v1::MessageService::NewStub(std::move(channel))),
      api_key_(std::move(api_key)),
      timeout_(timeout) {}

absl::StatusOr<std::vector<v1::Message>> MessagesClient::Before(const std::string& project_id,
                                                                const std::string& message_id,
                                                                size_t max_messages) const {
  // The conversation is read newest first and without the fragments' files, down to the
  // message (only prompts queued behind it are newer) and then the `max_messages` before it:
  // a few small pages however long the conversation is.
  std::vector<v1::Message> newest_first;
  bool found = false;
  std::string token;
  for (int pages = 0; pages < 1000; ++pages) {
    grpc::ClientContext ctx;
    common::PrepareServiceCall(ctx, api_key_, common::CurrentRequestId(), timeout_);
    v1::ListMessagesRequest req;
    req.set_project_id(project_id);
    req.set_page_size(100);
    req.set_page_token(token);
    req.set_order_by("create_time desc");
    req.set_view(v1::ListMessagesRequest::VIEW_BASIC);
    v1::ListMessagesResponse resp;
    QAI_RETURN_IF_ERROR(common::FromGrpcStatus(stub_->ListMessages(&ctx, req, &resp)));
    for (v1::Message& m : *resp.mutable_messages()) {
      if (!found) {
        found = m.id() == message_id;
        continue;
      }
      if (newest_first.size() == max_messages) break;
      newest_first.push_back(std::move(m));
    }
    token = resp.next_page_token();
    if (newest_first.size() == max_messages || token.empty()) break;
  }
  if (!found && !token.empty()) {
    return absl::FailedPreconditionError("over 100,000 messages were sent after the run's own");
  }
  // The message is gone (its project was deleted meanwhile).
  if (!found)
    return absl::NotFoundError(absl::StrCat("message ", message_id, " not found in its project"));
  return std::vector<v1::Message>(std::make_move_iterator(newest_first.rbegin()),
                                  std::make_move_iterator(newest_first.rend()));
}

}  // namespace qai::messages
