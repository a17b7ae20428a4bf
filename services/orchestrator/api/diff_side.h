#pragma once
// DiffSide: one side of a DiffVersions: the files of a version, of a run's draft (each a
// snapshot in qai-sandbox), or of the project's workspace as it is now (read from the replica
// that serves it, without a fence: a run working in it is not disturbed). A workspace that is
// not open on its replica (restarted, moved, never opened) holds nothing known: the project's
// latest version stands for it (none before the first version), since the next run starts from
// that.
//
//   QAI_ASSIGN_OR_RETURN(DiffSide from, DiffSide::Resolve(sources, project_id, req.from()));
//   QAI_ASSIGN_OR_RETURN(SnapshotFiles listed, from.List());      // paths, sizes, hashes
//   QAI_ASSIGN_OR_RETURN(SnapshotFiles read, from.Contents(paths));
//   if (from.stood_in()) ...                                       // the latest version did

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "qai/sandbox/v1/sandbox.pb.h"
#include "services/orchestrator/store/run_store.h"
#include "services/orchestrator/store/version_store.h"
#include "services/sandbox/client/sandbox_client.h"

namespace qai::orchestrator {

// DiffSources: where a diff's sides are read.
struct DiffSources {
  VersionStore* versions;
  RunStore* runs;
  const sandbox::SandboxClient* sandbox;
};

class DiffSide {
 public:
  // Resolve: the side `ref` names in the project (a validated ref); NOT_FOUND naming a version
  // or draft that is not there. A workspace is only looked at by List.
  [[nodiscard]] static absl::StatusOr<DiffSide> Resolve(const DiffSources& sources,
                                                        const std::string& project_id,
                                                        const v1::VersionRef& ref);

  // List: the side's files (path, size, SHA-256; no contents). For a workspace not open on its
  // replica, the latest version stands for it from here on.
  [[nodiscard]] absl::StatusOr<sandbox::v1::SnapshotFiles> List();
  // Contents: the files of `paths` that the side has, with their contents. A workspace's may
  // have changed since List (or gone: then none are read).
  [[nodiscard]] absl::StatusOr<sandbox::v1::SnapshotFiles> Contents(
      const std::vector<std::string>& paths) const;

  // stood_in: the side named the workspace, and the latest version stood for it.
  bool stood_in() const { return stood_in_; }

 private:
  DiffSide(const DiffSources& sources, std::string project_id)
      : sources_(sources), project_id_(std::move(project_id)) {}
  // Workspace: the workspace's files, or nullopt when it is not open on its replica.
  absl::StatusOr<std::optional<sandbox::v1::SnapshotFiles>> Workspace(
      bool with_contents, const std::vector<std::string>& paths) const;

  DiffSources sources_;
  std::string project_id_;
  bool workspace_ = false;
  std::string snapshot_id_;  // not a workspace: the snapshot; empty: no file at all
  bool stood_in_ = false;
};

}  // namespace qai::orchestrator
