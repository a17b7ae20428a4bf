#include "services/orchestrator/runs/sandbox_workspace.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "common/client.h"
#include "common/log.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "services/messages/client/messages_client.h"

namespace qai::orchestrator {
namespace {

namespace spb = sandbox::v1;

// How often a running command's `cancelled` is looked at.
constexpr auto kCancelPoll = std::chrono::milliseconds(50);
// A command's call may take this much longer than the command itself (start-up, the kill).
constexpr absl::Duration kCommandSlack = absl::Seconds(15);

}  // namespace

void SandboxWorkspace::Prepare(grpc::ClientContext& ctx, absl::Duration timeout) const {
  common::PrepareServiceCall(ctx, client_->api_key, common::CurrentRequestId(), timeout);
}

template <typename Request, typename Response>
absl::Status SandboxWorkspace::Call(grpc::Status (SandboxStub::*method)(grpc::ClientContext*,
                                                                        const Request&, Response*),
                                    Request& req, Response* resp) const {
  req.set_project_id(project_id_);
  req.set_fence(fence_);
  grpc::ClientContext ctx;
  Prepare(ctx, client_->call_timeout);
  return common::FromGrpcStatus(((*replica_).*method)(&ctx, req, resp));
}

absl::StatusOr<HeldWorkspace> SandboxWorkspace::Open() {
  spb::LocateWorkspaceRequest where;
  where.set_project_id(project_id_);
  spb::WorkspaceLocation location;
  grpc::ClientContext ctx;
  Prepare(ctx, client_->call_timeout);
  QAI_RETURN_IF_ERROR(
      common::FromGrpcStatus(client_->tier()->LocateWorkspace(&ctx, where, &location)));
  replica_ = client_->ReplicaAt(location.address());
  spb::OpenWorkspaceRequest req;
  spb::Workspace resp;
  QAI_RETURN_IF_ERROR(Call(&spb::SandboxService::Stub::OpenWorkspace, req, &resp));
  heard_ = {};  // the service's next look starts here
  return HeldWorkspace{.snapshot_id = resp.snapshot_id(), .empty = resp.empty()};
}

absl::Status SandboxWorkspace::Restore(const std::string& snapshot_id, const FileChanges& changes,
                                       const std::string& snapshot_project) {
  spb::RestoreSnapshotRequest req;
  req.set_snapshot_id(snapshot_id);
  req.set_snapshot_project_id(snapshot_project);
  for (const auto& [path, content] : changes) {
    spb::FileChange* c = req.add_changes();
    c->set_path(path);
    if (content) c->set_content(*content);
  }
  spb::Workspace resp;
  heard_ = {};  // the service's next look starts here (or, if this fails, the workspace is rebuilt)
  return Call(&spb::SandboxService::Stub::RestoreSnapshot, req, &resp);
}

absl::StatusOr<SavedSnapshot> SandboxWorkspace::Snapshot(const std::string& snapshot_id,
                                                         const std::string& run_id) {
  spb::CreateSnapshotRequest req;
  req.set_snapshot_id(snapshot_id);
  req.set_run_id(run_id);
  // A fragment carries the files only when they fit one; a larger version's stay in qai-sandbox.
  req.set_max_content_bytes(static_cast<int64_t>(messages::kMaxFragmentFilesBytes));
  spb::Snapshot resp;
  QAI_RETURN_IF_ERROR(Call(&spb::SandboxService::Stub::CreateSnapshot, req, &resp));
  heard_ = {};  // the service's next look starts here
  SavedSnapshot saved{.id = resp.id(), .preview_url = resp.preview_url()};
  if (resp.contents_omitted() ||
      static_cast<size_t>(resp.files_size()) > messages::kMaxFragmentFiles) {
    saved.files_omitted = true;
  } else {
    saved.files.insert(resp.files().begin(), resp.files().end());
  }
  return saved;
}

absl::StatusOr<CommandOutcome> SandboxWorkspace::Run(const std::string& command,
                                                     const std::function<bool()>& cancelled) {
  spb::RunCommandRequest req;
  req.set_project_id(project_id_);
  req.set_fence(fence_);
  req.set_command(command);
  req.set_with_changes(true);
  const int64_t timeout_ns = absl::ToInt64Nanoseconds(client_->command_timeout);
  req.mutable_timeout()->set_seconds(timeout_ns / 1000000000);
  req.mutable_timeout()->set_nanos(static_cast<int32_t>(timeout_ns % 1000000000));
  grpc::ClientContext ctx;
  Prepare(ctx, client_->command_timeout + kCommandSlack);

  // A cancel (or the run's timeout) cancels the call, which kills the command.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::atomic<bool> cancelled_here{false};
  std::thread watcher([&] {
    std::unique_lock lock(mu);
    while (!done) {
      if (cancelled && cancelled()) {
        cancelled_here = true;
        ctx.TryCancel();
        return;
      }
      cv.wait_for(lock, kCancelPoll);
    }
  });

  CommandOutcome outcome;
  std::string explanation;
  std::optional<spb::GetChangesResponse> report;
  std::unique_ptr<grpc::ClientReader<spb::RunCommandResponse>> reader =
      replica_->RunCommand(&ctx, req);
  spb::RunCommandResponse piece;
  while (reader->Read(&piece)) {
    if (piece.has_end()) {
      const spb::CommandEnd& end = piece.end();
      outcome.exit_code = end.exit_code();
      outcome.truncated = end.truncated();
      outcome.timed_out = end.timed_out();
      explanation = end.explanation();
      if (end.has_changes()) report = end.changes();
    } else {
      outcome.output.append(piece.output());
    }
  }
  const grpc::Status status = reader->Finish();
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  watcher.join();
  Hear(status.ok() && report ? &*report : nullptr);
  if (cancelled_here || status.error_code() == grpc::StatusCode::CANCELLED) {
    outcome.cancelled = true;
    outcome.exit_code = 128 + 15;
    return outcome;
  }
  QAI_RETURN_IF_ERROR(common::FromGrpcStatus(status));
  outcome.output.insert(0, explanation);
  return outcome;
}

absl::StatusOr<std::vector<FileResult>> SandboxWorkspace::WriteFiles(
    const std::vector<std::pair<std::string, std::string>>& files) {
  spb::WriteFilesRequest req;
  for (const auto& [path, content] : files) {
    spb::FileContent* f = req.add_files();
    f->set_path(path);
    f->set_content(content);
  }
  req.set_with_changes(true);
  spb::WriteFilesResponse resp;
  absl::Status s = Call(&spb::SandboxService::Stub::WriteFiles, req, &resp);
  Hear(s.ok() && resp.has_changes() ? &resp.changes() : nullptr);
  if (!s.ok()) return s;
  std::vector<FileResult> out;
  for (const spb::FileResult& r : resp.results())
    out.push_back({.path = r.path(), .error = r.error()});
  return out;
}

absl::StatusOr<std::vector<FileResult>> SandboxWorkspace::ReadFiles(
    const std::vector<std::string>& paths, size_t max_bytes) {
  spb::ReadFilesRequest req;
  for (const std::string& p : paths) req.add_paths(p);
  req.set_max_file_bytes(static_cast<int64_t>(max_bytes));
  spb::ReadFilesResponse resp;
  QAI_RETURN_IF_ERROR(Call(&spb::SandboxService::Stub::ReadFiles, req, &resp));
  std::vector<FileResult> out;
  for (const spb::FileResult& r : resp.results()) {
    out.push_back({.path = r.path(), .content = r.content(), .error = r.error()});
  }
  return out;
}

void SandboxWorkspace::Hear(const spb::GetChangesResponse* report) {
  if (report == nullptr) {
    heard_.incomplete = true;
    return;
  }
  heard_.any = true;
  heard_.unknown = heard_.unknown || report->unknown();
  for (const spb::FileChange& c : report->changes()) {
    heard_.changes[c.path()] = c.has_content() ? std::optional(c.content()) : std::nullopt;
  }
}

absl::StatusOr<std::optional<FileChanges>> SandboxWorkspace::Changes() {
  if (!heard_.any || heard_.incomplete) {
    // The rest comes from the service, after (and over) what was heard.
    spb::GetChangesRequest req;
    spb::GetChangesResponse resp;
    QAI_RETURN_IF_ERROR(Call(&spb::SandboxService::Stub::GetChanges, req, &resp));
    heard_.incomplete = false;
    Hear(&resp);
  }
  Heard heard = std::exchange(heard_, {});
  if (heard.unknown) return std::optional<FileChanges>();
  return std::optional<FileChanges>(std::move(heard.changes));
}

}  // namespace qai::orchestrator
