#pragma once
// LocalSandbox: qai-sandbox's real service (handlers, workspaces, store) in the test's own
// process, on a free port, for tests of its callers that need no separate process. Commands
// run in the unsafe-none mode unless the test asks for bwrap.
//
//   auto sandbox = LocalSandbox::Start(PgServer::Shared().CreateDatabase());
//   SandboxClient client((*sandbox)->channel(), (*sandbox)->api_key());

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "services/sandbox/handlers.h"
#include "services/sandbox/sandbox.h"

namespace qai::testing {

struct LocalSandboxOptions {
  sandbox::SandboxMode mode = sandbox::SandboxMode::kUnsafeNone;
  sandbox::SandboxLimits limits;
  sandbox::HandlerLimits handler_limits;
  std::string preview_base_url = "http://preview.test";
};

class LocalSandbox {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LocalSandbox>> Start(
      const std::string& db_url, LocalSandboxOptions options = {});
  ~LocalSandbox();

  std::shared_ptr<grpc::Channel> channel() const;
  // The key its SERVICE principal uses (the only one it accepts).
  const std::string& api_key() const { return api_key_; }
  const std::string& root() const { return root_; }

 private:
  LocalSandbox() = default;
  struct Parts;
  std::unique_ptr<Parts> parts_;
  std::string api_key_;
  std::string root_;
};

}  // namespace qai::testing
