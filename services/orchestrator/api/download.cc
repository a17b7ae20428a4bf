// VersionHandlers::DownloadVersion: a version's archive, made by qai-sandbox (ArchiveSnapshot)
// and passed on one piece at a time.

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/validation.h"
#include "services/orchestrator/api/download_name.h"
#include "services/orchestrator/api/versions.h"
#include "services/sandbox/client/archive_reader.h"

namespace qai::orchestrator {
namespace {

// The longest a download may take when its caller set no deadline.
constexpr absl::Duration kMaxDownloadTime = absl::Minutes(30);

sandbox::v1::ArchiveFormat ArchiveFormatOf(v1::DownloadVersionRequest::Format format) {
  return format == v1::DownloadVersionRequest::FORMAT_TAR_GZ ? sandbox::v1::ARCHIVE_FORMAT_TAR_GZ
                                                             : sandbox::v1::ARCHIVE_FORMAT_ZIP;
}

// Pieces: the download's messages: the first names the file and carries the first piece.
common::PullSource<v1::DownloadVersionResponse> Pieces(
    std::shared_ptr<sandbox::ArchiveReader> reader, v1::DownloadVersionResponse first) {
  auto pending = std::make_shared<std::optional<v1::DownloadVersionResponse>>(std::move(first));
  return [reader = std::move(reader),
          pending]() -> absl::StatusOr<std::optional<v1::DownloadVersionResponse>> {
    if (*pending) return std::exchange(*pending, std::nullopt);
    QAI_ASSIGN_OR_RETURN(std::optional<std::string> piece, reader->Next());
    if (!piece) return std::nullopt;
    v1::DownloadVersionResponse out;
    out.set_data(*std::move(piece));
    return out;
  };
}

}  // namespace

absl::StatusOr<common::PullSource<v1::DownloadVersionResponse>> VersionHandlers::DownloadVersion(
    const common::CallContext& call, const v1::DownloadVersionRequest& req) {
  common::FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  if (req.number() < 1) bad.Add("number", "must be 1 or more");
  if (!v1::DownloadVersionRequest::Format_IsValid(req.format())) {
    bad.Add("format", "is not a known value");
  }
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_ASSIGN_OR_RETURN(projects::v1::Project project,
                       projects_->GetProject(call, req.project_id()));
  QAI_ASSIGN_OR_RETURN(VersionRecord version, store_->Get(req.project_id(), req.number()));
  const std::string base = DownloadBaseName(project.display_name(), project.name(), req.number());
  sandbox::v1::ArchiveSnapshotRequest archive;
  archive.set_project_id(version.project_id);
  archive.set_snapshot_id(version.snapshot_id);
  archive.set_format(ArchiveFormatOf(req.format()));
  archive.set_folder(base);
  const absl::Time deadline = std::min(call.deadline, absl::Now() + kMaxDownloadTime);
  auto reader = std::make_shared<sandbox::ArchiveReader>(*sandbox_->tier(), sandbox_->api_key,
                                                         archive, deadline);
  // The first piece is read now, so a snapshot that cannot be read fails the call before it
  // sent anything.
  QAI_ASSIGN_OR_RETURN(std::optional<std::string> piece, reader->Next());
  v1::DownloadVersionResponse first;
  const bool tar = archive.format() == sandbox::v1::ARCHIVE_FORMAT_TAR_GZ;
  first.set_file_name(absl::StrCat(base, tar ? ".tar.gz" : ".zip"));
  first.set_content_type(tar ? "application/gzip" : "application/zip");
  first.set_data(piece.value_or(""));
  return Pieces(std::move(reader), std::move(first));
}

}  // namespace qai::orchestrator
