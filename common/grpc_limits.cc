#include "common/grpc_limits.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace qai::common {
namespace {

std::string Format(absl::Duration d) { return absl::FormatDuration(d); }

// AtLeast: a duration validator with a lower bound.
std::function<std::string(std::string_view)> AtLeast(absl::Duration min) {
  return [min](std::string_view v) -> std::string {
    if (std::string bad = IsDuration(v); !bad.empty()) return bad;
    absl::Duration d;
    if (!absl::ParseDuration(std::string(v), &d) || d < min)
      return absl::StrCat("must be at least ", Format(min));
    return "";
  };
}

}  // namespace

std::vector<Option> GrpcLimitsOptions() {
  const GrpcLimits d;
  return {
      {.name = "grpc-max-message-bytes",
       .default_value = std::to_string(d.max_message_bytes),
       .help = "largest gRPC message received or sent (bigger ones: RESOURCE_EXHAUSTED)",
       .validate = IsIntIn(64 << 10, 1 << 30)},
      // gRPC servers refuse pings more often than every 10 s (see server.cc).
      {.name = "grpc-keepalive-time",
       .default_value = Format(d.keepalive_time),
       .help = "HTTP/2 ping after this long without traffic",
       .validate = AtLeast(absl::Seconds(10))},
      {.name = "grpc-keepalive-timeout",
       .default_value = Format(d.keepalive_timeout),
       .help = "a connection whose ping is unanswered this long is closed",
       .validate = AtLeast(absl::Seconds(1))},
      {.name = "grpc-max-connection-age",
       .default_value = Format(d.max_connection_age),
       .help = "servers close a connection this old, so clients rebalance",
       .validate = AtLeast(absl::Seconds(1))},
      {.name = "grpc-max-connection-age-grace",
       .default_value = Format(d.max_connection_age_grace),
       .help = "calls in flight on a closing connection may finish this long",
       .validate = AtLeast(absl::ZeroDuration())},
  };
}

GrpcLimits GrpcLimitsFrom(const Config& config) {
  return {.max_message_bytes = static_cast<int>(config.GetInt("grpc-max-message-bytes")),
          .keepalive_time = config.GetDuration("grpc-keepalive-time"),
          .keepalive_timeout = config.GetDuration("grpc-keepalive-timeout"),
          .max_connection_age = config.GetDuration("grpc-max-connection-age"),
          .max_connection_age_grace = config.GetDuration("grpc-max-connection-age-grace")};
}

}  // namespace qai::common
