#pragma once
// Connections to QAI services: a plaintext channel (TLS ends at the proxy in production) plus
// per-call contexts carrying the caller's credentials, request id and deadline.
//
//   Connection connection(options, options.projects_addr, invocation.err);
//   auto stub = qai::projects::v1::ProjectService::NewStub(connection.channel());
//   std::unique_ptr<grpc::ClientContext> context = connection.NewContext("GetProject");
//   grpc::Status status = stub->GetProject(context.get(), request, &project);

#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "tools/qai/global_options.h"

namespace qai::cli {

// Connection: one service's channel and the call settings of the current invocation.
class Connection {
 public:
  // `target` is any gRPC target string ("host:port", "dns:///host:port"); `log` receives the
  // --verbose trace of each call. Both `options` and `log` must outlive the connection.
  Connection(const GlobalOptions& options, std::string target, std::ostream& log);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // NewContext: a context for one call of `method` with metadata (authorization, x-api-key,
  // x-request-id) and deadline set. Contexts cannot be reused, so each call takes a new one.
  [[nodiscard]] std::unique_ptr<grpc::ClientContext> NewContext(std::string_view method) const;

 private:
  const GlobalOptions& options_;
  std::string target_;
  std::ostream& log_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace qai::cli
