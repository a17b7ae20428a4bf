#pragma once
// MessageServiceImpl: the gRPC face of MessageHandlers. Each call goes through
// common::ServeUnary (request id, authentication, executor, status mapping, access log).

#include "common/rpc.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "services/messages/handlers.h"

namespace qai::messages {

class MessageServiceImpl final : public pb::MessageService::CallbackService {
 public:
  MessageServiceImpl(MessageHandlers* handlers, common::RpcEnv env)
      : handlers_(handlers), env_(std::move(env)) {}

  grpc::ServerUnaryReactor* CreateMessage(grpc::CallbackServerContext* ctx,
                                          const pb::CreateMessageRequest* req,
                                          pb::Message* resp) override {
    return common::ServeUnary(ctx, env_, "CreateMessage", [=, this](const common::CallContext& c) {
      return handlers_->CreateMessage(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* ListMessages(grpc::CallbackServerContext* ctx,
                                         const pb::ListMessagesRequest* req,
                                         pb::ListMessagesResponse* resp) override {
    return common::ServeUnary(ctx, env_, "ListMessages", [=, this](const common::CallContext& c) {
      return handlers_->ListMessages(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* GetMessage(grpc::CallbackServerContext* ctx,
                                       const pb::GetMessageRequest* req,
                                       pb::Message* resp) override {
    return common::ServeUnary(ctx, env_, "GetMessage", [=, this](const common::CallContext& c) {
      return handlers_->GetMessage(c, *req, *resp);
    });
  }
  grpc::ServerUnaryReactor* RecordAgentResult(grpc::CallbackServerContext* ctx,
                                              const pb::RecordAgentResultRequest* req,
                                              pb::Message* resp) override {
    return common::ServeUnary(ctx, env_, "RecordAgentResult",
                              [=, this](const common::CallContext& c) {
                                return handlers_->RecordAgentResult(c, *req, *resp);
                              });
  }
  grpc::ServerUnaryReactor* PurgeProjectMessages(grpc::CallbackServerContext* ctx,
                                                 const pb::PurgeProjectMessagesRequest* req,
                                                 google::protobuf::Empty*) override {
    return common::ServeUnary(ctx, env_, "PurgeProjectMessages",
                              [=, this](const common::CallContext& c) {
                                return handlers_->PurgeProjectMessages(c, *req);
                              });
  }

 private:
  MessageHandlers* const handlers_;
  const common::RpcEnv env_;
};

}  // namespace qai::messages
