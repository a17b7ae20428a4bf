#pragma once
// SandboxServiceImpl: the gRPC face of SandboxHandlers (unary calls through common::ServeUnary)
// and of the RunCommand stream (run_command.h) and the ArchiveSnapshot stream (a pulled stream,
// common/pull_stream.h, on an executor of its own).

#include "common/pull_stream.h"
#include "common/rpc.h"
#include "qai/sandbox/v1/sandbox.grpc.pb.h"
#include "services/sandbox/handlers.h"
#include "services/sandbox/run_command.h"

namespace qai::sandbox {

class SandboxServiceImpl final : public v1::SandboxService::CallbackService {
 public:
  SandboxServiceImpl(SandboxHandlers* handlers, common::RpcEnv env, common::Executor* commands,
                     common::PullStreamEnv downloads)
      : handlers_(handlers),
        env_(std::move(env)),
        run_{.rpc = &env_, .handlers = handlers, .executor = commands},
        downloads_(downloads) {
    downloads_.rpc = &env_;
  }

  grpc::ServerUnaryReactor* LocateWorkspace(grpc::CallbackServerContext* ctx,
                                            const v1::LocateWorkspaceRequest* req,
                                            v1::WorkspaceLocation* resp) override {
    return common::ServeUnary(ctx, env_, "LocateWorkspace",
                              [=, this](const common::CallContext& c) {
                                return handlers_->LocateWorkspace(c, *req, *resp);
                              });
  }
  grpc::ServerUnaryReactor* OpenWorkspace(grpc::CallbackServerContext* ctx,
                                          const v1::OpenWorkspaceRequest* req,
                                          v1::Workspace* resp) override {
    return common::ServeUnary(ctx, env_, "OpenWorkspace", [=, this](const common::CallContext& c) {
      return handlers_->OpenWorkspace(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* RestoreSnapshot(grpc::CallbackServerContext* ctx,
                                            const v1::RestoreSnapshotRequest* req,
                                            v1::Workspace* resp) override {
    return common::ServeUnary(ctx, env_, "RestoreSnapshot",
                              [=, this](const common::CallContext& c) {
                                return handlers_->RestoreSnapshot(c, *req, *resp);
                              });
  }
  grpc::ServerWriteReactor<v1::RunCommandResponse>* RunCommand(
      grpc::CallbackServerContext* ctx, const v1::RunCommandRequest* req) override {
    return StartRunCommand(ctx, req, run_);
  }
  grpc::ServerUnaryReactor* WriteFiles(grpc::CallbackServerContext* ctx,
                                       const v1::WriteFilesRequest* req,
                                       v1::WriteFilesResponse* resp) override {
    return common::ServeUnary(ctx, env_, "WriteFiles", [=, this](const common::CallContext& c) {
      return handlers_->WriteFiles(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* ReadFiles(grpc::CallbackServerContext* ctx,
                                      const v1::ReadFilesRequest* req,
                                      v1::ReadFilesResponse* resp) override {
    return common::ServeUnary(ctx, env_, "ReadFiles", [=, this](const common::CallContext& c) {
      return handlers_->ReadFiles(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* GetChanges(grpc::CallbackServerContext* ctx,
                                       const v1::GetChangesRequest* req,
                                       v1::GetChangesResponse* resp) override {
    return common::ServeUnary(ctx, env_, "GetChanges", [=, this](const common::CallContext& c) {
      return handlers_->GetChanges(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* GetSnapshot(grpc::CallbackServerContext* ctx,
                                        const v1::GetSnapshotRequest* req,
                                        v1::SnapshotFiles* resp) override {
    return common::ServeUnary(ctx, env_, "GetSnapshot", [=, this](const common::CallContext& c) {
      return handlers_->GetSnapshot(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* CreateSnapshot(grpc::CallbackServerContext* ctx,
                                           const v1::CreateSnapshotRequest* req,
                                           v1::Snapshot* resp) override {
    return common::ServeUnary(ctx, env_, "CreateSnapshot", [=, this](const common::CallContext& c) {
      return handlers_->CreateSnapshot(c, *req, *resp);
    });
  }
  grpc::ServerWriteReactor<v1::ArchiveChunk>* ArchiveSnapshot(
      grpc::CallbackServerContext* ctx, const v1::ArchiveSnapshotRequest* req) override {
    return common::ServePullStream<v1::ArchiveChunk>(
        ctx, downloads_, "ArchiveSnapshot",
        [=, this](const common::CallContext& c) { return handlers_->ArchiveSnapshot(c, *req); });
  }
  grpc::ServerUnaryReactor* PurgeProject(grpc::CallbackServerContext* ctx,
                                         const v1::PurgeProjectRequest* req,
                                         google::protobuf::Empty*) override {
    return common::ServeUnary(ctx, env_, "PurgeProject", [=, this](const common::CallContext& c) {
      return handlers_->PurgeProject(c, *req);
    });
  }
  grpc::ServerUnaryReactor* GetWorkspaceFiles(grpc::CallbackServerContext* ctx,
                                              const v1::GetWorkspaceFilesRequest* req,
                                              v1::WorkspaceFiles* resp) override {
    return common::ServeUnary(ctx, env_, "GetWorkspaceFiles",
                              [=, this](const common::CallContext& c) {
                                return handlers_->GetWorkspaceFiles(c, *req, *resp);
                              });
  }

 private:
  SandboxHandlers* const handlers_;
  const common::RpcEnv env_;
  const RunCommandEnv run_;
  common::PullStreamEnv downloads_;
};

}  // namespace qai::sandbox
