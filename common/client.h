#pragma once
// Calls from one QAI service to another.
//
// Channels balance calls over every address a target resolves to (`dns:///name:port` with
// round_robin), since one HTTP/2 connection would pin every call to one replica. Each call
// carries this service's x-api-key, the current x-request-id, and a deadline.

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace qai::common {

// MakeChannel: a channel to target ("host:port" or "dns:///host:port").
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

// ServiceCallContext: metadata and deadline for an outgoing service-to-service call.
void PrepareServiceCall(grpc::ClientContext& ctx, const std::string& api_key, const std::string& request_id,
                        absl::Duration timeout);

}  // namespace qai::common
