#pragma once
// GrpcLimits: the transport settings servers and client channels share: the largest message
// either side accepts, HTTP/2 keepalive, and the connection age after which a server closes
// a connection so that its client reconnects (and rebalances over new replicas).
//
//   GrpcLimits limits = GrpcLimitsFrom(config);   // the options GrpcLimitsOptions() declares
//   Server::Start({..., .grpc = limits});
//   MakeChannel(target, limits);

#include <vector>

#include "absl/time/time.h"
#include "common/config.h"

namespace qai::common {

struct GrpcLimits {
  // Larger than the largest legal request (a RecordAgentResult fragment is up to 3 MiB of
  // files plus its text); a bigger one is refused by gRPC itself with RESOURCE_EXHAUSTED.
  int max_message_bytes = 8 << 20;
  // A ping after this long without traffic, and the connection is dropped when its answer
  // takes longer than keepalive_timeout: dead peers behind NATs and load balancers show.
  absl::Duration keepalive_time = absl::Seconds(60);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Servers only: connections close after max_connection_age, calls in flight get the grace.
  absl::Duration max_connection_age = absl::Minutes(5);
  absl::Duration max_connection_age_grace = absl::Seconds(30);
};

// GrpcLimitsOptions: grpc-max-message-bytes, grpc-keepalive-time, grpc-keepalive-timeout,
// grpc-max-connection-age, grpc-max-connection-age-grace, defaulting to GrpcLimits{}.
std::vector<Option> GrpcLimitsOptions();
// GrpcLimitsFrom: those options' values.
GrpcLimits GrpcLimitsFrom(const Config& config);

}  // namespace qai::common
