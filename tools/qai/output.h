#pragma once
// What `qai` prints: RPC errors with their rich details, timestamps, and protobuf JSON lines.
// Resource-specific layouts live beside their commands (e.g. projects_commands.h).
//
//   grpc::Status status = stub->GetProject(...);
//   if (!status.ok()) {
//     err << FormatRpcError(status);  // "error: NOT_FOUND: project not found\n"
//     return kExitRpcError;
//   }
//   out << ToJsonLine(project);

#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/support/status.h"

namespace qai::cli {

// StatusCodeName: the canonical name of a code, e.g. "INVALID_ARGUMENT".
const char* StatusCodeName(grpc::StatusCode code);

// FormatRpcError: "error: CODE_NAME: message\n", then one "  field: description\n" line per
// field violation of a google.rpc.BadRequest detail and "  retry after: 2s\n" for a
// google.rpc.RetryInfo detail. Details that are absent, unknown or unparsable are skipped: the
// code and message alone still describe the failure.
std::string FormatRpcError(const grpc::Status& status);

// FormatMutationError: FormatRpcError for a failed mutation sent with `request_id`. When the
// call may have taken effect anyway, or may succeed if repeated (DEADLINE_EXCEEDED, UNAVAILABLE,
// RESOURCE_EXHAUSTED, CANCELLED, UNKNOWN, INTERNAL), it adds the line
// "request_id: ID (repeat with --request-id ID: it takes effect at most once)\n".
std::string FormatMutationError(const grpc::Status& status, const std::string& request_id);

// FormatTimestamp: RFC 3339 in UTC ("2026-01-31T09:15:00.250Z"); "" for an unset time.
std::string FormatTimestamp(const google::protobuf::Timestamp& time);

// ToTime / ToDuration: the protobuf well-known types as absl's.
absl::Time ToTime(const google::protobuf::Timestamp& time);
absl::Duration ToDuration(const google::protobuf::Duration& duration);

// FormatElapsed: a duration to a tenth of a second, as absl writes it ("8.4s", "25m3.1s", "2h",
// "0").
std::string FormatElapsed(absl::Duration d);

// ToJsonLine: `message` as single-line protobuf JSON (lowerCamelCase names, unset fields
// omitted), followed by a newline.
std::string ToJsonLine(const google::protobuf::Message& message);

}  // namespace qai::cli
