#include "tools/loadgen/messages_sink.h"

#include "absl/strings/str_cat.h"
#include "qai/messages/v1/messages.grpc.pb.h"

namespace qai::loadgen {
namespace {

namespace pb = ::qai::messages::v1;

// Every method but CreateMessage stays UNIMPLEMENTED: the benchmark never deletes a project.
class AcceptingMessageService final : public pb::MessageService::CallbackService {
  grpc::ServerUnaryReactor* CreateMessage(grpc::CallbackServerContext* context,
                                          const pb::CreateMessageRequest* request,
                                          pb::Message* response) override {
    response->set_project_id(request->project_id());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<MessagesSink>> MessagesSink::Start(const std::string& listen_addr) {
  std::unique_ptr<MessagesSink> sink(new MessagesSink());
  sink->service_ = std::make_unique<AcceptingMessageService>();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen_addr, grpc::InsecureServerCredentials(), &sink->port_);
  builder.RegisterService(sink->service_.get());
  sink->server_ = builder.BuildAndStart();
  if (!sink->server_ || sink->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen_addr));
  }
  return sink;
}

MessagesSink::~MessagesSink() {
  if (server_) server_->Shutdown();
}

}  // namespace qai::loadgen
