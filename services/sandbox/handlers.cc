#include "services/sandbox/handlers.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/auth.h"
#include "common/proto_time.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "common/validation.h"

namespace qai::sandbox {
namespace {

using common::CallContext;
using common::FieldViolations;

void CheckWorkspace(FieldViolations& bad, const std::string& project_id, int64_t fence) {
  common::CheckUuid(bad, "project_id", project_id, /*required=*/true);
  if (fence <= 0) bad.Add("fence", "must be positive");
}

// CheckFiles: the count and total size of files a request carries.
void CheckFiles(FieldViolations& bad, const std::string& field, size_t count, size_t bytes,
                const HandlerLimits& limits) {
  if (count > limits.max_files)
    bad.Add(field, absl::StrCat("at most ", limits.max_files, " files"));
  if (bytes > limits.max_request_bytes) {
    bad.Add(field, absl::StrCat("at most ", limits.max_request_bytes, " bytes of content in all"));
  }
}

void FillResult(const FileOutcome& f, v1::FileResult* out) {
  out->set_path(f.path);
  out->set_content(f.content);
  if (!f.status.ok()) out->set_error(std::string(f.status.message()));
}

}  // namespace

absl::Status SandboxHandlers::LocateWorkspace(const CallContext& call,
                                              const v1::LocateWorkspaceRequest& req,
                                              v1::WorkspaceLocation& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "LocateWorkspace"));
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  const std::string project_id = absl::AsciiStrToLower(req.project_id());
  QAI_ASSIGN_OR_RETURN(Replica where, replicas_->Locate(project_id));
  resp.set_project_id(project_id);
  resp.set_replica(where.name);
  resp.set_address(where.address);
  return absl::OkStatus();
}

absl::Status SandboxHandlers::OpenWorkspace(const CallContext& call,
                                            const v1::OpenWorkspaceRequest& req,
                                            v1::Workspace& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "OpenWorkspace"));
  FieldViolations bad;
  CheckWorkspace(bad, req.project_id(), req.fence());
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_RETURN_IF_ERROR(replicas_->Claim(absl::AsciiStrToLower(req.project_id()), options_.self.id));
  QAI_ASSIGN_OR_RETURN(WorkspaceInfo info, workspaces_->Open(req.project_id(), req.fence()));
  resp.set_project_id(absl::AsciiStrToLower(req.project_id()));
  resp.set_snapshot_id(info.snapshot_id);
  resp.set_replica(options_.self.name);
  resp.set_empty(info.empty);
  return absl::OkStatus();
}

absl::Status SandboxHandlers::RestoreSnapshot(const CallContext& call,
                                              const v1::RestoreSnapshotRequest& req,
                                              v1::Workspace& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "RestoreSnapshot"));
  FieldViolations bad;
  CheckWorkspace(bad, req.project_id(), req.fence());
  common::CheckUuid(bad, "snapshot_id", req.snapshot_id(), /*required=*/false);
  common::CheckUuid(bad, "snapshot_project_id", req.snapshot_project_id(), /*required=*/false);
  size_t bytes = 0;
  std::vector<Change> changes;
  for (const v1::FileChange& c : req.changes()) {
    bytes += c.content().size() + c.path().size();
    changes.push_back(
        {.path = c.path(), .content = c.has_content() ? std::optional(c.content()) : std::nullopt});
  }
  CheckFiles(bad, "changes", changes.size(), bytes, options_.limits);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(WorkspaceInfo info,
                       workspaces_->Restore(req.project_id(), req.fence(), req.snapshot_id(),
                                            changes, req.snapshot_project_id()));
  resp.set_project_id(absl::AsciiStrToLower(req.project_id()));
  resp.set_snapshot_id(info.snapshot_id);
  resp.set_replica(options_.self.name);
  return absl::OkStatus();
}

absl::Status SandboxHandlers::CheckRunCommand(const CallContext& call,
                                              const v1::RunCommandRequest& req) const {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "RunCommand"));
  FieldViolations bad;
  CheckWorkspace(bad, req.project_id(), req.fence());
  if (req.command().empty()) bad.Add("command", "is required");
  if (req.command().size() > options_.limits.max_command_bytes) {
    bad.Add("command", absl::StrCat("at most ", options_.limits.max_command_bytes, " bytes"));
  }
  if (req.command().find('\0') != std::string::npos) bad.Add("command", "must not contain NUL");
  if (req.has_timeout()) {
    const absl::Duration t =
        absl::Seconds(req.timeout().seconds()) + absl::Nanoseconds(req.timeout().nanos());
    if (t <= absl::ZeroDuration() || t > options_.limits.command_timeout) {
      bad.Add("timeout", absl::StrCat("must be positive and at most ",
                                      absl::FormatDuration(options_.limits.command_timeout)));
    }
  }
  if (req.max_output_bytes() < 0 ||
      static_cast<uint64_t>(req.max_output_bytes()) > options_.limits.max_output) {
    bad.Add("max_output_bytes",
            absl::StrCat("must be 0 (the default) to ", options_.limits.max_output));
  }
  return bad.ToStatus();
}

absl::Status SandboxHandlers::RunCommand(const CallContext& call, const v1::RunCommandRequest& req,
                                         const std::function<void(std::string)>& output,
                                         const std::function<bool()>& cancelled,
                                         v1::CommandEnd& end) {
  CommandOptions options{.timeout = options_.limits.command_timeout,
                         .max_output = options_.limits.max_output,
                         .max_output_read = options_.limits.max_output_read};
  if (req.has_timeout()) {
    options.timeout =
        absl::Seconds(req.timeout().seconds()) + absl::Nanoseconds(req.timeout().nanos());
  }
  if (req.max_output_bytes() > 0) options.max_output = static_cast<size_t>(req.max_output_bytes());
  // Pieces go out as valid UTF-8; a character cut between two reads waits for the next one.
  std::string pending;
  options.on_output = [&](std::string_view piece) {
    pending.append(piece);
    const size_t complete = common::CompleteUtf8Prefix(pending);
    if (complete == 0) return;
    output(common::ToValidUtf8(std::string_view(pending).substr(0, complete)));
    pending.erase(0, complete);
  };
  QAI_ASSIGN_OR_RETURN(CommandResult result,
                       workspaces_->Run(req.project_id(), req.fence(), req.command(),
                                        std::move(options), cancelled));
  if (!pending.empty()) output(common::ToValidUtf8(pending));
  if (result.cancelled) return absl::CancelledError("the command was cancelled");
  end.set_exit_code(result.exit_code);
  end.set_truncated(result.truncated);
  end.set_timed_out(result.timed_out);
  end.set_output_overflow(result.output_overflow);
  end.set_explanation(result.explanation);
  if (req.with_changes()) ReportChanges(req.project_id(), req.fence(), end);
  return absl::OkStatus();
}

absl::Status SandboxHandlers::WriteFiles(const CallContext& call, const v1::WriteFilesRequest& req,
                                         v1::WriteFilesResponse& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "WriteFiles"));
  FieldViolations bad;
  CheckWorkspace(bad, req.project_id(), req.fence());
  size_t bytes = 0;
  std::vector<FileOutcome> files;
  for (const v1::FileContent& f : req.files()) {
    bytes += f.content().size() + f.path().size();
    files.push_back({.path = f.path(), .content = f.content()});
  }
  CheckFiles(bad, "files", files.size(), bytes, options_.limits);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(std::vector<FileOutcome> written,
                       workspaces_->Write(req.project_id(), req.fence(), files));
  for (const FileOutcome& f : written) FillResult(f, resp.add_results());
  if (req.with_changes()) ReportChanges(req.project_id(), req.fence(), resp);
  return absl::OkStatus();
}

absl::Status SandboxHandlers::ReadFiles(const CallContext& call, const v1::ReadFilesRequest& req,
                                        v1::ReadFilesResponse& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "ReadFiles"));
  FieldViolations bad;
  CheckWorkspace(bad, req.project_id(), req.fence());
  CheckFiles(bad, "paths", static_cast<size_t>(req.paths_size()), 0, options_.limits);
  if (req.max_file_bytes() < 0 ||
      static_cast<uint64_t>(req.max_file_bytes()) > options_.limits.max_file_bytes) {
    bad.Add("max_file_bytes",
            absl::StrCat("must be 0 (the default) to ", options_.limits.max_file_bytes));
  }
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  const size_t max_bytes = req.max_file_bytes() > 0 ? static_cast<size_t>(req.max_file_bytes())
                                                    : options_.limits.max_file_bytes;
  // What is read must also fit the response: beyond max_request_bytes the rest is refused.
  size_t budget = options_.limits.max_request_bytes;
  const std::vector<std::string> paths(req.paths().begin(), req.paths().end());
  QAI_ASSIGN_OR_RETURN(std::vector<FileOutcome> read,
                       workspaces_->Read(req.project_id(), req.fence(), paths, max_bytes));
  for (FileOutcome& f : read) {
    if (f.content.size() > budget) {
      f.content.clear();
      f.status = absl::OutOfRangeError("not read: the files before it fill the response");
    }
    budget -= f.content.size();
    FillResult(f, resp.add_results());
  }
  return absl::OkStatus();
}

absl::Status SandboxHandlers::GetChanges(const CallContext& call, const v1::GetChangesRequest& req,
                                         v1::GetChangesResponse& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "GetChanges"));
  FieldViolations bad;
  CheckWorkspace(bad, req.project_id(), req.fence());
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  return FillChanges(req.project_id(), req.fence(), resp);
}

absl::Status SandboxHandlers::FillChanges(const std::string& project_id, int64_t fence,
                                          v1::GetChangesResponse& resp) {
  QAI_ASSIGN_OR_RETURN(std::optional<std::vector<Change>> changes,
                       workspaces_->Changes(project_id, fence));
  size_t bytes = 0;
  if (changes) {
    for (const Change& c : *changes) bytes += c.content ? c.content->size() : 0;
  }
  // Changes are listed within what one response carries (a snapshot may hold more).
  if (!changes || bytes > options_.limits.max_request_bytes) {
    resp.set_unknown(true);
    return absl::OkStatus();
  }
  for (const Change& c : *changes) {
    v1::FileChange* out = resp.add_changes();
    out->set_path(c.path);
    if (c.content) out->set_content(*c.content);
  }
  return absl::OkStatus();
}

template <typename Response>
void SandboxHandlers::ReportChanges(const std::string& project_id, int64_t fence, Response& resp) {
  // What was done is done: changes that cannot be read now are left to GetChanges.
  v1::GetChangesResponse changes;
  if (FillChanges(project_id, fence, changes).ok()) *resp.mutable_changes() = std::move(changes);
}

absl::Status SandboxHandlers::CreateSnapshot(const CallContext& call,
                                             const v1::CreateSnapshotRequest& req,
                                             v1::Snapshot& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "CreateSnapshot"));
  FieldViolations bad;
  CheckWorkspace(bad, req.project_id(), req.fence());
  common::CheckUuid(bad, "snapshot_id", req.snapshot_id(), /*required=*/true);
  common::CheckUuid(bad, "run_id", req.run_id(), /*required=*/false);
  if (req.max_content_bytes() < 0) bad.Add("max_content_bytes", "must be 0 or more");
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(SnapshotRecord snapshot,
                       workspaces_->Snapshot(req.project_id(), req.fence(), req.snapshot_id(),
                                             absl::AsciiStrToLower(req.run_id())));
  resp.set_id(snapshot.id);
  resp.set_project_id(snapshot.project_id);
  resp.set_run_id(snapshot.run_id);
  const size_t max_bytes = req.max_content_bytes() > 0
                               ? static_cast<size_t>(req.max_content_bytes())
                               : kDefaultSnapshotResponseBytes;
  size_t bytes = 0;
  for (const auto& [path, content] : *snapshot.files) bytes += content.size();
  if (bytes <= max_bytes) {
    resp.mutable_files()->insert(snapshot.files->begin(), snapshot.files->end());
  } else {
    resp.set_contents_omitted(true);
  }
  resp.set_preview_url(absl::StrCat(options_.preview_base_url, "/", snapshot.id, "/"));
  common::SetTimestamp(snapshot.create_time, resp.mutable_create_time());
  return absl::OkStatus();
}

absl::Status SandboxHandlers::GetSnapshot(const CallContext& call,
                                          const v1::GetSnapshotRequest& req,
                                          v1::SnapshotFiles& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "GetSnapshot"));
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  common::CheckUuid(bad, "snapshot_id", req.snapshot_id(), /*required=*/true);
  if (static_cast<size_t>(req.paths_size()) > options_.limits.max_files) {
    bad.Add("paths", absl::StrCat("at most ", options_.limits.max_files));
  }
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  const std::string id = absl::AsciiStrToLower(req.snapshot_id());
  const std::string project = absl::AsciiStrToLower(req.project_id());
  const std::vector<std::string> paths(req.paths().begin(), req.paths().end());
  // Sizes first: contents are read only when they fit the response.
  QAI_ASSIGN_OR_RETURN(std::vector<ListedFile> files,
                       workspaces_->ListSnapshot(project, id, paths));
  size_t bytes = 0;
  for (const ListedFile& f : files) bytes += static_cast<size_t>(f.size);
  if (req.with_contents() && bytes > options_.limits.max_snapshot_bytes) {
    return absl::FailedPreconditionError(absl::StrCat("snapshot ", id, " holds ", bytes,
                                                      " bytes, more than one response carries (",
                                                      options_.limits.max_snapshot_bytes, ")"));
  }
  std::map<std::string, std::string> contents;
  if (req.with_contents()) {
    std::vector<std::string> hashes;
    for (const ListedFile& f : files) hashes.push_back(f.sha256);
    QAI_ASSIGN_OR_RETURN(contents, workspaces_->ReadContents(hashes));
  }
  resp.set_snapshot_id(id);
  resp.set_preview_url(absl::StrCat(options_.preview_base_url, "/", id, "/"));
  for (const ListedFile& f : files) {
    v1::SnapshotFile* out = resp.add_files();
    out->set_path(f.path);
    out->set_size(f.size);
    out->set_sha256(absl::BytesToHexString(f.sha256));
    if (req.with_contents()) out->set_content(contents.at(f.sha256));
  }
  return absl::OkStatus();
}

absl::Status SandboxHandlers::PurgeProject(const CallContext& call,
                                           const v1::PurgeProjectRequest& req) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "PurgeProject"));
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  return workspaces_->Purge(req.project_id());
}

absl::StatusOr<common::PullSource<v1::ArchiveChunk>> SandboxHandlers::ArchiveSnapshot(
    const CallContext& call, const v1::ArchiveSnapshotRequest& req) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "ArchiveSnapshot"));
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  common::CheckUuid(bad, "snapshot_id", req.snapshot_id(), /*required=*/true);
  if (req.format() != v1::ARCHIVE_FORMAT_ZIP && req.format() != v1::ARCHIVE_FORMAT_TAR_GZ) {
    bad.Add("format", "must be ARCHIVE_FORMAT_ZIP or ARCHIVE_FORMAT_TAR_GZ");
  }
  if (!IsArchiveName(req.folder())) bad.Add("folder", kArchiveNameRule);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(
      std::shared_ptr<SnapshotArchive> archive,
      workspaces_->OpenArchive(
          absl::AsciiStrToLower(req.snapshot_id()), absl::AsciiStrToLower(req.project_id()),
          req.format() == v1::ARCHIVE_FORMAT_ZIP ? ArchiveFormat::kZip : ArchiveFormat::kTarGz,
          req.folder()));
  return [archive]() -> absl::StatusOr<std::optional<v1::ArchiveChunk>> {
    QAI_ASSIGN_OR_RETURN(std::string piece, archive->Next());
    if (piece.empty()) return std::nullopt;
    v1::ArchiveChunk chunk;
    chunk.set_data(std::move(piece));
    return chunk;
  };
}

absl::Status SandboxHandlers::GetWorkspaceFiles(const CallContext& call,
                                                const v1::GetWorkspaceFilesRequest& req,
                                                v1::WorkspaceFiles& resp) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "GetWorkspaceFiles"));
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  if (static_cast<size_t>(req.paths_size()) > options_.limits.max_files) {
    bad.Add("paths", absl::StrCat("at most ", options_.limits.max_files));
  }
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(WorkspaceView view, workspaces_->Peek(req.project_id()));
  const std::set<std::string> wanted(req.paths().begin(), req.paths().end());
  std::erase_if(view.files,
                [&](const auto& f) { return !wanted.empty() && !wanted.contains(f.first); });
  size_t bytes = 0;
  for (const auto& [path, content] : view.files) bytes += content.size();
  if (req.with_contents() && bytes > options_.limits.max_snapshot_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the workspace of project ", req.project_id(), " holds ", bytes,
        " bytes, more than one response carries (", options_.limits.max_snapshot_bytes, ")"));
  }
  resp.set_open(view.open);
  for (auto& [path, content] : view.files) {
    v1::SnapshotFile* out = resp.add_files();
    out->set_path(path);
    out->set_size(static_cast<int64_t>(content.size()));
    out->set_sha256(common::Sha256Hex(content));
    if (req.with_contents()) out->set_content(std::move(content));
  }
  return absl::OkStatus();
}

}  // namespace qai::sandbox
