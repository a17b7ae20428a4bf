#pragma once
// Server bootstrap shared by every QAI service.
//
// Start() listens (port 0 picks a free port, logged as `listening`), registers the services,
// the gRPC health service and server reflection, and keeps the health status in step with
// the database: NOT_SERVING while a ping fails or once shutdown begins. Extra named checks
// (e.g. "outbox") report on their own names only. Shutdown() stops accepting calls, lets
// in-flight ones finish until the drain deadline, then cancels the rest.
//
//   BlockShutdownSignals();                // first thing in main, before any thread starts
//   auto server = Server::Start({.listen_addr = ..., .services = {&svc}, .db = pool.get()});
//   WaitForShutdownSignal();               // SIGTERM or SIGINT
//   (*server)->Shutdown();                 // then exit 0

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/db_pool.h"
#include "common/grpc_limits.h"
#include "common/grpc_metrics.h"
#include "common/metrics.h"
#include "grpcpp/grpcpp.h"

namespace qai::common {

struct ServerOptions {
  std::string listen_addr = "0.0.0.0:50051";
  std::vector<grpc::Service*> services;
  // Full proto names of those services (e.g. "qai.projects.v1.ProjectService"): each gets a
  // health status of its own next to the overall one.
  std::vector<std::string> health_names;
  // Health follows this database; nullptr means always SERVING.
  DbPool* db = nullptr;
  // Named checks evaluated on every health interval, each the serving status of its own name
  // (NOT_SERVING once shutdown begins). They never change the overall ("") status or the
  // services' ones: a backlog behind a downstream service that is down must not take this
  // replica out of its load balancer. A check runs on the health thread and must be quick.
  std::vector<std::pair<std::string, std::function<bool()>>> extra_health;
  absl::Duration health_interval = absl::Seconds(1);
  absl::Duration drain_timeout = absl::Seconds(10);
  // Message size cap, keepalive and connection age (clients reconnect, and so rebalance over
  // replicas, after max_connection_age).
  GrpcLimits grpc;
  // While it serves /metrics, every call is counted (GrpcServerMetrics): the services above,
  // health and reflection. nullptr or not serving: no interceptor, no cost per call.
  Metrics* metrics = nullptr;
};

class Server {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();

  // port: the port actually bound (useful when listen_addr asked for port 0).
  int port() const { return port_; }
  // Shutdown: NOT_SERVING, stop accepting, drain until drain_timeout, stop. Idempotent.
  void Shutdown();

 private:
  Server() = default;
  void WatchHealth() ABSL_LOCKS_EXCLUDED(mu_);
  void SetServing(bool serving) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // EvaluateExtraHealth: the extra checks' results, in order (called without mu_ held).
  std::vector<bool> EvaluateExtraHealth() const ABSL_LOCKS_EXCLUDED(mu_);
  void SetExtraServing(const std::vector<bool>& serving) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ServerOptions options_;
  std::unique_ptr<GrpcServerMetrics> grpc_metrics_;  // outlives server_'s interceptors
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Mutex mu_;
  absl::CondVar stop_cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int last_serving_ ABSL_GUARDED_BY(mu_) = -1;
  // Per extra_health entry, -1 before it is set.
  std::vector<int> last_extra_serving_ ABSL_GUARDED_BY(mu_);
  std::thread health_thread_;
};

// BlockShutdownSignals: blocks SIGTERM and SIGINT in this thread and every thread started
// after it, so that WaitForShutdownSignal is the one place that receives them.
void BlockShutdownSignals();
// WaitForShutdownSignal: blocks until SIGTERM or SIGINT arrives; returns its number. A second
// one after that ends the process at once (exit code 1), for a drain that must not be waited out.
int WaitForShutdownSignal();

}  // namespace qai::common
