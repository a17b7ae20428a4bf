#include "common/client.h"

namespace qai::common {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, const GrpcLimits& limits) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(limits.keepalive_time)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              static_cast<int>(absl::ToInt64Milliseconds(limits.keepalive_timeout)));
  // Idle channels keep their connections checked too (the servers permit it), so the first call
  // after a quiet spell does not find a dead one.
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetMaxReceiveMessageSize(limits.max_message_bytes);
  args.SetMaxSendMessageSize(limits.max_message_bytes);
  // gRPC backs off reconnecting to an unreachable target up to 2 minutes by default, failing
  // calls at once meanwhile; a dependency that comes back must be used again within seconds.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

void PrepareServiceCall(grpc::ClientContext& ctx, const std::string& api_key,
                        const std::string& request_id, absl::Duration timeout) {
  if (!api_key.empty()) ctx.AddMetadata("x-api-key", api_key);
  if (!request_id.empty()) ctx.AddMetadata("x-request-id", request_id);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace qai::common
