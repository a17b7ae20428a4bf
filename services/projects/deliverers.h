#pragma once
// The projects outbox's topics and how each is delivered: over gRPC to the messages and
// orchestrator services, as a SERVICE principal, with the outbox row id as request id.

#include <map>
#include <memory>
#include <string>

#include "common/grpc_limits.h"
#include "common/outbox.h"
#include "grpcpp/grpcpp.h"

namespace qai::projects {

struct DownstreamTargets {
  std::string messages_addr;
  std::string orchestrator_addr;
  std::string api_key;
  common::GrpcLimits limits;  // of the channels to them
};

// MakeDeliverers: one deliverer per topic the projects store writes.
std::map<std::string, common::OutboxRelay::Deliverer> MakeDeliverers(
    const DownstreamTargets& targets);

}  // namespace qai::projects
