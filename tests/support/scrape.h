#pragma once
// Reading a service's Prometheus metrics in tests: fetch /metrics over HTTP and pick samples
// out of the text format.
//
//   absl::StatusOr<std::string> text = ScrapeMetrics(port);
//   std::optional<double> ok = SampleValue(*text, "grpc_server_handled_total",
//                                          {{"grpc_method", "GetProject"}, ...every label...});

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace qai::testing {

// ScrapeMetrics: the body of GET http://127.0.0.1:<port>/metrics.
[[nodiscard]] absl::StatusOr<std::string> ScrapeMetrics(int port);

// SampleValue: the value of the sample `name` whose labels are exactly `labels`, or nullopt
// when there is none.
std::optional<double> SampleValue(std::string_view text, std::string_view name,
                                  const std::map<std::string, std::string>& labels = {});

// SampleLabels: the label sets of every sample named `name`, in order.
std::vector<std::map<std::string, std::string>> SampleLabels(std::string_view text,
                                                             std::string_view name);

}  // namespace qai::testing
