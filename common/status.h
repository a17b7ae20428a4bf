#pragma once
// Errors: absl::Status inside a service, grpc::Status at its edge, mapped in one place.
//
// Validation collects every bad field and returns one INVALID_ARGUMENT that names them all,
// both in the message and in a google.rpc.BadRequest detail that clients can read:
//
//   qai::common::FieldViolations bad;
//   if (req.name().empty()) bad.Add("name", "must not be empty");
//   QAI_RETURN_IF_ERROR(bad.ToStatus());
//   ...
//   reactor->Finish(qai::common::ToGrpcStatus(status));
//
// INTERNAL and UNKNOWN errors never reach a caller with their text: it is logged, and the
// caller sees a generic message, so no SQL, stack or host name leaks.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "grpcpp/support/status.h"

namespace qai::common {

// FieldViolation: one bad request field ("page_size", "project.display_name") and why.
struct FieldViolation {
  std::string field;
  std::string description;
};

// FieldViolations: collects violations; ToStatus() is OK when there are none.
class FieldViolations {
 public:
  void Add(std::string field, std::string description);
  bool empty() const { return violations_.empty(); }
  [[nodiscard]] absl::Status ToStatus() const;

 private:
  std::vector<FieldViolation> violations_;
};

// InvalidFields: an INVALID_ARGUMENT status carrying the violations as a BadRequest payload.
[[nodiscard]] absl::Status InvalidFields(const std::vector<FieldViolation>& violations);
// InvalidField: the same for one field.
[[nodiscard]] absl::Status InvalidField(std::string field, std::string description);

// GetFieldViolations: the violations a status carries (empty if none).
std::vector<FieldViolation> GetFieldViolations(const absl::Status& status);

// WithRetryDelay: attaches a google.rpc.RetryInfo detail (for RESOURCE_EXHAUSTED/UNAVAILABLE).
[[nodiscard]] absl::Status WithRetryDelay(absl::Status status, absl::Duration delay);
// GetRetryDelay: the delay WithRetryDelay attached, if any.
std::optional<absl::Duration> GetRetryDelay(const absl::Status& status);

// QuotaViolation: one quota a request ran into: its subject ("project:<id>", "principal:<id>")
// and what the quota is.
struct QuotaViolation {
  std::string subject;
  std::string description;
};

// QuotaExceeded: a RESOURCE_EXHAUSTED status with `message`, carrying the violations as a
// google.rpc.QuotaFailure payload.
[[nodiscard]] absl::Status QuotaExceeded(std::string_view message,
                                         const std::vector<QuotaViolation>& violations);

// GetQuotaViolations: the quota violations a status carries (empty if none).
std::vector<QuotaViolation> GetQuotaViolations(const absl::Status& status);

// ToGrpcStatus: the one mapping to the wire. Codes map one to one; details travel as a
// serialized google.rpc.Status in error_details; INTERNAL/UNKNOWN messages are replaced.
grpc::Status ToGrpcStatus(const absl::Status& status);

// FromGrpcStatus: the reverse, for a client's view of a downstream call.
absl::Status FromGrpcStatus(const grpc::Status& status);

// IsRetryable: whether a failed downstream call may be repeated (UNAVAILABLE and friends).
bool IsRetryable(const absl::Status& status);

}  // namespace qai::common
