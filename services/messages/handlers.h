#pragma once
// MessageHandlers: MessageService's calls, proto in and proto out. They validate requests
// (naming every bad field), check who may see what (ProjectService decides for projects,
// SERVICE principals alone may record results and purge), and translate between protos and
// the store's records. No SQL here; no gRPC plumbing either (see service.h).
//
// CreateMessage refuses a user's prompt whose run would pass a cap on runs queued or running
// at once (QAI_RUN_MAX_ACTIVE_PER_PROJECT, QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL) with
// RESOURCE_EXHAUSTED, before writing anything: the orchestrator's count (CountActiveRuns) plus
// the StartRun rows still in this service's outbox. When the orchestrator cannot answer, the
// prompt goes on with the outbox's count alone (StartRun enforces the caps again). A SERVICE
// caller (the projects relay delivering a new project's first prompt, already accepted) is not
// checked here; its run waits in the outbox while a cap is reached.

#include <functional>

#include "absl/status/status.h"
#include "common/page_token.h"
#include "common/rpc.h"
#include "qai/messages/v1/messages.pb.h"
#include "services/messages/client/messages_client.h"
#include "services/messages/store.h"
#include "services/orchestrator/client/run_settings.h"
#include "services/orchestrator/client/runs_client.h"
#include "services/projects/client/projects_client.h"

namespace qai::messages {

namespace pb = ::qai::messages::v1;

class MessageHandlers {
 public:
  // outbox_written is called after a committed change queued outbox rows (to wake the relay);
  // CreateMessage's run settings are checked against `bounds`, and a user's prompt against its
  // caps on active runs, with the counts `runs` gives (nullptr: the outbox's rows only).
  MessageHandlers(MessageStore* store, const projects::ProjectsClient* projects,
                  const common::PageTokenCodec* tokens, const orchestrator::RunBounds* bounds,
                  std::function<void()> outbox_written,
                  const orchestrator::RunsClient* runs = nullptr)
      : store_(store),
        projects_(projects),
        tokens_(tokens),
        bounds_(bounds),
        outbox_written_(std::move(outbox_written)),
        runs_(runs) {}

  absl::Status CreateMessage(const common::CallContext& call, const pb::CreateMessageRequest& req,
                             pb::Message& resp);
  absl::Status ListMessages(const common::CallContext& call, const pb::ListMessagesRequest& req,
                            pb::ListMessagesResponse& resp);
  absl::Status GetMessage(const common::CallContext& call, const pb::GetMessageRequest& req,
                          pb::Message& resp);
  absl::Status RecordAgentResult(const common::CallContext& call,
                                 const pb::RecordAgentResultRequest& req, pb::Message& resp);
  absl::Status PurgeProjectMessages(const common::CallContext& call,
                                    const pb::PurgeProjectMessagesRequest& req);

 private:
  // OwnerOfPrompt: the owner of the project a prompt is for, as its relayer names it or as
  // ProjectService answers (NOT_FOUND when the caller may not see the project).
  absl::StatusOr<std::string> OwnerOfPrompt(const common::CallContext& call,
                                            const pb::CreateMessageRequest& req);
  // CheckListable: OK when the caller may list the project's messages; NOT_FOUND otherwise.
  absl::Status CheckListable(const common::CallContext& call, const std::string& project_id);

  MessageStore* const store_;
  const projects::ProjectsClient* const projects_;
  const common::PageTokenCodec* const tokens_;
  const orchestrator::RunBounds* const bounds_;
  const std::function<void()> outbox_written_;
  const orchestrator::RunsClient* const runs_;
};

// ToProto: a record as the API shows it.
void ToProto(const MessageRecord& record, pb::Message& out);

// Limits that keep one result within the 4 MiB a server accepts (a prompt's is
// common::kMaxPromptChars).
inline constexpr size_t kMaxResultChars = 100000;
inline constexpr size_t kMaxTitleChars = 200;
inline constexpr size_t kMaxSummaryChars = 20000;
inline constexpr size_t kMaxUrlChars = 2048;
inline constexpr size_t kMaxFiles = kMaxFragmentFiles;
inline constexpr size_t kMaxPathChars = 512;
inline constexpr size_t kMaxFilesBytes = kMaxFragmentFilesBytes;
// A page of ListMessages stops growing past this many bytes (at least one message is sent),
// so big fragments cannot add up to a response no client accepts.
inline constexpr size_t kMaxPageBytes = 3 << 20;

}  // namespace qai::messages
