#pragma once
// ServeUnary: the one way a unary RPC is served.
//
// It reads (or makes) the request id, authenticates the caller, applies its rate limit, runs the
// handler's blocking work on an Executor with the request id on every log line, maps the result to
// a grpc::Status, and writes one access-log line (method, code, duration_ms, principal).
//
//   grpc::ServerUnaryReactor* GetProject(grpc::CallbackServerContext* ctx,
//                                        const GetProjectRequest* req, Project* resp) override {
//     return ServeUnary(ctx, env_, "GetProject", [=, this](const CallContext& call) {
//       return handlers_.GetProject(call, *req, *resp);
//     });
//   }

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/auth.h"
#include "common/executor.h"
#include "common/rate_limit.h"
#include "grpcpp/grpcpp.h"

namespace qai::common {

// CallContext: what a handler knows about the call it serves.
struct CallContext {
  Principal principal;
  std::string request_id;
  // The caller's own credentials, forwarded when a downstream call acts for the caller.
  std::string authorization;
  // The call's deadline (absl::InfiniteFuture() when the client set none).
  absl::Time deadline = absl::InfiniteFuture();
};

// ServiceCallers: for each method a service key may call, the services whose keys may (by the
// names QAI_SERVICE_KEY_SHA256 gives them). A method not listed takes no service key at all, so
// a leaked key reaches only what its own service needs.
using ServiceCallers = std::map<std::string, std::vector<std::string>, std::less<>>;

// RpcEnv: what every RPC of a server shares.
struct RpcEnv {
  std::string service;  // full proto service name, for the access log
  const Authenticator* auth = nullptr;
  Executor* executor = nullptr;
  // Every call of a principal takes a token here (nullptr: no limit).
  RateLimiter* limiter = nullptr;
  // Who may call what with a service key (nullptr: no one).
  const ServiceCallers* callers = nullptr;
  // Failed authentications per source address (nullptr: not throttled): once a source's bucket
  // is empty its calls are refused before their credentials are looked at.
  RateLimiter* auth_failures = nullptr;
};

// CallSource: the address a call comes from: the last x-forwarded-for entry (the edge proxy
// appends the address it saw), else the peer's address, without its port.
std::string CallSource(const grpc::ServerContextBase& ctx);

// AdmitCall: authenticates the caller of `method` (unless its source has failed too often:
// RESOURCE_EXHAUSTED with a retry delay, and a failure counts against its source), refuses a
// service whose key may not call it (PERMISSION_DENIED), and takes a token of the caller's rate
// limit: the principal, or UNAUTHENTICATED, PERMISSION_DENIED, or RESOURCE_EXHAUSTED with a
// retry delay. Every RPC, unary or streaming, starts with it.
[[nodiscard]] absl::StatusOr<Principal> AdmitCall(const RpcEnv& env,
                                                  const grpc::ServerContextBase& ctx,
                                                  std::string_view method);

// RequestIdFrom: the caller's x-request-id if it is sane (1..128 printable ASCII), else a new UUID.
std::string RequestIdFrom(const grpc::ServerContextBase& ctx);

// BeginCall: the CallContext of a call before its caller is admitted: its request id (echoed
// in the initial metadata), deadline and the caller's credentials to forward.
CallContext BeginCall(grpc::ServerContextBase& ctx);

// ServeUnary: see the file comment. `work` runs on env.executor; it fills the response and
// returns the status to send.
grpc::ServerUnaryReactor* ServeUnary(grpc::CallbackServerContext* ctx, const RpcEnv& env,
                                     std::string_view method,
                                     std::function<absl::Status(const CallContext&)> work);

// Reply: ends an asynchronous call; called exactly once, from any thread.
using Reply = std::function<void(const absl::Status&)>;

// ServeUnaryAsync: like ServeUnary, for handlers that never block: `start` runs on the gRPC
// thread right after authentication, starts non-blocking work (e.g. a PgPipeline statement),
// and the work calls `reply` when the response is filled in.
grpc::ServerUnaryReactor* ServeUnaryAsync(grpc::CallbackServerContext* ctx, const RpcEnv& env,
                                          std::string_view method,
                                          std::function<void(const CallContext&, Reply)> start);

// RequireService: PERMISSION_DENIED unless the caller is a SERVICE principal (for internal RPCs).
[[nodiscard]] absl::Status RequireService(const CallContext& call, std::string_view method);

// LogRpc: the access-log line of one call.
void LogRpc(const RpcEnv& env, std::string_view method, const absl::Status& status,
            absl::Time start, std::string_view principal);

}  // namespace qai::common
