#include "tools/qai/channel.h"

#include <chrono>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace qai::cli {
namespace {

// ChannelArgs: a server that went away is looked for again within seconds, not gRPC's default
// of up to two minutes: a watch that lost its stream reconnects as soon as a replica is back.
grpc::ChannelArguments ChannelArgs() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return args;
}

}  // namespace

Connection::Connection(const GlobalOptions& options, std::string target, std::ostream& log)
    : options_(options),
      target_(std::move(target)),
      log_(log),
      channel_(
          grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), ChannelArgs())) {}

std::unique_ptr<grpc::ClientContext> Connection::NewContext(std::string_view method) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!options_.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  if (!options_.api_key.empty()) context->AddMetadata("x-api-key", options_.api_key);
  context->AddMetadata("x-request-id", options_.request_id);
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoMilliseconds(options_.timeout));
  if (options_.verbose) {
    log_ << "qai: " << method << " -> " << target_ << " x-request-id=" << options_.request_id
         << "\n";
  }
  return context;
}

}  // namespace qai::cli
