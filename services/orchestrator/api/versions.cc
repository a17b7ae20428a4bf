#include "services/orchestrator/api/versions.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/validation.h"
#include "services/orchestrator/api/download_name.h"
#include "services/orchestrator/api/handlers.h"
#include "services/orchestrator/store/events.h"

namespace qai::orchestrator {

using common::CallContext;
using common::FieldViolations;

void ToProto(const VersionRecord& r, v1::Version& out) {
  out.set_project_id(r.project_id);
  out.set_number(r.number);
  out.set_run_id(r.run_id);
  out.set_message_id(r.message_id);
  out.set_sandbox_url(r.sandbox_url);
  out.set_title(r.title);
  out.set_author(r.author);
  common::SetTimestamp(r.create_time, out.mutable_create_time());
  out.set_restored_from(r.restored_from);
  out.set_forked_from_project_id(r.forked_from_project_id);
}

absl::Status VersionHandlers::ListVersions(const CallContext& call,
                                           const v1::ListVersionsRequest& req,
                                           v1::ListVersionsResponse& resp) {
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(int page_size, common::NormalizePageSize(req.page_size()));
  // A page ends at a version number; the token carries the last one returned.
  const std::string scope = absl::StrCat("versions/project:", req.project_id());
  QAI_ASSIGN_OR_RETURN(std::optional<common::KeysetPosition> after,
                       common::DecodePosition(*tokens_, req.page_token(), scope));
  std::optional<int> before;
  if (after) before = static_cast<int>(after->micros);
  QAI_RETURN_IF_ERROR(CheckProject(*projects_, call, req.project_id()));
  QAI_ASSIGN_OR_RETURN(std::vector<VersionRecord> versions,
                       store_->List(req.project_id(), page_size + 1, before));
  const bool more = static_cast<int>(versions.size()) > page_size;
  if (more) versions.pop_back();
  for (const VersionRecord& v : versions) ToProto(v, *resp.add_versions());
  if (more) {
    resp.set_next_page_token(
        common::EncodePosition(*tokens_, scope, {.micros = versions.back().number, .id = ""}));
  }
  return absl::OkStatus();
}

absl::Status VersionHandlers::GetVersion(const CallContext& call, const v1::GetVersionRequest& req,
                                         v1::Version& resp) {
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  if (req.number() < 1) bad.Add("number", "must be 1 or more");
  if (!v1::GetVersionRequest::View_IsValid(req.view())) bad.Add("view", "is not a known value");
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  // A user learns the project's name too, for the download's file name; a service (ForkProject
  // asking whether the version exists) needs neither.
  std::optional<projects::v1::Project> project;
  if (call.principal.role != common::Role::kService) {
    QAI_ASSIGN_OR_RETURN(project, projects_->GetProject(call, req.project_id()));
  }
  QAI_ASSIGN_OR_RETURN(VersionRecord version, store_->Get(req.project_id(), req.number()));
  const bool full = req.view() == v1::GetVersionRequest::VIEW_FULL;
  QAI_ASSIGN_OR_RETURN(sandbox::v1::SnapshotFiles files,
                       sandbox_->GetSnapshot(version.project_id, version.snapshot_id, full));
  ToProto(version, resp);
  if (project) {
    resp.set_download_url(DownloadUrl(
        version.sandbox_url, version.snapshot_id,
        DownloadBaseName(project->display_name(), project->name(), version.number) + ".zip"));
  }
  for (sandbox::v1::SnapshotFile& f : *files.mutable_files()) {
    v1::VersionFile* out = resp.add_files();
    out->set_path(std::move(*f.mutable_path()));
    out->set_size(f.size());
    out->set_sha256(std::move(*f.mutable_sha256()));
    out->set_content(std::move(*f.mutable_content()));
  }
  return absl::OkStatus();
}

absl::Status VersionHandlers::RestoreVersion(const CallContext& call,
                                             const v1::RestoreVersionRequest& req, v1::Run& resp) {
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  if (req.number() < 1) bad.Add("number", "must be 1 or more");
  common::CheckUuid(bad, "request_id", req.request_id(), /*required=*/true);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_RETURN_IF_ERROR(CheckProject(*projects_, call, req.project_id()));
  QAI_ASSIGN_OR_RETURN(VersionRecord version, store_->Get(req.project_id(), req.number()));
  QAI_ASSIGN_OR_RETURN(
      RunRecord run,
      runs_->Start({.id = common::NewUuid(),
                    .project_id = version.project_id,
                    .prompt = absl::StrCat("Restore version ", version.number),
                    .max_iterations = 1,
                    .timeout = bounds_->default_timeout,
                    .queued_event = events::Queued(),
                    .author = call.principal.id,
                    .caps = bounds_->caps,
                    .restore_version = version.number,
                    .request_key = absl::StrCat(call.principal.id, ":",
                                                absl::AsciiStrToLower(req.request_id()))}));
  run_queued_();
  ToProto(run, resp);
  return absl::OkStatus();
}

}  // namespace qai::orchestrator
