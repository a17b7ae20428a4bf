#pragma once
// GrpcServerMetrics: the standard gRPC server metrics of every call a server handles, unary
// and streaming alike, through a server interceptor (the one place every RPC passes through,
// health checks and reflection included):
//
//   grpc_server_started_total{grpc_type, grpc_service, grpc_method}
//   grpc_server_handled_total{grpc_type, grpc_service, grpc_method, grpc_code}
//   grpc_server_handling_seconds{grpc_type, grpc_service, grpc_method}  (histogram)
//
// The methods are those of the services named at construction, looked up in the generated
// descriptor pool; a call to any other path counts under grpc_service="unknown",
// grpc_method="unknown", so callers cannot make new series. grpc_code is the status code's
// canonical name (OK, INVALID_ARGUMENT, ...); a call the client cancelled (or that ends
// without a status) counts as CANCELLED, whatever its handler answered. Every method starts with
// zero calls, so rates work from the first scrape.
//
//   GrpcServerMetrics grpc_metrics(registry, {"qai.projects.v1.ProjectService", ...});
//   builder.experimental().SetInterceptorCreators(grpc_metrics.InterceptorFactories());

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace qai::common {

class GrpcServerMetrics {
 public:
  // One method's instruments. handled[code] is created on its first use.
  struct Method {
    prometheus::Labels labels;
    prometheus::Counter* started = nullptr;
    prometheus::Histogram* handling = nullptr;
    std::array<std::atomic<prometheus::Counter*>, 17> handled{};
  };

  // `services`: full proto service names. The registry must outlive this object, and this
  // object the server whose interceptors it made.
  GrpcServerMetrics(prometheus::Registry& registry, const std::vector<std::string>& services);

  // InterceptorFactories: what ServerBuilder::experimental().SetInterceptorCreators takes.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
  InterceptorFactories();

  // MethodFor: the instruments of a "/package.Service/Method" path (the "unknown" ones for
  // paths of other services).
  Method& MethodFor(std::string_view path);
  // Handled: one call of `method` ended with `code` after `seconds`.
  void Handled(Method& method, grpc::StatusCode code, double seconds);

 private:
  std::unique_ptr<Method> Make(prometheus::Labels labels);

  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_;
  absl::flat_hash_map<std::string, std::unique_ptr<Method>>
      methods_;  // by path; fixed after construction
  std::unique_ptr<Method> unknown_;
};

}  // namespace qai::common
