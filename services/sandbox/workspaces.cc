#include "services/sandbox/workspaces.h"

#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/auth.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace qai::sandbox {

using common::Log;
using common::LogLevel;

struct Workspaces::Entry {
  // The holder's fence; raised by Open, and to the maximum by a purge.
  std::atomic<int64_t> fence{0};
  std::mutex op;  // one operation at a time; guards what follows
  // Set and reset under op and view_mu both (SetWorkspace), so Peek may read it under view_mu
  // alone while an operation runs; its files then stay readable until Peek lets go.
  std::shared_ptr<Workspace> ws;
  absl::Mutex view_mu;
  bool marked = false;  // a version mark is on disk
  // Path -> digest of each file at the last look; nullopt beyond the snapshot limits.
  std::optional<std::map<std::string, std::string>> checkpoint;
  std::atomic<int64_t> last_used_ns{0};  // for forgetting idle entries
};

namespace {

absl::Status FencedOut(const std::string& project_id) {
  return absl::FailedPreconditionError(absl::StrCat("workspace of project ", project_id,
                                                    " is held by a newer holder (higher fence)"));
}

}  // namespace

std::optional<std::map<std::string, std::string>> Workspaces::Digests(
    const Workspace& ws, std::map<std::string, std::string>* files) const {
  absl::StatusOr<std::map<std::string, std::string>> now = ws.Snapshot(options_.snapshot_limits);
  if (!now.ok()) return std::nullopt;
  std::map<std::string, std::string> digests;
  for (const auto& [path, content] : *now) digests.emplace(path, common::Sha256Hex(content));
  if (files != nullptr) *files = *std::move(now);
  return digests;
}

absl::StatusOr<WorkspaceInfo> Workspaces::Open(const std::string& project, int64_t fence) {
  const std::string project_id = absl::AsciiStrToLower(project);
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(project_id);
    if (it == entries_.end()) {
      if (entries_.size() >= options_.max_open) ForgetIdleLocked();
      it = entries_.emplace(project_id, std::make_shared<Entry>()).first;
    }
    entry = it->second;
  }
  entry->last_used_ns = absl::GetCurrentTimeNanos();
  // Raise the fence before waiting for the operation lock: an older holder's command sees it
  // and is killed, so the lock comes free.
  int64_t held = entry->fence.load();
  while (held <= fence && !entry->fence.compare_exchange_weak(held, fence)) {
  }
  if (held > fence) return FencedOut(project_id);
  std::unique_lock op(entry->op);
  if (entry->fence.load() != fence) return FencedOut(project_id);
  if (entry->ws == nullptr) {
    // Allocated (and a purged project refused) whether or not this replica switches users.
    const Sandbox& sandbox = *options_.sandbox;
    // The range's last uid is the probe's (Sandbox::ProbeUid), never a project's.
    QAI_ASSIGN_OR_RETURN(uint32_t uid, store_->UserFor(project_id, sandbox.options().first_uid,
                                                       sandbox.options().uid_count - 1));
    std::optional<SandboxUser> user;
    if (sandbox.switches_users()) user = SandboxUser{.uid = uid, .gid = uid};
    QAI_ASSIGN_OR_RETURN(std::unique_ptr<Workspace> ws,
                         Workspace::Open(options_.root, project_id, user, options_.quota));
    SetWorkspace(*entry, std::move(ws));
  }
  WorkspaceInfo info{.snapshot_id = entry->ws->Version()};
  info.empty = info.snapshot_id.empty() && entry->ws->Empty();
  entry->marked = !info.snapshot_id.empty();
  entry->checkpoint = Digests(*entry->ws);
  op.unlock();
  MakeRoom();
  return info;
}

absl::StatusOr<Workspaces::Held> Workspaces::Hold(const std::string& project, int64_t fence) {
  const std::string project_id = absl::AsciiStrToLower(project);
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = entries_.find(project_id); it != entries_.end()) entry = it->second;
  }
  if (entry != nullptr && entry->fence.load() > fence) return FencedOut(project_id);
  if (entry != nullptr) {
    std::unique_lock op(entry->op);
    if (entry->fence.load() > fence) return FencedOut(project_id);
    if (entry->ws != nullptr && entry->fence.load() == fence) {
      entry->last_used_ns = absl::GetCurrentTimeNanos();
      return Held{.entry = std::move(entry), .lock = std::move(op)};
    }
  }
  return absl::AbortedError(
      absl::StrCat("workspace of project ", project_id,
                   " is not open on this replica for this fence: open it (and restore it) again"));
}

void Workspaces::MakeRoom() {
  if (!options_.quota || options_.quota->total_bytes == 0) return;
  const int64_t now = absl::GetCurrentTimeNanos();
  int64_t last = last_room_ns_.load();
  if (now - last < absl::ToInt64Nanoseconds(absl::Seconds(1)) ||
      !last_room_ns_.compare_exchange_strong(last, now)) {
    return;
  }
  absl::StatusOr<std::vector<std::string>> here = ProjectsIn(options_.root);
  if (!here.ok()) return;
  struct Mounted {
    int64_t last_used_ns = 0;  // 0: forgotten, so idle longest
    std::string project_id;
    uint64_t bytes = 0;
  };
  std::vector<Mounted> idle;
  uint64_t total = 0;
  for (const std::string& id : *here) {
    const std::string dir = absl::StrCat(options_.root, "/workspaces/", id);
    if (!IsMountPoint(dir)) continue;
    Mounted m{.project_id = id, .bytes = UsedBytes(dir)};
    total += m.bytes;
    {
      absl::MutexLock lock(&mu_);
      if (auto it = entries_.find(id); it != entries_.end()) {
        if (it->second.use_count() > 1) continue;  // a call is under way on it
        m.last_used_ns = it->second->last_used_ns.load();
      }
    }
    idle.push_back(std::move(m));
  }
  if (total <= options_.quota->total_bytes) return;
  std::sort(idle.begin(), idle.end(),
            [](const Mounted& a, const Mounted& b) { return a.last_used_ns < b.last_used_ns; });
  for (const Mounted& m : idle) {
    if (total <= options_.quota->total_bytes) break;
    if (Drop(m.project_id)) total -= std::min(total, m.bytes);
  }
}

bool Workspaces::Drop(const std::string& project_id) {
  const std::shared_ptr<Entry> entry = EntryFor(project_id);
  std::unique_lock op(entry->op, std::try_to_lock);
  if (!op.owns_lock()) return false;
  // Not open here any more: its holder's next call is ABORTED, and Open makes it again.
  const absl::Status removed = RemoveFiles(*entry, project_id);
  if (!removed.ok()) {
    Log(LogLevel::kWarn, "could not drop an idle workspace",
        {{"project_id", project_id}, {"error", std::string(removed.message())}});
    return false;
  }
  Log(LogLevel::kInfo, "dropped an idle workspace to make room", {{"project_id", project_id}});
  return true;
}

void Workspaces::ForgetIdleLocked() {
  std::vector<std::pair<int64_t, std::string>> idle;
  for (const auto& [id, entry] : entries_) {
    // Held (an operation running) or referenced by a call under way: not idle.
    if (entry.use_count() == 1) idle.emplace_back(entry->last_used_ns.load(), id);
  }
  std::sort(idle.begin(), idle.end());
  for (const auto& [used, id] : idle) {
    if (entries_.size() < options_.max_open) break;
    entries_.erase(id);
  }
}

absl::Status Workspaces::Touch(Entry& entry) {
  if (!entry.marked) return absl::OkStatus();
  QAI_RETURN_IF_ERROR(entry.ws->SetVersion(""));
  entry.marked = false;
  return absl::OkStatus();
}

absl::StatusOr<WorkspaceInfo> Workspaces::Restore(const std::string& project_id, int64_t fence,
                                                  const std::string& snapshot_id,
                                                  const std::vector<Change>& changes,
                                                  const std::string& snapshot_project) {
  const std::string owner =
      absl::AsciiStrToLower(snapshot_project.empty() ? project_id : snapshot_project);
  QAI_ASSIGN_OR_RETURN(Held held, Hold(project_id, fence));
  Entry& entry = *held.entry;
  std::shared_ptr<const Files> base = std::make_shared<Files>();
  if (!snapshot_id.empty()) {
    QAI_ASSIGN_OR_RETURN(SnapshotRecord snapshot, store_->GetSnapshot(snapshot_id));
    if (snapshot.project_id != owner) {
      return absl::NotFoundError(
          absl::StrCat("snapshot ", snapshot_id, " not found for project ", project_id));
    }
    base = snapshot.files;
  }
  QAI_RETURN_IF_ERROR(Touch(entry));
  QAI_RETURN_IF_ERROR(entry.ws->Reset(*base));
  for (const Change& change : changes) {
    absl::Status s = change.content ? entry.ws->WriteFile(change.path, *change.content)
                                    : entry.ws->RemoveFile(change.path);
    if (!s.ok()) return s;
  }
  WorkspaceInfo info;
  if (!snapshot_id.empty() && changes.empty() && snapshot_project.empty()) {
    QAI_RETURN_IF_ERROR(entry.ws->SetVersion(snapshot_id));
    entry.marked = true;
    info.snapshot_id = snapshot_id;
  }
  entry.checkpoint = Digests(*entry.ws);
  return info;
}

absl::StatusOr<CommandResult> Workspaces::Run(const std::string& project_id, int64_t fence,
                                              const std::string& command, CommandOptions options,
                                              const std::function<bool()>& cancelled) {
  QAI_ASSIGN_OR_RETURN(Held held, Hold(project_id, fence));
  Entry& entry = *held.entry;
  QAI_RETURN_IF_ERROR(Touch(entry));
  options.sandbox = options_.sandbox;
  CommandResult result = entry.ws->Run(
      command, options, [&] { return entry.fence.load() != fence || (cancelled && cancelled()); });
  if (options_.quota) {
    const std::string full = FullExplanation(entry.ws->dir(), *options_.quota);
    result.explanation.insert(0, full);
    result.output.insert(0, full);
  }
  held.lock.unlock();
  MakeRoom();
  return result;
}

absl::StatusOr<std::vector<FileOutcome>> Workspaces::Write(const std::string& project_id,
                                                           int64_t fence,
                                                           const std::vector<FileOutcome>& files) {
  QAI_ASSIGN_OR_RETURN(Held held, Hold(project_id, fence));
  Entry& entry = *held.entry;
  QAI_RETURN_IF_ERROR(Touch(entry));
  std::vector<FileOutcome> out;
  for (const FileOutcome& f : files) {
    out.push_back({.path = f.path, .status = entry.ws->WriteFile(f.path, f.content)});
  }
  return out;
}

absl::StatusOr<std::vector<FileOutcome>> Workspaces::Read(const std::string& project_id,
                                                          int64_t fence,
                                                          const std::vector<std::string>& paths,
                                                          size_t max_bytes) {
  QAI_ASSIGN_OR_RETURN(Held held, Hold(project_id, fence));
  std::vector<FileOutcome> out;
  for (const std::string& path : paths) {
    absl::StatusOr<std::string> content = held.entry->ws->ReadFile(path, max_bytes);
    out.push_back({.path = path,
                   .content = content.ok() ? *std::move(content) : "",
                   .status = content.status()});
  }
  return out;
}

absl::StatusOr<std::optional<std::vector<Change>>> Workspaces::Changes(
    const std::string& project_id, int64_t fence) {
  QAI_ASSIGN_OR_RETURN(Held held, Hold(project_id, fence));
  Entry& entry = *held.entry;
  std::map<std::string, std::string> files;
  std::optional<std::map<std::string, std::string>> now = Digests(*entry.ws, &files);
  std::optional<std::map<std::string, std::string>> before = std::move(entry.checkpoint);
  entry.checkpoint = now;
  if (!before || !now) return std::optional<std::vector<Change>>();
  std::vector<Change> changes;
  for (const auto& [path, digest] : *now) {
    auto it = before->find(path);
    if (it == before->end() || it->second != digest)
      changes.push_back({.path = path, .content = files[path]});
  }
  for (const auto& [path, digest] : *before) {
    if (!now->contains(path)) changes.push_back({.path = path, .content = std::nullopt});
  }
  return std::optional<std::vector<Change>>(std::move(changes));
}

absl::StatusOr<SnapshotRecord> Workspaces::Snapshot(const std::string& project_id, int64_t fence,
                                                    const std::string& snapshot_id,
                                                    const std::string& run_id) {
  QAI_ASSIGN_OR_RETURN(Held held, Hold(project_id, fence));
  Entry& entry = *held.entry;
  QAI_ASSIGN_OR_RETURN(Files files, entry.ws->Snapshot(options_.snapshot_limits));
  auto shared = std::make_shared<const Files>(std::move(files));
  absl::StatusOr<SnapshotRecord> saved =
      store_->SaveSnapshot({.id = absl::AsciiStrToLower(snapshot_id),
                            .project_id = absl::AsciiStrToLower(project_id),
                            .run_id = run_id,
                            .files = shared});
  if (!saved.ok()) return saved.status();
  // Marked only when what was stored is what the workspace holds (a repeat may have found an
  // earlier snapshot).
  if (saved->files == shared || *saved->files == *shared) {
    QAI_RETURN_IF_ERROR(entry.ws->SetVersion(saved->id));
    entry.marked = true;
  }
  std::map<std::string, std::string> digests;
  for (const auto& [path, content] : *shared) digests.emplace(path, common::Sha256Hex(content));
  entry.checkpoint = std::move(digests);
  return saved;
}

absl::Status Workspaces::Purge(const std::string& project) {
  const std::string project_id = absl::AsciiStrToLower(project);
  QAI_RETURN_IF_ERROR(store_->Purge(project_id));
  return Discard(project_id);
}

absl::Status Workspaces::Discard(const std::string& project) {
  const std::string project_id = absl::AsciiStrToLower(project);
  // The entry stays, fenced out for good (until it is forgotten as idle): a holder's later
  // call is refused as fenced out, not asked to open the workspace again.
  const std::shared_ptr<Entry> entry = EntryFor(project_id);
  entry->fence.store(std::numeric_limits<int64_t>::max());  // whatever runs in it stops
  std::lock_guard op(entry->op);
  // Its processes first: one left behind could still be writing into the workspace.
  if (Cgroups* cgroups = options_.sandbox->cgroups(); cgroups != nullptr) {
    QAI_RETURN_IF_ERROR(cgroups->Remove(project_id));
  }
  return RemoveFiles(*entry, project_id);
}

std::shared_ptr<Workspaces::Entry> Workspaces::EntryFor(const std::string& project_id) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Entry>& slot = entries_[project_id];
  if (slot == nullptr) slot = std::make_shared<Entry>();
  return slot;
}

absl::Status Workspaces::RemoveFiles(Entry& entry, const std::string& project_id) {
  std::shared_ptr<Workspace> ws = entry.ws;
  if (ws == nullptr) {
    QAI_ASSIGN_OR_RETURN(ws, Workspace::Open(options_.root, project_id, std::nullopt));
  }
  SetWorkspace(entry, nullptr);  // not open here from now on, for Peek too
  entry.marked = false;
  entry.checkpoint.reset();
  return ws->Remove();
}

void Workspaces::SetWorkspace(Entry& entry, std::shared_ptr<Workspace> ws) {
  absl::MutexLock lock(&entry.view_mu);
  entry.ws = std::move(ws);
}

absl::StatusOr<WorkspaceView> Workspaces::Peek(const std::string& project) {
  const std::string project_id = absl::AsciiStrToLower(project);
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = entries_.find(project_id); it != entries_.end()) entry = it->second;
  }
  std::shared_ptr<const Workspace> ws;
  if (entry != nullptr) {
    absl::MutexLock lock(&entry->view_mu);
    ws = entry->ws;
  }
  if (ws == nullptr) return WorkspaceView{};
  QAI_ASSIGN_OR_RETURN(Files files, ws->Snapshot(options_.snapshot_limits));
  return WorkspaceView{.open = true, .files = std::move(files)};
}

absl::StatusOr<int> Workspaces::DiscardPurged() {
  QAI_ASSIGN_OR_RETURN(std::vector<std::string> here, ProjectsIn(options_.root));
  QAI_ASSIGN_OR_RETURN(std::vector<std::string> purged, store_->PurgedAmong(here));
  for (const std::string& project_id : purged) {
    QAI_RETURN_IF_ERROR(Discard(project_id));
  }
  return static_cast<int>(purged.size());
}

}  // namespace qai::sandbox
