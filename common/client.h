#pragma once
// Calls from one QAI service to another.
//
// Channels balance calls over every address a target resolves to (`dns:///name:port` with
// round_robin), since one HTTP/2 connection would pin every call to one replica. Each call
// carries this service's x-api-key, the current x-request-id, and a deadline.

#include <functional>
#include <memory>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/grpc_limits.h"
#include "common/outbox.h"
#include "common/status.h"
#include "grpcpp/grpcpp.h"

namespace qai::common {

// MakeChannel: a channel to target ("host:port" or "dns:///host:port"), with the message size
// cap and keepalive of `limits` (the same as this service's server).
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const GrpcLimits& limits = {});

// ServiceCallContext: metadata and deadline for an outgoing service-to-service call.
void PrepareServiceCall(grpc::ClientContext& ctx, const std::string& api_key,
                        const std::string& request_id, absl::Duration timeout);

// UnaryDeliverer: an outbox deliverer that parses a row's payload as Request, lets `adjust`
// complete it (e.g. set its request id to the row's id), and calls `method` on `stub` as this
// service (x-api-key), carrying the row's trace id as x-request-id. `after`, when given, sees
// the receiver's answer; an error from it makes the row be delivered again later.
//
//   relay_deliverers["messages.CreateMessage"] = UnaryDeliverer(
//       stub, &MessageService::Stub::CreateMessage, api_key,
//       [](const OutboxRow& row, CreateMessageRequest& req) { req.set_request_id(row.id); });
template <typename Stub, typename Request, typename Response>
OutboxRelay::Deliverer UnaryDeliverer(
    std::shared_ptr<Stub> stub,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
    std::string api_key,
    std::type_identity_t<std::function<void(const OutboxRow&, Request&)>> adjust = nullptr,
    std::type_identity_t<std::function<absl::Status(const Request&, const Response&)>> after =
        nullptr,
    absl::Duration timeout = absl::Seconds(10)) {
  return [=](const OutboxRow& row) -> absl::Status {
    Request request;
    if (!request.ParseFromString(row.payload)) {
      return absl::InternalError(absl::StrCat("outbox row ", row.id, " has an unreadable payload"));
    }
    if (adjust) adjust(row, request);
    grpc::ClientContext ctx;
    PrepareServiceCall(ctx, api_key, row.trace_request_id, timeout);
    Response response;
    absl::Status status = FromGrpcStatus(((*stub).*method)(&ctx, request, &response));
    if (status.ok() && after) status = after(request, response);
    return status;
  };
}

}  // namespace qai::common
