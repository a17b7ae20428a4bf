#pragma once
// Running QAI services as real processes in end-to-end tests.
//
//   auto svc = StartService("services/projects/qai-projects", {{"QAI_DATABASE_URL", url}});
//   auto stub = ProjectService::NewStub(svc->Channel());

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "tests/support/child_process.h"

namespace qai::testing {

// The services' QAI_JWT_SECRET, unless a test gives one (at least 32 bytes, as they demand).
inline constexpr char kJwtSecret[] = "e2e-jwt-secret-0123456789abcdef-0123456789";
// The page tokens' key, unless a test gives QAI_PAGE_TOKEN_KEY.
inline constexpr char kPageTokenKey[] = "e2e-page-token-key-0123456789abcdef";
// ServiceKey: the key the named service ("projects", "messages", "orchestrator", "sandbox")
// holds; every service started here accepts each of them under its name.
std::string ServiceKey(std::string_view service);

struct RunningService {
  std::unique_ptr<ChildProcess> process;
  int port = 0;
  // The /metrics port, when QAI_METRICS_ADDR was given (0 otherwise).
  int metrics_port = 0;
  std::string Address() const { return "127.0.0.1:" + std::to_string(port); }
  std::shared_ptr<grpc::Channel> Channel() const;
};

// A value in StartService's env that leaves the variable unset (the service's default applies
// where the harness would set one of its own, as QAI_RATE_LIMIT=0).
inline constexpr char kUnset[] = "<unset>";

// StartService: spawns a service binary (path relative to the build dir) on a free port (or
// the QAI_LISTEN_ADDR given in env) with the test's JWT secret, its own service key (named by
// the binary's folder) and every service's digest configured, and waits until it listens. `options`
// may start it through a wrapper (as another user, with fewer capabilities).
[[nodiscard]] absl::StatusOr<RunningService> StartService(const std::string& binary, EnvVars env,
                                                          const SpawnOptions& options = {});

// Token: a bearer token for sub (an ADMIN when admin), signed with kJwtSecret.
std::string Token(const std::string& sub, bool admin = false);

// Metadata helpers for a client context.
void AsUser(grpc::ClientContext& ctx, const std::string& sub);
void AsAdmin(grpc::ClientContext& ctx, const std::string& sub);
// AsService: calls with the named service's key.
void AsService(grpc::ClientContext& ctx, std::string_view service);

}  // namespace qai::testing
