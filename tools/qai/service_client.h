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

  // PrintPages: a List call's pages, each printed (one protobuf JSON line, or `rows` and then a
  // "next page:" hint), following next_page_token to the end when `all`.
  template <typename Request, typename Response, typename Rows>
  int PrintPages(std::string_view method,
                 grpc::Status (Service::Stub::*rpc)(grpc::ClientContext*, const Request&,
                                                    Response*),
                 Request request, bool all, Rows rows) {
    while (true) {
      Response response;
      auto context = NewContext(method);
      if (grpc::Status status = ((*stub_).*rpc)(context.get(), request, &response); !status.ok())
        return Fail(status);
      if (options_.json) {
        inv_.out << ToJsonLine(response);
      } else {
        rows(response);
        if (!all && !response.next_page_token().empty()) {
          inv_.out << "next page: " << response.next_page_token() << "\n";
        }
      }
      if (!all || response.next_page_token().empty()) return kExitOk;
      // A server that hands back the token it was given would keep --all looping forever.
      if (response.next_page_token() == request.page_token()) {
        inv_.err << "error: the server repeated page token " << request.page_token() << "\n";
        return kExitRpcError;
      }
      request.set_page_token(response.next_page_token());
    }
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
