#pragma once
// What every QAI service's main() shares: its standard options (ARCHITECTURE.md's table) and
// the wiring they imply (logging, authenticator, database pool, executor).
//
//   auto base = ServiceBase::Init("projects", argc, argv, {extra options...});
//   if (!base.ok()) return ExitForConfigError(base.status());
//   ... build handlers with (*base)->db(), (*base)->rpc_env("qai.projects.v1.ProjectService") ...

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/auth.h"
#include "common/config.h"
#include "common/db_pool.h"
#include "common/executor.h"
#include "common/grpc_limits.h"
#include "common/metrics.h"
#include "common/page_token.h"
#include "common/rate_limit.h"
#include "common/rpc.h"

namespace qai::common {

// ServiceOptions: the options every service takes, plus `extra`. Each service has its own
// default port (projects 50051, messages 50052, orchestrator 50053, sandbox 50054), so the
// suite runs on one machine with no configuration.
std::vector<Option> ServiceOptions(std::vector<Option> extra = {},
                                   std::string_view default_listen_addr = "0.0.0.0:50051");

// PageTokenKeyOption: QAI_PAGE_TOKEN_KEY, the HMAC key of the page tokens of a service that
// pages (at least 32 bytes, the same on every replica); PageTokensFrom: their codec, refusing a
// key that is the JWT secret (a page token must never be a way to learn or use the token key).
Option PageTokenKeyOption();
[[nodiscard]] absl::StatusOr<PageTokenCodec> PageTokensFrom(const Config& config);

// UserTokens: whether a service's users sign in with bearer tokens, so that QAI_JWT_SECRET (or
// another source of token keys) must be set, or only services call it (qai-sandbox): then none
// need be, and bearer tokens are refused.
enum class UserTokens { kRequired, kNotServed };

class ServiceBase {
 public:
  // Init: parses and validates the configuration, starts logging (its first line is the
  // configuration, secrets masked), starts the metrics server (metrics-addr, when set) and
  // builds the authenticator (bearer tokens as `users` says), pool (its gauges included) and
  // executor.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ServiceBase>> Init(
      std::string service, int argc, const char* const* argv, std::vector<Option> extra = {},
      std::string_view default_listen_addr = "0.0.0.0:50051",
      UserTokens users = UserTokens::kRequired);

  const Config& config() const { return config_; }
  DbPool* db() { return db_.get(); }
  Executor* executor() { return executor_.get(); }
  // metrics: the service's registry (served on metrics-addr when set); pass it to
  // Server::Start and to whatever registers instruments of its own.
  Metrics* metrics() { return metrics_.get(); }
  const Authenticator& auth() const { return *auth_; }
  // grpc_limits: for Server::Start and MakeChannel.
  const GrpcLimits& grpc_limits() const { return grpc_limits_; }
  // rpc_env: for the service's RPCs; `callers` (kept alive by the caller) says which services
  // may call which of them.
  RpcEnv rpc_env(std::string proto_service, const ServiceCallers* callers) {
    return RpcEnv{std::move(proto_service), auth_.get(), executor_.get(),
                  limiter_.get(),           callers,     auth_failures_.get()};
  }

  // Failed authentications a source may make: 30 at once, then one a second (docs/operations.md,
  // "Limits").
  static constexpr RateLimitOptions kAuthFailures = {.rate = 1, .burst = 30};

 private:
  ServiceBase(Config config) : config_(std::move(config)) {}
  Config config_;
  std::unique_ptr<Metrics> metrics_;  // first: it outlives every hook
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<DbPool> db_;
  Metrics::Hook pool_gauges_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<RateLimiter> auth_failures_;
  GrpcLimits grpc_limits_;
};

// ExitCodeFor: prints a start-up error (or --help text) and returns the exit code to use.
int ExitCodeFor(const absl::Status& status);

}  // namespace qai::common
