#include "common/status.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace qai::common {
namespace {

constexpr char kBadRequestUrl[] = "type.googleapis.com/google.rpc.BadRequest";
constexpr char kRetryInfoUrl[] = "type.googleapis.com/google.rpc.RetryInfo";
constexpr char kQuotaFailureUrl[] = "type.googleapis.com/google.rpc.QuotaFailure";

google::rpc::Status RichStatus(const grpc::Status& status) {
  google::rpc::Status rich;
  EXPECT_FALSE(status.error_details().empty());
  EXPECT_TRUE(rich.ParseFromString(status.error_details()));
  return rich;
}

TEST(StatusTest, InvalidFieldsNamesEveryField) {
  absl::Status s = InvalidFields({{"name", "must not be empty"},
                                  {"page_size", "must not be negative"},
                                  {"project.display_name", "is too long"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  const std::string message(s.message());
  for (const char* part : {"name", "must not be empty", "page_size", "must not be negative",
                           "project.display_name", "is too long"}) {
    EXPECT_NE(message.find(part), std::string::npos) << part << " not in " << message;
  }
  std::vector<FieldViolation> v = GetFieldViolations(s);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].field, "name");
  EXPECT_EQ(v[0].description, "must not be empty");
  EXPECT_EQ(v[1].field, "page_size");
  EXPECT_EQ(v[2].field, "project.display_name");
  EXPECT_EQ(v[2].description, "is too long");
}

TEST(StatusTest, InvalidFieldSingle) {
  absl::Status s = InvalidField("parent", "is required");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  auto v = GetFieldViolations(s);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].field, "parent");
  EXPECT_EQ(v[0].description, "is required");
}

TEST(StatusTest, FieldViolationsCollector) {
  FieldViolations bad;
  EXPECT_TRUE(bad.empty());
  EXPECT_TRUE(bad.ToStatus().ok());
  bad.Add("a", "x");
  bad.Add("b", "y");
  EXPECT_FALSE(bad.empty());
  absl::Status s = bad.ToStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(GetFieldViolations(s).size(), 2u);
}

TEST(StatusTest, NoViolationsOnPlainStatus) {
  EXPECT_TRUE(GetFieldViolations(absl::InvalidArgumentError("plain")).empty());
  EXPECT_TRUE(GetFieldViolations(absl::OkStatus()).empty());
}

TEST(StatusTest, ToGrpcStatusCarriesBadRequest) {
  absl::Status s =
      InvalidFields({{"name", "must not be empty"}, {"page_size", "must not be negative"}});
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(g.error_message(), std::string(s.message()));
  google::rpc::Status rich = RichStatus(g);
  EXPECT_EQ(rich.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(rich.message(), g.error_message());
  ASSERT_EQ(rich.details_size(), 1);
  EXPECT_EQ(rich.details(0).type_url(), kBadRequestUrl);
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(rich.details(0).UnpackTo(&bad_request));
  ASSERT_EQ(bad_request.field_violations_size(), 2);
  EXPECT_EQ(bad_request.field_violations(0).field(), "name");
  EXPECT_EQ(bad_request.field_violations(1).field(), "page_size");
  EXPECT_EQ(bad_request.field_violations(1).description(), "must not be negative");
}

TEST(StatusTest, FromGrpcStatusRestoresViolations) {
  absl::Status original = InvalidFields({{"name", "must not be empty"}, {"etag", "is stale"}});
  absl::Status back = FromGrpcStatus(ToGrpcStatus(original));
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(back.message(), original.message());
  auto v = GetFieldViolations(back);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].field, "name");
  EXPECT_EQ(v[0].description, "must not be empty");
  EXPECT_EQ(v[1].field, "etag");
  EXPECT_EQ(v[1].description, "is stale");
}

TEST(StatusTest, CodesMapOneToOne) {
  for (int code = 1; code <= 16; ++code) {
    absl::Status s(static_cast<absl::StatusCode>(code), "message");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(static_cast<int>(FromGrpcStatus(g).code()), code);
  }
}

TEST(StatusTest, OkMapsToOk) {
  grpc::Status g = ToGrpcStatus(absl::OkStatus());
  EXPECT_TRUE(g.ok());
  EXPECT_TRUE(g.error_message().empty());
  EXPECT_TRUE(g.error_details().empty());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(StatusTest, InternalAndUnknownMessagesAreReplaced) {
  const std::string secret = "relation projects.x does not exist at db-7.internal";
  for (absl::Status s : {absl::InternalError(secret), absl::UnknownError(secret)}) {
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), static_cast<int>(s.code()));
    EXPECT_EQ(g.error_message(), "internal error");
    EXPECT_EQ(g.error_message().find("relation"), std::string::npos);
    EXPECT_EQ(g.error_details().find("relation"), std::string::npos);
  }
  // Other codes keep their text.
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("project p not found")).error_message(),
            "project p not found");
}

TEST(StatusTest, InternalWithPayloadDoesNotLeakInRichStatus) {
  absl::Status s = WithRetryDelay(absl::InternalError("SELECT secret FROM t"), absl::Seconds(1));
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_message(), "internal error");
  EXPECT_EQ(g.error_details().find("SELECT"), std::string::npos);
  EXPECT_EQ(RichStatus(g).message(), "internal error");
}

TEST(StatusTest, UnrelatedPayloadsAreNotSent) {
  absl::Status s = absl::UnavailableError("down");
  s.SetPayload("type.googleapis.com/private.Thing", absl::Cord("private"));
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_details().find("private"), std::string::npos);
}

TEST(StatusTest, RetryInfoSurvivesRoundTrip) {
  absl::Status s =
      WithRetryDelay(absl::UnavailableError("database busy"), absl::Milliseconds(1500));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::UNAVAILABLE);
  google::rpc::Status rich = RichStatus(g);
  ASSERT_EQ(rich.details_size(), 1);
  EXPECT_EQ(rich.details(0).type_url(), kRetryInfoUrl);
  google::rpc::RetryInfo info;
  ASSERT_TRUE(rich.details(0).UnpackTo(&info));
  EXPECT_EQ(info.retry_delay().seconds(), 1);
  EXPECT_EQ(info.retry_delay().nanos(), 500'000'000);

  absl::Status back = FromGrpcStatus(g);
  EXPECT_EQ(back.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetRetryDelay(back), absl::Milliseconds(1500));
  EXPECT_EQ(GetRetryDelay(absl::UnavailableError("no delay")), std::nullopt);
  auto payload = back.GetPayload(kRetryInfoUrl);
  ASSERT_TRUE(payload.has_value());
  google::rpc::RetryInfo back_info;
  ASSERT_TRUE(back_info.ParseFromString(std::string(*payload)));
  EXPECT_EQ(back_info.retry_delay().seconds(), 1);
  EXPECT_EQ(back_info.retry_delay().nanos(), 500'000'000);
}

TEST(StatusTest, BadRequestAndRetryInfoTogether) {
  absl::Status s = WithRetryDelay(InvalidField("x", "bad"), absl::Seconds(3));
  absl::Status back = FromGrpcStatus(ToGrpcStatus(s));
  EXPECT_EQ(GetFieldViolations(back).size(), 1u);
  EXPECT_TRUE(back.GetPayload(kRetryInfoUrl).has_value());
}

TEST(StatusTest, QuotaFailureSurvivesRoundTrip) {
  absl::Status s = QuotaExceeded(
      "too many runs",
      {{"project:p1", "at most 5 per project"}, {"principal:alice", "at most 20 per principal"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "too many runs");
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(g.error_message(), "too many runs");
  google::rpc::Status rich = RichStatus(g);
  ASSERT_EQ(rich.details_size(), 1);
  EXPECT_EQ(rich.details(0).type_url(), kQuotaFailureUrl);
  google::rpc::QuotaFailure failure;
  ASSERT_TRUE(rich.details(0).UnpackTo(&failure));
  ASSERT_EQ(failure.violations_size(), 2);
  EXPECT_EQ(failure.violations(0).subject(), "project:p1");
  EXPECT_EQ(failure.violations(1).description(), "at most 20 per principal");

  absl::Status back = FromGrpcStatus(g);
  EXPECT_EQ(back.code(), absl::StatusCode::kResourceExhausted);
  std::vector<QuotaViolation> v = GetQuotaViolations(back);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].subject, "project:p1");
  EXPECT_EQ(v[0].description, "at most 5 per project");
  EXPECT_EQ(v[1].subject, "principal:alice");
  // And a second round trip (a service passing a downstream refusal on) keeps it.
  EXPECT_EQ(GetQuotaViolations(FromGrpcStatus(ToGrpcStatus(back))).size(), 2u);
  EXPECT_TRUE(GetQuotaViolations(absl::ResourceExhaustedError("plain")).empty());
  EXPECT_TRUE(GetFieldViolations(back).empty());
}

TEST(StatusTest, FromGrpcStatusToleratesGarbageDetails) {
  grpc::Status g(grpc::StatusCode::UNAVAILABLE, "down", std::string("\xff\xff\xff garbage", 11));
  absl::Status s = FromGrpcStatus(g);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "down");
  EXPECT_TRUE(GetFieldViolations(s).empty());
}

TEST(StatusTest, IsRetryable) {
  EXPECT_TRUE(IsRetryable(absl::UnavailableError("")));
  EXPECT_TRUE(IsRetryable(absl::DeadlineExceededError("")));
  EXPECT_TRUE(IsRetryable(absl::ResourceExhaustedError("")));
  EXPECT_TRUE(IsRetryable(absl::AbortedError("")));
  EXPECT_FALSE(IsRetryable(absl::OkStatus()));
  EXPECT_FALSE(IsRetryable(absl::InvalidArgumentError("")));
  EXPECT_FALSE(IsRetryable(absl::NotFoundError("")));
  EXPECT_FALSE(IsRetryable(absl::InternalError("")));
  EXPECT_FALSE(IsRetryable(absl::PermissionDeniedError("")));
  EXPECT_FALSE(IsRetryable(absl::AlreadyExistsError("")));
  EXPECT_FALSE(IsRetryable(absl::FailedPreconditionError("")));
}

}  // namespace
}  // namespace qai::common
