#pragma once
// ServiceClient: the state one command needs to call one service: the global options, a
// connection to the service's address and its stub, and the usual way to report a failed call.
// Each command family names its service by deriving from it (see projects_commands.cc).

#include <memory>
#include <string>
#include <string_view>

#include "tools/qai/args.h"
#include "tools/qai/channel.h"
#include "tools/qai/global_options.h"
#include "tools/qai/output.h"

namespace qai::cli {

template <typename Service>
class ServiceClient {
 public:
  // target: which address option the service is at (e.g. &GlobalOptions::projects_addr);
  // name: the service's name in the --verbose trace.
  ServiceClient(const Invocation& inv, std::string GlobalOptions::*target, std::string_view name)
      : inv_(inv),
        options_(GlobalOptionsFrom(inv.args)),
        connection_(options_, options_.*target, inv.err),
        stub_(Service::NewStub(connection_.channel())),
        name_(name) {}

  const GlobalOptions& options() const { return options_; }
  typename Service::Stub& stub() { return *stub_; }
  std::unique_ptr<grpc::ClientContext> NewContext(std::string_view method) const {
    return connection_.NewContext(std::string(name_).append(".").append(method));
  }

  // Fail: reports a failed call and gives the exit code for it.
  int Fail(const grpc::Status& status) const {
    inv_.err << FormatRpcError(status);
    return kExitRpcError;
  }

 protected:
  const Invocation& inv_;
  GlobalOptions options_;

 private:
  Connection connection_;
  std::unique_ptr<typename Service::Stub> stub_;
  std::string name_;
};

}  // namespace qai::cli
