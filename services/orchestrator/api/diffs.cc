// VersionHandlers::DiffVersions: what changed between two states of a project's files
// (diff_side.h: versions, drafts, the workspace). The listings (path, size, hash) of both sides
// say which files were added, removed or modified; the contents of the modified and added or
// removed text files are read in one call per side, as long as they fit the response's bounds,
// and diffed (file_diff.h).

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/validation.h"
#include "services/orchestrator/api/diff_side.h"
#include "services/orchestrator/api/file_diff.h"
#include "services/orchestrator/api/handlers.h"
#include "services/orchestrator/api/versions.h"

namespace qai::orchestrator {
namespace {

using common::CallContext;
using common::FieldViolations;
using sandbox::v1::SnapshotFile;
using sandbox::v1::SnapshotFiles;

// What one diff reads and returns at most: each file's contents, both sides' contents in all,
// and the unified diffs in all.
constexpr int64_t kMaxFileBytes = 256 << 10;
constexpr int64_t kMaxSideBytes = 2 << 20;
constexpr size_t kMaxDiffBytes = 1 << 20;

void CheckRef(FieldViolations& bad, const std::string& field, const v1::VersionRef& ref) {
  if (ref.has_workspace()) {
    if (!ref.workspace()) bad.Add(absl::StrCat(field, ".workspace"), "must be true when set");
  } else if (ref.has_draft_of_run()) {
    common::CheckUuid(bad, absl::StrCat(field, ".draft_of_run"), ref.draft_of_run(), true);
  } else if (ref.number() < 1) {
    bad.Add(absl::StrCat(field, ".number"),
            "must be 1 or more (or name a draft_of_run or the workspace)");
  }
}

std::map<std::string, const SnapshotFile*> ByPath(const SnapshotFiles& files) {
  std::map<std::string, const SnapshotFile*> out;
  for (const SnapshotFile& f : files.files()) out.emplace(f.path(), &f);
  return out;
}

// Changes: the files that differ, by path, with their sizes (contents not read yet).
std::vector<v1::FileDiff> Changes(const SnapshotFiles& from, const SnapshotFiles& to) {
  const auto before = ByPath(from), after = ByPath(to);
  std::map<std::string, v1::FileDiff> out;
  for (const auto& [path, f] : before) {
    auto it = after.find(path);
    if (it != after.end() && it->second->sha256() == f->sha256()) continue;
    v1::FileDiff& d = out[path];
    d.set_path(path);
    d.set_old_size(f->size());
    d.set_change(it == after.end() ? v1::FileDiff::CHANGE_REMOVED : v1::FileDiff::CHANGE_MODIFIED);
    if (it != after.end()) d.set_new_size(it->second->size());
  }
  for (const auto& [path, f] : after) {
    if (before.contains(path)) continue;
    v1::FileDiff& d = out[path];
    d.set_path(path);
    d.set_new_size(f->size());
    d.set_change(v1::FileDiff::CHANGE_ADDED);
  }
  std::vector<v1::FileDiff> changes;
  for (auto& [path, d] : out) changes.push_back(std::move(d));
  return changes;
}

// Readable: the changed paths whose contents are read (each small enough, all within bounds).
std::vector<std::string> Readable(const std::vector<v1::FileDiff>& changes) {
  std::vector<std::string> paths;
  int64_t old_total = 0, new_total = 0;
  for (const v1::FileDiff& d : changes) {
    if (d.old_size() > kMaxFileBytes || d.new_size() > kMaxFileBytes) continue;
    if (old_total + d.old_size() > kMaxSideBytes || new_total + d.new_size() > kMaxSideBytes)
      continue;
    old_total += d.old_size();
    new_total += d.new_size();
    paths.push_back(d.path());
  }
  return paths;
}

std::map<std::string, std::string> Contents(SnapshotFiles files) {
  std::map<std::string, std::string> out;
  for (SnapshotFile& f : *files.mutable_files()) out[f.path()] = std::move(*f.mutable_content());
  return out;
}

// Fill: each change's diff from the contents read (a change whose contents were not read is
// marked truncated), the whole response's diffs within kMaxDiffBytes.
void Fill(std::vector<v1::FileDiff>& changes, const std::map<std::string, std::string>& before,
          const std::map<std::string, std::string>& after, v1::DiffVersionsResponse& resp) {
  size_t budget = kMaxDiffBytes;
  for (v1::FileDiff& d : changes) {
    auto old_it = before.find(d.path()), new_it = after.find(d.path());
    const bool read = (d.change() == v1::FileDiff::CHANGE_ADDED || old_it != before.end()) &&
                      (d.change() == v1::FileDiff::CHANGE_REMOVED || new_it != after.end());
    if (!read) {
      d.set_truncated(true);
    } else {
      std::optional<TextDiff> text =
          UnifiedDiff(old_it == before.end() ? "" : old_it->second,
                      new_it == after.end() ? "" : new_it->second, {.max_bytes = budget});
      if (!text) {
        d.set_binary(true);
      } else {
        budget -= text->unified.size();
        d.set_unified_diff(std::move(text->unified));
        d.set_truncated(text->truncated || text->too_long);
      }
    }
    if (d.truncated()) resp.set_truncated(true);
    *resp.add_files() = std::move(d);
  }
}

}  // namespace

absl::Status VersionHandlers::DiffVersions(const CallContext& call,
                                           const v1::DiffVersionsRequest& req,
                                           v1::DiffVersionsResponse& resp) {
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  CheckRef(bad, "from", req.from());
  CheckRef(bad, "to", req.to());
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  QAI_RETURN_IF_ERROR(CheckProject(*projects_, call, req.project_id()));
  const DiffSources sources{.versions = store_, .runs = runs_, .sandbox = sandbox_};
  QAI_ASSIGN_OR_RETURN(DiffSide from, DiffSide::Resolve(sources, req.project_id(), req.from()));
  QAI_ASSIGN_OR_RETURN(DiffSide to, DiffSide::Resolve(sources, req.project_id(), req.to()));
  QAI_ASSIGN_OR_RETURN(SnapshotFiles from_files, from.List());
  QAI_ASSIGN_OR_RETURN(SnapshotFiles to_files, to.List());
  std::vector<v1::FileDiff> changes = Changes(from_files, to_files);
  const std::vector<std::string> paths = Readable(changes);
  std::map<std::string, std::string> before, after;
  if (!paths.empty()) {
    QAI_ASSIGN_OR_RETURN(SnapshotFiles old_contents, from.Contents(paths));
    QAI_ASSIGN_OR_RETURN(SnapshotFiles new_contents, to.Contents(paths));
    before = Contents(std::move(old_contents));
    after = Contents(std::move(new_contents));
  }
  Fill(changes, before, after, resp);
  resp.set_workspace_not_open(from.stood_in() || to.stood_in());
  return absl::OkStatus();
}

}  // namespace qai::orchestrator
