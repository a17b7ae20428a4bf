#include "services/messages/handlers.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/jwt.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/validation.h"
#include "services/messages/effects.h"

namespace qai::messages {
namespace {

using common::CallContext;
using common::FieldViolations;

// Visible: whether the caller may read a message of a project owned by `owner`.
bool Visible(const CallContext& call, const std::string& owner) {
  return call.principal.role != common::Role::kUser || call.principal.id == owner;
}

// SafePath: a relative path inside the workspace: no leading '/', no '..' or empty segments.
bool SafePath(std::string_view path) {
  if (path.empty() || path.front() == '/' || absl::StrContains(common::ToAbsl(path), '\\'))
    return false;
  for (absl::string_view part : absl::StrSplit(common::ToAbsl(path), '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

void CheckFragment(FieldViolations& bad, const pb::Fragment& f) {
  common::CheckText(bad, "fragment.title", f.title(), 0, kMaxTitleChars);
  common::CheckText(bad, "fragment.summary", f.summary(), 0, kMaxSummaryChars);
  common::CheckText(bad, "fragment.sandbox_url", f.sandbox_url(), 0, kMaxUrlChars);
  if (!f.sandbox_url().empty() && !absl::StartsWith(f.sandbox_url(), "http://") &&
      !absl::StartsWith(f.sandbox_url(), "https://")) {
    bad.Add("fragment.sandbox_url", "must be an http or https URL");
  }
  if (f.files_size() > static_cast<int>(kMaxFiles)) {
    bad.Add("fragment.files", absl::StrCat("has more than ", kMaxFiles, " files"));
    return;
  }
  size_t bytes = 0;
  for (const auto& [path, content] : f.files()) {
    bytes += content.size();
    const long path_chars = common::Utf8Length(path);
    if (path_chars < 0 || path_chars > static_cast<long>(kMaxPathChars) || !SafePath(path) ||
        path.find('\0') != std::string::npos) {
      bad.Add("fragment.files",
              "holds a path that is not a relative path of at most 512 characters without '..'");
    } else {
      // File contents are stored as JSON text, which holds valid UTF-8 without NUL.
      common::CheckText(bad, absl::StrCat("fragment.files[", path, "]"), content, 0,
                        kMaxFilesBytes);
    }
  }
  if (bytes > kMaxFilesBytes) bad.Add("fragment.files", "are larger than 3 MiB in all");
}

// MessagesThatFit: how many of `rows` (at most `limit`) a page holds: the first always, then
// while the page stays within kMaxPageBytes. A fragment's files count by the sizes stored with
// it (plus each map entry's framing), so none has to be loaded to know.
size_t MessagesThatFit(const std::vector<MessageRecord>& rows, size_t limit, bool with_files) {
  constexpr size_t kFileEntryFraming = 12;  // a map entry's tags and lengths, at most
  size_t bytes = 0, n = 0;
  for (const MessageRecord& r : rows) {
    if (n == limit) break;
    pb::Message m;
    ToProto(r, m);
    bytes += m.ByteSizeLong();
    if (with_files && r.fragment) {
      bytes += static_cast<size_t>(r.fragment->files_bytes) +
               kFileEntryFraming * r.fragment->files_count;
    }
    if (n > 0 && bytes > kMaxPageBytes) break;
    ++n;
  }
  return n;
}

}  // namespace

void ToProto(const MessageRecord& r, pb::Message& out) {
  out.set_id(r.id);
  out.set_project_id(r.project_id);
  out.set_content(r.content);
  out.set_role(static_cast<pb::Message::Role>(r.role));
  out.set_type(static_cast<pb::Message::Type>(r.type));
  out.set_run_id(r.run_id);
  out.set_author(r.author);
  common::SetTimestamp(r.create_time, out.mutable_create_time());
  common::SetTimestamp(r.update_time, out.mutable_update_time());
  if (r.fragment) {
    pb::Fragment* f = out.mutable_fragment();
    f->set_id(r.fragment->id);
    f->set_message_id(r.fragment->message_id);
    f->set_sandbox_url(r.fragment->sandbox_url);
    f->set_title(r.fragment->title);
    f->mutable_files()->insert(r.fragment->files.begin(), r.fragment->files.end());
    f->set_summary(r.fragment->summary);
    common::SetTimestamp(r.fragment->create_time, f->mutable_create_time());
    common::SetTimestamp(r.fragment->update_time, f->mutable_update_time());
  }
}

absl::StatusOr<std::string> MessageHandlers::OwnerOfPrompt(const CallContext& call,
                                                           const pb::CreateMessageRequest& req) {
  // A service relaying a project's first prompt (ProjectService's outbox) names the owner: the
  // relayer vouches for the project, and nobody is asked back.
  if (call.principal.role == common::Role::kService && !req.owner().empty()) return req.owner();
  // Otherwise nothing is written unless ProjectService vouches for the project and the caller.
  return projects_->ProjectOwner(call, req.project_id());
}

absl::Status MessageHandlers::CreateMessage(const CallContext& call,
                                            const pb::CreateMessageRequest& req,
                                            pb::Message& resp) {
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  common::CheckText(bad, "content", req.content(), 1, common::kMaxPromptChars);
  common::CheckUuid(bad, "request_id", req.request_id(), /*required=*/false);
  if (!req.owner().empty() && call.principal.role != common::Role::kService) {
    bad.Add("owner", "is set only by a service relaying a prompt");
  }
  common::CheckText(bad, "owner", req.owner(), 0, common::kMaxJwtSubjectChars);
  if (req.has_fork_of()) {
    if (call.principal.role != common::Role::kService || req.owner().empty()) {
      bad.Add("fork_of", "is set only by ProjectService relaying a fork's first message");
    }
    common::CheckUuid(bad, "fork_of.project_id", req.fork_of().project_id(), /*required=*/true);
    if (req.fork_of().version() < 1) bad.Add("fork_of.version", "must be 1 or more");
  }
  // Checked here so the caller hears of a bad one at once; StartRun fills in the defaults.
  const orchestrator::RequestedRunSettings settings{
      .max_iterations = req.max_iterations(),
      .model = req.model(),
      .timeout = req.has_run_timeout() ? &req.run_timeout() : nullptr};
  orchestrator::CheckRunSettings(*bounds_, settings, {.timeout = "run_timeout"}, bad);
  QAI_RETURN_IF_ERROR(bad.ToStatus());

  QAI_ASSIGN_OR_RETURN(std::string owner, OwnerOfPrompt(call, req));

  CreateParams params{
      .principal = call.principal.id,
      .request_id = req.request_id(),
      .id = common::NewUuid(),
      .project_id = req.project_id(),
      .owner = owner,
      // A service relays someone's prompt: the project's owner wrote it.
      .author = call.principal.role == common::Role::kService ? owner : call.principal.id,
      .content = req.content()};
  const orchestrator::RunCaps& caps = bounds_->caps;
  if (call.principal.role != common::Role::kService &&
      (caps.per_project > 0 || caps.per_principal > 0)) {
    orchestrator::ActiveRuns active;  // unknown: the outbox's rows alone are counted
    if (runs_ != nullptr) {
      absl::StatusOr<orchestrator::ActiveRuns> counted =
          runs_->CountActive(call, params.project_id, params.author);
      if (counted.ok()) {
        active = *counted;
      } else {
        common::Log(common::LogLevel::kWarn,
                    "cannot count the active runs; the caps are checked against the outbox alone "
                    "(StartRun enforces them)",
                    {{"project_id", params.project_id},
                     {"code", absl::StatusCodeToString(counted.status().code())},
                     {"error", std::string(counted.status().message())}});
      }
    }
    params.cap_check = CreateParams::CapCheck{.caps = caps, .active = active};
  }
  params.start_run_payload =
      StartRunPayload(params.project_id, params.id, params.content, params.author, settings,
                      req.has_fork_of() ? &req.fork_of() : nullptr);

  QAI_ASSIGN_OR_RETURN(MessageRecord created, store_->Create(params));
  outbox_written_();
  ToProto(created, resp);
  return absl::OkStatus();
}

absl::Status MessageHandlers::CheckListable(const CallContext& call,
                                            const std::string& project_id) {
  // A service (the orchestrator reading an agent's history) lists a project that has messages
  // without a call to ProjectService: the messages name the project, and a deleted project's
  // messages go with its purge.
  if (call.principal.role == common::Role::kService) {
    QAI_ASSIGN_OR_RETURN(std::optional<std::string> owner, store_->ProjectOwner(project_id));
    if (owner.has_value()) return absl::OkStatus();
  }
  // Anyone else, and a project without messages: ProjectService says whether it exists and the
  // caller may see it.
  return projects_->ProjectOwner(call, project_id).status();
}

absl::Status MessageHandlers::ListMessages(const CallContext& call,
                                           const pb::ListMessagesRequest& req,
                                           pb::ListMessagesResponse& resp) {
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  const bool newest_first = req.order_by() == "create_time desc";
  if (!newest_first && !req.order_by().empty() && req.order_by() != "create_time") {
    bad.Add("order_by", "must be \"create_time\" or \"create_time desc\"");
  }
  if (!pb::ListMessagesRequest::View_IsValid(req.view()))
    bad.Add("view", "must be VIEW_FULL or VIEW_BASIC");
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(int page_size, common::NormalizePageSize(req.page_size()));
  // A token continues only the order it was made for.
  const std::string scope =
      absl::StrCat("messages/project:", req.project_id(), newest_first ? "/desc" : "");
  ListParams params{
      .project_id = req.project_id(), .limit = page_size + 1, .newest_first = newest_first};
  QAI_ASSIGN_OR_RETURN(std::optional<common::KeysetPosition> after,
                       common::DecodePosition(*tokens_, req.page_token(), scope));
  if (after) params.after.emplace(after->micros, after->id);
  QAI_RETURN_IF_ERROR(CheckListable(call, req.project_id()));
  QAI_ASSIGN_OR_RETURN(std::vector<MessageRecord> rows, store_->List(params));
  // The page is what fits, judged by the sizes the store read: files are loaded only for the
  // messages that are sent, so a call costs what it returns, whatever the project stores.
  const bool with_files = req.view() != pb::ListMessagesRequest::VIEW_BASIC;
  const size_t fit = MessagesThatFit(rows, static_cast<size_t>(page_size), with_files);
  const bool more = fit < rows.size();
  rows.resize(fit);
  if (with_files) {
    QAI_RETURN_IF_ERROR(store_->LoadFiles(rows));
  }
  for (const MessageRecord& r : rows) ToProto(r, *resp.add_messages());
  if (more && !rows.empty()) {
    const MessageRecord& last = rows.back();
    resp.set_next_page_token(
        common::EncodePosition(*tokens_, scope, {absl::ToUnixMicros(last.create_time), last.id}));
  }
  return absl::OkStatus();
}

absl::Status MessageHandlers::GetMessage(const CallContext& call, const pb::GetMessageRequest& req,
                                         pb::Message& resp) {
  FieldViolations bad;
  common::CheckUuid(bad, "id", req.id(), /*required=*/true);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(MessageRecord found, store_->Get(req.id()));
  if (!Visible(call, found.owner))
    return absl::NotFoundError(absl::StrCat("message ", req.id(), " not found"));
  ToProto(found, resp);
  return absl::OkStatus();
}

absl::Status MessageHandlers::RecordAgentResult(const CallContext& call,
                                                const pb::RecordAgentResultRequest& req,
                                                pb::Message& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "RecordAgentResult"));
  FieldViolations bad;
  common::CheckUuid(bad, "run_id", req.run_id(), /*required=*/true);
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  common::CheckText(bad, "content", req.content(), 1, kMaxResultChars);
  if (req.type() != pb::Message::TYPE_RESULT && req.type() != pb::Message::TYPE_ERROR) {
    bad.Add("type", "must be TYPE_RESULT or TYPE_ERROR");
  }
  if (req.has_fragment()) {
    if (req.type() == pb::Message::TYPE_ERROR) bad.Add("fragment", "is only for TYPE_RESULT");
    CheckFragment(bad, req.fragment());
  }
  QAI_RETURN_IF_ERROR(bad.ToStatus());

  // The run was started by a message of this project, which names the owner. A project
  // without messages has been deleted (its messages purged): the result has no home.
  QAI_ASSIGN_OR_RETURN(std::optional<std::string> owner, store_->ProjectOwner(req.project_id()));
  if (!owner.has_value()) {
    return absl::NotFoundError(absl::StrCat("project ", req.project_id(), " has no messages"));
  }
  ResultParams params{.id = common::NewUuid(),
                      .run_id = req.run_id(),
                      .project_id = req.project_id(),
                      .owner = *owner,
                      .content = req.content(),
                      .type = req.type()};
  if (req.has_fragment()) {
    const pb::Fragment& f = req.fragment();
    params.fragment = FragmentRecord{.id = common::NewUuid(),
                                     .sandbox_url = f.sandbox_url(),
                                     .title = f.title(),
                                     .files = {f.files().begin(), f.files().end()},
                                     .summary = f.summary()};
  }
  QAI_ASSIGN_OR_RETURN(MessageRecord recorded, store_->RecordResult(params));
  ToProto(recorded, resp);
  return absl::OkStatus();
}

absl::Status MessageHandlers::PurgeProjectMessages(const CallContext& call,
                                                   const pb::PurgeProjectMessagesRequest& req) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "PurgeProjectMessages"));
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  projects_->ForgetProject(req.project_id());  // this replica stops answering from what it knew
  return store_->Purge(req.project_id());
}

}  // namespace qai::messages
