#pragma once
// ProjectServiceImpl: the gRPC face of ProjectHandlers. Each call goes through
// common::ServeUnary (request id, authentication, executor, status mapping, access log).

#include "common/rpc.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "services/projects/handlers.h"

namespace qai::projects {

class ProjectServiceImpl final : public pb::ProjectService::CallbackService {
 public:
  ProjectServiceImpl(ProjectHandlers* handlers, common::RpcEnv env)
      : handlers_(handlers), env_(std::move(env)) {}

  grpc::ServerUnaryReactor* CreateProject(grpc::CallbackServerContext* ctx,
                                          const pb::CreateProjectRequest* req,
                                          pb::Project* resp) override {
    return common::ServeUnaryAsync(ctx, env_, "CreateProject",
                                   [=, this](const common::CallContext& c, common::Reply r) {
                                     handlers_->CreateProject(c, *req, *resp, std::move(r));
                                   });
  }
  grpc::ServerUnaryReactor* ForkProject(grpc::CallbackServerContext* ctx,
                                        const pb::ForkProjectRequest* req,
                                        pb::Project* resp) override {
    return common::ServeUnaryAsync(ctx, env_, "ForkProject",
                                   [=, this](const common::CallContext& c, common::Reply r) {
                                     handlers_->ForkProject(c, *req, *resp, std::move(r));
                                   });
  }
  grpc::ServerUnaryReactor* GetProject(grpc::CallbackServerContext* ctx,
                                       const pb::GetProjectRequest* req,
                                       pb::Project* resp) override {
    return common::ServeUnaryAsync(ctx, env_, "GetProject",
                                   [=, this](const common::CallContext& c, common::Reply r) {
                                     handlers_->GetProject(c, *req, *resp, std::move(r));
                                   });
  }
  grpc::ServerUnaryReactor* ListProjects(grpc::CallbackServerContext* ctx,
                                         const pb::ListProjectsRequest* req,
                                         pb::ListProjectsResponse* resp) override {
    return common::ServeUnary(ctx, env_, "ListProjects", [=, this](const common::CallContext& c) {
      return handlers_->ListProjects(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* UpdateProject(grpc::CallbackServerContext* ctx,
                                          const pb::UpdateProjectRequest* req,
                                          pb::Project* resp) override {
    return common::ServeUnary(ctx, env_, "UpdateProject", [=, this](const common::CallContext& c) {
      return handlers_->UpdateProject(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* DeleteProject(grpc::CallbackServerContext* ctx,
                                          const pb::DeleteProjectRequest* req,
                                          google::protobuf::Empty*) override {
    return common::ServeUnary(ctx, env_, "DeleteProject", [=, this](const common::CallContext& c) {
      return handlers_->DeleteProject(c, *req);
    });
  }
  grpc::ServerUnaryReactor* RecordLatestRun(grpc::CallbackServerContext* ctx,
                                            const pb::RecordLatestRunRequest* req,
                                            google::protobuf::Empty*) override {
    return common::ServeUnary(
        ctx, env_, "RecordLatestRun",
        [=, this](const common::CallContext& c) { return handlers_->RecordLatestRun(c, *req); });
  }
  grpc::ServerUnaryReactor* RecordLatestRuns(grpc::CallbackServerContext* ctx,
                                             const pb::RecordLatestRunsRequest* req,
                                             google::protobuf::Empty*) override {
    return common::ServeUnary(
        ctx, env_, "RecordLatestRuns",
        [=, this](const common::CallContext& c) { return handlers_->RecordLatestRuns(c, *req); });
  }

 private:
  ProjectHandlers* const handlers_;
  const common::RpcEnv env_;
};

}  // namespace qai::projects
