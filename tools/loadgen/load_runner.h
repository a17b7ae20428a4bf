#pragma once
// RunLoad: a closed loop of concurrent unary calls against one server, for benchmarks.
//
// Each caller keeps exactly one call in flight and issues the next as soon as the previous one
// finishes, so the offered load adapts to the server's speed (closed loop) and the rate shows
// how much the server can do at that concurrency. Calls use gRPC's callback API: completions
// run on gRPC's own threads and start the next call there, so 32 callers need no 32 threads.
// Callers are spread round-robin over the given channels (each its own HTTP/2 connection).
//
//   std::vector<std::shared_ptr<grpc::Channel>> channels = ...;
//   qai::loadgen::LoadResult r = qai::loadgen::RunLoad(
//       {.method = qai::loadgen::Method::kHealth, .callers = 8}, channels);
//   double p99_us = r.latencies.ValueAtQuantile(0.99);

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "tools/loadgen/histogram.h"

namespace qai::loadgen {

// Method: the RPC each caller repeats.
enum class Method {
  kHealth,         // grpc.health.v1.Health/Check: transport, auth-free, no database
  kGetProject,     // qai.projects.v1.ProjectService/GetProject of one existing project
  kCreateProject,  // qai.projects.v1.ProjectService/CreateProject, a new project per call
  kListVersions,   // qai.orchestrator.v1.AgentOrchestrator/ListVersions, the first page of one
                   // project
};

// ParseMethod / MethodName: "health", "get-project", "create-project", "list-versions".
[[nodiscard]] std::optional<Method> ParseMethod(std::string_view name);
[[nodiscard]] std::string_view MethodName(Method method);

// LoadOptions: what to run. `token`, when set, goes out as `authorization: Bearer <token>` on
// every call; `project_id` is required for kGetProject and kListVersions.
struct LoadOptions {
  Method method = Method::kHealth;
  int callers = 1;
  std::string token;
  std::string project_id;
  absl::Duration warmup = absl::Seconds(2);
  absl::Duration duration = absl::Seconds(10);
  // Per-call deadline, so a stuck call ends as an error instead of stalling its caller.
  absl::Duration timeout = absl::Seconds(5);
  // How many failed calls have their status printed to stderr (the rest are only counted).
  int errors_to_print = 5;
};

// LoadResult: what happened inside the measured window (after the warm-up). `calls` counts
// every call that completed in the window, `errors` those that failed; `latencies` holds the
// successful calls only, so fast failures cannot flatter the percentiles.
struct LoadResult {
  int64_t calls = 0;
  int64_t errors = 0;
  double seconds = 0;
  LatencyHistogram latencies;

  // SuccessRate: successful calls per second.
  double SuccessRate() const {
    return seconds > 0 ? static_cast<double>(calls - errors) / seconds : 0;
  }
};

// RunLoad: runs options.warmup + options.duration, then waits for the calls still in flight,
// and returns. Channels must outlive the call and be non-empty.
[[nodiscard]] LoadResult RunLoad(const LoadOptions& options,
                                 const std::vector<std::shared_ptr<grpc::Channel>>& channels);

}  // namespace qai::loadgen
