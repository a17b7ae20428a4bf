#include "tools/qai/output.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace qai::cli {

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

std::string FormatRpcError(const grpc::Status& status) {
  std::string out = absl::StrCat("error: ", StatusCodeName(status.error_code()));
  if (!status.error_message().empty()) absl::StrAppend(&out, ": ", status.error_message());
  out += "\n";
  google::rpc::Status rich;
  if (status.error_details().empty() || !rich.ParseFromString(status.error_details())) return out;
  for (const google::protobuf::Any& detail : rich.details()) {
    if (google::rpc::BadRequest bad_request; detail.UnpackTo(&bad_request)) {
      for (const auto& violation : bad_request.field_violations()) {
        absl::StrAppend(&out, "  ", violation.field(), ": ", violation.description(), "\n");
      }
    } else if (google::rpc::QuotaFailure quota; detail.UnpackTo(&quota)) {
      for (const auto& violation : quota.violations()) {
        absl::StrAppend(&out, "  ", violation.subject(), ": ", violation.description(), "\n");
      }
    } else if (google::rpc::RetryInfo retry; detail.UnpackTo(&retry)) {
      absl::StrAppend(&out, "  retry after: ",
                      google::protobuf::util::TimeUtil::ToString(retry.retry_delay()), "\n");
    }
  }
  return out;
}

std::string FormatMutationError(const grpc::Status& status, const std::string& request_id) {
  std::string out = FormatRpcError(status);
  switch (status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
      absl::StrAppend(&out, "request_id: ", request_id, " (repeat with --request-id ", request_id,
                      ": it takes effect at most once)\n");
      break;
    default:
      break;
  }
  return out;
}

std::string FormatTimestamp(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return "";
  return google::protobuf::util::TimeUtil::ToString(time);
}

absl::Time ToTime(const google::protobuf::Timestamp& time) {
  return absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
}

absl::Duration ToDuration(const google::protobuf::Duration& duration) {
  return absl::Seconds(duration.seconds()) + absl::Nanoseconds(duration.nanos());
}

std::string FormatElapsed(absl::Duration d) {
  return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(100)));
}

std::string ToJsonLine(const google::protobuf::Message& message) {
  std::string json;
  // Fails only for an Any of a type unknown here, which no QAI response contains.
  if (auto status = google::protobuf::util::MessageToJsonString(message, &json); !status.ok()) {
    json = absl::StrCat(R"({"error":"cannot print )", message.GetTypeName(), R"( as JSON"})");
  }
  return json + "\n";
}

}  // namespace qai::cli
