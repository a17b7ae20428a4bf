#include "services/orchestrator/api/handlers.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/validation.h"
#include "services/orchestrator/store/events.h"

namespace qai::orchestrator {

using common::CallContext;
using common::FieldViolations;

absl::Status CheckProject(const projects::ProjectsClient& projects, const CallContext& call,
                          const std::string& project_id) {
  if (call.principal.role == common::Role::kService) return absl::OkStatus();
  return projects.ProjectOwner(call, project_id).status();
}

void ToProto(const RunRecord& r, v1::Run& out) {
  out.set_id(r.id);
  out.set_project_id(r.project_id);
  out.set_message_id(r.message_id);
  out.set_state(static_cast<v1::Run::State>(r.state));
  out.set_attempt(r.attempt);
  out.set_iteration(r.iteration);
  out.set_max_iterations(r.max_iterations);
  common::SetTimestamp(r.create_time, out.mutable_create_time());
  if (r.start_time) common::SetTimestamp(*r.start_time, out.mutable_start_time());
  if (r.end_time) common::SetTimestamp(*r.end_time, out.mutable_end_time());
  out.set_error(r.error);
  out.set_result_message_id(r.result_message_id);
  out.set_sandbox_url(r.sandbox_url);
  out.set_last_sequence(r.last_sequence);
  out.set_prompt_tokens(r.prompt_tokens);
  out.set_completion_tokens(r.completion_tokens);
  out.set_model(r.model);
  if (r.timeout > absl::ZeroDuration()) common::SetDuration(r.timeout, out.mutable_timeout());
  out.set_steps(r.steps);
  out.set_author(r.author);
  out.set_draft_url(r.draft_url);
  out.set_version(r.version);
  out.set_restore_version(r.restore_version);
}

absl::Status RunHandlers::StartRun(const CallContext& call, const v1::StartRunRequest& req,
                                   v1::Run& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "StartRun"));
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  common::CheckUuid(bad, "message_id", req.message_id(), /*required=*/true);
  common::CheckText(bad, "prompt", req.prompt(), 1, common::kMaxPromptChars);
  common::CheckUuid(bad, "request_id", req.request_id(), /*required=*/false);
  // StartRun is for services only, which pass on the prompt's author (the messages relay).
  common::CheckText(bad, "author", req.author(), 0, kMaxAuthorChars);
  // A fork's first run restores another project's version (both or neither).
  common::CheckUuid(bad, "restore_project_id", req.restore_project_id(),
                    /*required=*/req.restore_version() != 0);
  if (req.restore_version() < 0 || (req.restore_version() == 0) != req.restore_project_id().empty())
    bad.Add("restore_version", "must be 1 or more with restore_project_id, else 0");
  if (!v1::StartRunRequest::Multitask_IsValid(req.multitask()))
    bad.Add("multitask", "is not a known value");
  const orchestrator::RunSettings settings =
      orchestrator::CheckRunSettings(*bounds_,
                                     {.max_iterations = req.max_iterations(),
                                      .model = req.model(),
                                      .timeout = req.has_timeout() ? &req.timeout() : nullptr},
                                     {}, bad);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  absl::StatusOr<RunRecord> run =
      store_->Start({.id = common::NewUuid(),
                     .project_id = req.project_id(),
                     .message_id = req.message_id(),
                     .prompt = req.prompt(),
                     .max_iterations = settings.max_iterations,
                     .model = settings.model,
                     .timeout = settings.timeout,
                     .reject_if_active = req.multitask() == v1::StartRunRequest::MULTITASK_REJECT,
                     .queued_event = events::Queued(),
                     .author = req.author(),
                     .caps = bounds_->caps,
                     .restore_version = req.restore_version(),
                     .restore_project_id = absl::AsciiStrToLower(req.restore_project_id())});
  if (!run.ok()) return run.status();
  run_queued_();
  ToProto(*run, resp);
  return absl::OkStatus();
}

absl::StatusOr<RunRecord> RunHandlers::VisibleRun(const CallContext& call,
                                                  const std::string& id) const {
  QAI_ASSIGN_OR_RETURN(RunRecord run, store_->Get(id));
  absl::Status visible = CheckProject(*projects_, call, run.project_id);
  if (visible.code() == absl::StatusCode::kNotFound)
    return absl::NotFoundError(absl::StrCat("run ", id, " not found"));
  if (!visible.ok()) return visible;
  return run;
}

absl::Status RunHandlers::GetRun(const CallContext& call, const v1::GetRunRequest& req,
                                 v1::Run& resp) {
  FieldViolations bad;
  common::CheckUuid(bad, "id", req.id(), /*required=*/true);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(RunRecord run, VisibleRun(call, req.id()));
  ToProto(run, resp);
  return absl::OkStatus();
}

absl::Status RunHandlers::ListRuns(const CallContext& call, const v1::ListRunsRequest& req,
                                   v1::ListRunsResponse& resp) {
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(int page_size, common::NormalizePageSize(req.page_size()));
  const std::string scope = absl::StrCat("runs/project:", req.project_id());
  QAI_ASSIGN_OR_RETURN(std::optional<common::KeysetPosition> after,
                       common::DecodePosition(*tokens_, req.page_token(), scope));
  std::optional<std::pair<int64_t, std::string>> before;
  if (after) before.emplace(after->micros, after->id);
  QAI_RETURN_IF_ERROR(CheckProject(*projects_, call, req.project_id()));
  QAI_ASSIGN_OR_RETURN(std::vector<RunRecord> runs,
                       store_->List(req.project_id(), page_size + 1, before));
  const bool more = static_cast<int>(runs.size()) > page_size;
  if (more) runs.pop_back();
  for (const RunRecord& r : runs) ToProto(r, *resp.add_runs());
  if (more) {
    resp.set_next_page_token(common::EncodePosition(
        *tokens_, scope, {absl::ToUnixMicros(runs.back().create_time), runs.back().id}));
  }
  return absl::OkStatus();
}

absl::Status RunHandlers::CancelRun(const CallContext& call, const v1::CancelRunRequest& req,
                                    v1::Run& resp) {
  FieldViolations bad;
  common::CheckUuid(bad, "id", req.id(), /*required=*/true);
  common::CheckUuid(bad, "request_id", req.request_id(), /*required=*/false);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  if (absl::StatusOr<RunRecord> visible = VisibleRun(call, req.id()); !visible.ok())
    return visible.status();
  // Idempotent by nature: a repeat finds the run cancelled (or being cancelled) already.
  QAI_ASSIGN_OR_RETURN(RunRecord run, store_->Cancel(req.id(), events::Cancelled()));
  ToProto(run, resp);
  return absl::OkStatus();
}

absl::Status RunHandlers::CancelProjectRuns(const CallContext& call,
                                            const v1::CancelProjectRunsRequest& req) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "CancelProjectRuns"));
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  // Sent when the project is deleted: this replica stops answering from what it knew of it.
  projects_->ForgetProject(req.project_id());
  QAI_RETURN_IF_ERROR(store_->CancelProject(req.project_id(), events::Cancelled()));
  return req.purge() ? store_->PurgeProject(req.project_id()) : absl::OkStatus();
}

absl::Status RunHandlers::CountActiveRuns(const CallContext& call,
                                          const v1::CountActiveRunsRequest& req,
                                          v1::CountActiveRunsResponse& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "CountActiveRuns"));
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  common::CheckText(bad, "author", req.author(), 0, kMaxAuthorChars);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(orchestrator::ActiveRuns active,
                       store_->CountActive(req.project_id(), req.author()));
  resp.set_project_active(active.project);
  resp.set_principal_active(active.principal);
  return absl::OkStatus();
}

}  // namespace qai::orchestrator
