#pragma once
// AgentOrchestratorImpl: the gRPC face of RunHandlers and VersionHandlers (unary calls through
// common::ServeUnary), of the WatchRun stream (watch.h) and of the DownloadVersion stream (a
// pulled stream, common/pull_stream.h, on an executor of its own).

#include "common/pull_stream.h"
#include "common/rpc.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "services/orchestrator/api/handlers.h"
#include "services/orchestrator/api/versions.h"
#include "services/orchestrator/api/watch.h"

namespace qai::orchestrator {

class AgentOrchestratorImpl final : public v1::AgentOrchestrator::CallbackService {
 public:
  AgentOrchestratorImpl(RunHandlers* handlers, VersionHandlers* versions, common::RpcEnv env,
                        EventHub* hub, common::Executor* watch_executor,
                        common::PullStreamEnv downloads, WatchLimits limits = WatchLimits())
      : handlers_(handlers),
        versions_(versions),
        env_(std::move(env)),
        downloads_(downloads),
        watches_(limits.max_per_principal),
        watch_{.rpc = &env_,
               .handlers = handlers,
               .hub = hub,
               .executor = watch_executor,
               .registry = &watches_,
               .recheck_after = limits.recheck_after} {
    downloads_.rpc = &env_;
  }

  // CloseWatches: ends every WatchRun stream (at shutdown; clients reconnect elsewhere).
  void CloseWatches() { watches_.CloseAll(); }

  grpc::ServerUnaryReactor* StartRun(grpc::CallbackServerContext* ctx,
                                     const v1::StartRunRequest* req, v1::Run* resp) override {
    return common::ServeUnary(ctx, env_, "StartRun", [=, this](const common::CallContext& c) {
      return handlers_->StartRun(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* ctx, const v1::GetRunRequest* req,
                                   v1::Run* resp) override {
    return common::ServeUnary(ctx, env_, "GetRun", [=, this](const common::CallContext& c) {
      return handlers_->GetRun(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* ctx,
                                     const v1::ListRunsRequest* req,
                                     v1::ListRunsResponse* resp) override {
    return common::ServeUnary(ctx, env_, "ListRuns", [=, this](const common::CallContext& c) {
      return handlers_->ListRuns(c, *req, *resp);
    });
  }
  grpc::ServerWriteReactor<v1::RunEvent>* WatchRun(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchRunRequest* req) override {
    return StartWatch(ctx, req, watch_);
  }
  grpc::ServerUnaryReactor* CancelRun(grpc::CallbackServerContext* ctx,
                                      const v1::CancelRunRequest* req, v1::Run* resp) override {
    return common::ServeUnary(ctx, env_, "CancelRun", [=, this](const common::CallContext& c) {
      return handlers_->CancelRun(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* CancelProjectRuns(grpc::CallbackServerContext* ctx,
                                              const v1::CancelProjectRunsRequest* req,
                                              google::protobuf::Empty*) override {
    return common::ServeUnary(
        ctx, env_, "CancelProjectRuns",
        [=, this](const common::CallContext& c) { return handlers_->CancelProjectRuns(c, *req); });
  }
  grpc::ServerUnaryReactor* CountActiveRuns(grpc::CallbackServerContext* ctx,
                                            const v1::CountActiveRunsRequest* req,
                                            v1::CountActiveRunsResponse* resp) override {
    return common::ServeUnary(ctx, env_, "CountActiveRuns",
                              [=, this](const common::CallContext& c) {
                                return handlers_->CountActiveRuns(c, *req, *resp);
                              });
  }
  grpc::ServerUnaryReactor* ListVersions(grpc::CallbackServerContext* ctx,
                                         const v1::ListVersionsRequest* req,
                                         v1::ListVersionsResponse* resp) override {
    return common::ServeUnary(ctx, env_, "ListVersions", [=, this](const common::CallContext& c) {
      return versions_->ListVersions(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* GetVersion(grpc::CallbackServerContext* ctx,
                                       const v1::GetVersionRequest* req,
                                       v1::Version* resp) override {
    return common::ServeUnary(ctx, env_, "GetVersion", [=, this](const common::CallContext& c) {
      return versions_->GetVersion(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* RestoreVersion(grpc::CallbackServerContext* ctx,
                                           const v1::RestoreVersionRequest* req,
                                           v1::Run* resp) override {
    return common::ServeUnary(ctx, env_, "RestoreVersion", [=, this](const common::CallContext& c) {
      return versions_->RestoreVersion(c, *req, *resp);
    });
  }

  grpc::ServerUnaryReactor* DiffVersions(grpc::CallbackServerContext* ctx,
                                         const v1::DiffVersionsRequest* req,
                                         v1::DiffVersionsResponse* resp) override {
    return common::ServeUnary(ctx, env_, "DiffVersions", [=, this](const common::CallContext& c) {
      return versions_->DiffVersions(c, *req, *resp);
    });
  }

  grpc::ServerWriteReactor<v1::DownloadVersionResponse>* DownloadVersion(
      grpc::CallbackServerContext* ctx, const v1::DownloadVersionRequest* req) override {
    return common::ServePullStream<v1::DownloadVersionResponse>(
        ctx, downloads_, "DownloadVersion",
        [=, this](const common::CallContext& c) { return versions_->DownloadVersion(c, *req); });
  }

 private:
  RunHandlers* const handlers_;
  VersionHandlers* const versions_;
  const common::RpcEnv env_;
  common::PullStreamEnv downloads_;
  WatchRegistry watches_;
  const WatchEnv watch_;
};

}  // namespace qai::orchestrator
