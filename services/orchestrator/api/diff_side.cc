#include "services/orchestrator/api/diff_side.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace qai::orchestrator {

using sandbox::v1::SnapshotFiles;

absl::StatusOr<DiffSide> DiffSide::Resolve(const DiffSources& sources,
                                           const std::string& project_id,
                                           const v1::VersionRef& ref) {
  DiffSide side(sources, project_id);
  if (ref.has_workspace()) {
    side.workspace_ = true;
    return side;
  }
  if (!ref.has_draft_of_run()) {
    QAI_ASSIGN_OR_RETURN(VersionRecord version, sources.versions->Get(project_id, ref.number()));
    side.snapshot_id_ = version.snapshot_id;
    return side;
  }
  absl::StatusOr<RunRecord> run = sources.runs->Get(ref.draft_of_run());
  if (run.ok() && run->project_id == project_id && !run->draft_snapshot_id.empty()) {
    side.snapshot_id_ = run->draft_snapshot_id;
    return side;
  }
  if (!run.ok() && !absl::IsNotFound(run.status())) return run.status();
  return absl::NotFoundError(
      absl::StrCat("no draft of run ", ref.draft_of_run(), " in project ", project_id));
}

absl::StatusOr<SnapshotFiles> DiffSide::List() {
  if (workspace_) {
    QAI_ASSIGN_OR_RETURN(std::optional<SnapshotFiles> files, Workspace(false, {}));
    if (files) return *std::move(files);
    workspace_ = false;
    stood_in_ = true;
    QAI_ASSIGN_OR_RETURN(std::vector<VersionRecord> latest,
                         sources_.versions->List(project_id_, 1, std::nullopt));
    if (!latest.empty()) snapshot_id_ = latest.front().snapshot_id;
  }
  if (snapshot_id_.empty()) return SnapshotFiles();
  return sources_.sandbox->GetSnapshot(project_id_, snapshot_id_, false);
}

absl::StatusOr<SnapshotFiles> DiffSide::Contents(const std::vector<std::string>& paths) const {
  if (workspace_) {
    QAI_ASSIGN_OR_RETURN(std::optional<SnapshotFiles> files, Workspace(true, paths));
    return files ? *std::move(files) : SnapshotFiles();
  }
  if (snapshot_id_.empty()) return SnapshotFiles();
  return sources_.sandbox->GetSnapshot(project_id_, snapshot_id_, true, paths);
}

absl::StatusOr<std::optional<SnapshotFiles>> DiffSide::Workspace(
    bool with_contents, const std::vector<std::string>& paths) const {
  QAI_ASSIGN_OR_RETURN(sandbox::v1::WorkspaceFiles workspace,
                       sources_.sandbox->GetWorkspaceFiles(project_id_, with_contents, paths));
  if (!workspace.open()) return std::optional<SnapshotFiles>();
  SnapshotFiles files;
  *files.mutable_files() = std::move(*workspace.mutable_files());
  return std::optional<SnapshotFiles>(std::move(files));
}

}  // namespace qai::orchestrator
