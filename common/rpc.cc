#include "common/rpc.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace qai::common {
namespace {

std::optional<std::string_view> Header(const grpc::ServerContextBase& ctx, std::string_view key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return std::nullopt;
  return std::string_view(it->second.data(), it->second.size());
}

}  // namespace

std::string RequestIdFrom(const grpc::ServerContextBase& ctx) {
  if (auto id = Header(ctx, "x-request-id"); id && !id->empty() && id->size() <= 128) {
    bool printable = true;
    for (char c : *id) printable = printable && c > 0x20 && c < 0x7f;
    if (printable) return std::string(*id);
  }
  return NewUuid();
}

// MayCall: whether `principal`, if a service, is one of the method's callers.
absl::Status MayCall(const RpcEnv& env, const Principal& principal, std::string_view method) {
  if (principal.role != Role::kService) return absl::OkStatus();
  if (env.callers != nullptr) {
    auto it = env.callers->find(method);
    if (it != env.callers->end() &&
        std::find(it->second.begin(), it->second.end(), principal.service) != it->second.end()) {
      return absl::OkStatus();
    }
  }
  return absl::PermissionDeniedError(absl::StrCat(ToAbsl(method), " may not be called with the ",
                                                  principal.service, " service's key"));
}

std::string CallSource(const grpc::ServerContextBase& ctx) {
  if (std::optional<std::string_view> xff = Header(ctx, "x-forwarded-for"); xff && !xff->empty()) {
    const size_t comma = xff->rfind(',');
    return std::string(absl::StripAsciiWhitespace(
        ToAbsl(comma == std::string_view::npos ? *xff : xff->substr(comma + 1))));
  }
  // "ipv4:10.0.0.7:51234", "ipv6:[::1]:51234", "unix:/path".
  std::string peer = ctx.peer();
  const size_t colon = peer.rfind(':');
  if (absl::StartsWith(peer, "ipv") && colon != std::string::npos && colon > 5) peer.resize(colon);
  return peer;
}

// Authenticate: AuthenticateCall, throttled per source when env.auth_failures is set.
absl::StatusOr<Principal> Authenticate(const RpcEnv& env, const grpc::ServerContextBase& ctx) {
  if (env.auth_failures == nullptr) return AuthenticateCall(*env.auth, ctx.client_metadata());
  const std::string source = CallSource(ctx);
  if (const absl::Duration wait = env.auth_failures->Wait(source); wait > absl::ZeroDuration()) {
    return WithRetryDelay(
        absl::ResourceExhaustedError(absl::StrCat("too many failed authentications from ", source,
                                                  "; retry in ", absl::FormatDuration(wait))),
        wait);
  }
  absl::StatusOr<Principal> principal = AuthenticateCall(*env.auth, ctx.client_metadata());
  if (principal.status().code() == absl::StatusCode::kUnauthenticated) {
    (void)env.auth_failures->TryTake(source);
  }
  return principal;
}

absl::StatusOr<Principal> AdmitCall(const RpcEnv& env, const grpc::ServerContextBase& ctx,
                                    std::string_view method) {
  absl::StatusOr<Principal> principal = Authenticate(env, ctx);
  if (!principal.ok()) return principal;
  QAI_RETURN_IF_ERROR(MayCall(env, *principal, method));
  if (env.limiter == nullptr) return principal;
  QAI_RETURN_IF_ERROR(env.limiter->Acquire(*principal));
  return principal;
}

absl::Status RequireService(const CallContext& call, std::string_view method) {
  if (call.principal.role == Role::kService) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(ToAbsl(method), " is for services only"));
}

void LogRpc(const RpcEnv& env, std::string_view method, const absl::Status& status,
            absl::Time start, std::string_view principal) {
  const bool server_fault = status.code() == absl::StatusCode::kInternal ||
                            status.code() == absl::StatusCode::kUnknown ||
                            status.code() == absl::StatusCode::kUnavailable;
  const LogLevel level = server_fault ? LogLevel::kWarn : LogLevel::kInfo;
  if (!LogEnabled(level)) return;
  const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  nlohmann::json fields = {{"method", absl::StrCat("/", env.service, "/", ToAbsl(method))},
                           {"code", absl::StatusCodeToString(status.code())},
                           {"principal", std::string(principal)},
                           {"duration_ms", ms}};
  if (!status.ok()) fields["error"] = std::string(status.message());
  Log(level, "rpc", fields);
}

CallContext BeginCall(grpc::ServerContextBase& ctx) {
  CallContext call;
  call.request_id = RequestIdFrom(ctx);
  ctx.AddInitialMetadata("x-request-id", call.request_id);
  const std::chrono::system_clock::time_point deadline = ctx.deadline();
  if (deadline != std::chrono::system_clock::time_point::max())
    call.deadline = absl::FromChrono(deadline);
  if (auto authz = Header(ctx, "authorization")) call.authorization = std::string(*authz);
  return call;
}

grpc::ServerUnaryReactor* ServeUnaryAsync(grpc::CallbackServerContext* ctx, const RpcEnv& env,
                                          std::string_view method,
                                          std::function<void(const CallContext&, Reply)> start) {
  const absl::Time start_time = absl::Now();
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto call = std::make_shared<CallContext>(BeginCall(*ctx));

  // env outlives every call (it belongs to the service object), so it is held by pointer.
  Reply reply = [reactor, env = &env, method = std::string(method), start_time,
                 call](const absl::Status& s) {
    {
      RequestScope scope(call->request_id);
      LogRpc(*env, method, s, start_time, call->principal.id);
    }
    reactor->Finish(ToGrpcStatus(s));
  };

  absl::StatusOr<Principal> principal = AdmitCall(env, *ctx, method);
  if (!principal.ok()) {
    reply(principal.status());
    return reactor;
  }
  call->principal = *std::move(principal);
  RequestScope scope(call->request_id);
  start(*call, std::move(reply));
  return reactor;
}

grpc::ServerUnaryReactor* ServeUnary(grpc::CallbackServerContext* ctx, const RpcEnv& env,
                                     std::string_view method,
                                     std::function<absl::Status(const CallContext&)> work) {
  return ServeUnaryAsync(
      ctx, env, method,
      [ctx, executor = env.executor, work = std::move(work)](const CallContext& call, Reply reply) {
        // Handlers that block run on the executor, never on gRPC's threads.
        auto job = [ctx, call, work, reply] {
          absl::Status s;
          if (ctx->IsCancelled()) {
            s = absl::CancelledError("call cancelled before it was served");
          } else if (absl::Now() >= call.deadline) {
            s = absl::DeadlineExceededError("deadline passed before the call was served");
          } else {
            RequestScope scope(call.request_id);
            s = work(call);
          }
          reply(s);
        };
        if (!executor->TrySubmit(std::move(job))) {
          reply(WithRetryDelay(absl::ResourceExhaustedError("server busy, retry later"),
                               absl::Milliseconds(100)));
        }
      });
}

}  // namespace qai::common
