#include "common/server.h"

#include <signal.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "google/rpc/error_details.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"

namespace qai::common {

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // gRPC's health service is not built from a protobuf descriptor, and error details are
  // only packed into bytes: naming their descriptors puts them in the pool that reflection
  // serves, so grpcurl and `buf curl` can call Health and decode BadRequest with no .proto.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  (void)google::rpc::BadRequest::descriptor();

  std::unique_ptr<Server> self(new Server());
  self->options_ = std::move(options);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(self->options_.listen_addr, grpc::InsecureServerCredentials(),
                           &self->port_);
  const GrpcLimits& limits = self->options_.grpc;
  builder.SetMaxReceiveMessageSize(limits.max_message_bytes);
  builder.SetMaxSendMessageSize(limits.max_message_bytes);
  auto ms = [](absl::Duration d) {
    return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d), INT_MAX));
  };
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, ms(limits.max_connection_age));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             ms(limits.max_connection_age_grace));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, ms(limits.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ms(limits.keepalive_timeout));
  // Clients' keepalive pings (every grpc-keepalive-time, at least 10 s) are welcome, even on a
  // connection with no call: gRPC's default answers pings more often than every 5 minutes with
  // GOAWAY ENHANCE_YOUR_CALM.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  for (grpc::Service* service : self->options_.services) builder.RegisterService(service);
  if (self->options_.metrics != nullptr && self->options_.metrics->serving()) {
    std::vector<std::string> names = self->options_.health_names;
    names.push_back("grpc.health.v1.Health");
    names.push_back("grpc.reflection.v1alpha.ServerReflection");
    self->grpc_metrics_ =
        std::make_unique<GrpcServerMetrics>(self->options_.metrics->registry(), names);
    builder.experimental().SetInterceptorCreators(self->grpc_metrics_->InterceptorFactories());
  }
  self->server_ = builder.BuildAndStart();
  if (!self->server_ || self->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", self->options_.listen_addr));
  }
  Log(LogLevel::kInfo, "listening", {{"addr", self->options_.listen_addr}, {"port", self->port_}});
  {
    absl::MutexLock lock(&self->mu_);
    self->SetServing(self->options_.db == nullptr);
    // Extra names answer from the start rather than NOT_FOUND until the first interval.
    self->last_extra_serving_.assign(self->options_.extra_health.size(), -1);
  }
  const std::vector<bool> extra = self->EvaluateExtraHealth();
  {
    absl::MutexLock lock(&self->mu_);
    self->SetExtraServing(extra);
  }
  self->health_thread_ = std::thread([s = self.get()] { s->WatchHealth(); });
  return self;
}

Server::~Server() { Shutdown(); }

void Server::SetServing(bool serving) {
  if (last_serving_ == static_cast<int>(serving)) return;
  last_serving_ = serving;
  auto* health = server_->GetHealthCheckService();
  for (const std::string& name : options_.health_names) health->SetServingStatus(name, serving);
  // The overall status by its name "": SetServingStatus(bool) would set every name, the extra
  // checks' too.
  health->SetServingStatus("", serving);
  Log(serving ? LogLevel::kInfo : LogLevel::kWarn, "health", {{"serving", serving}});
}

std::vector<bool> Server::EvaluateExtraHealth() const {
  std::vector<bool> serving;
  serving.reserve(options_.extra_health.size());
  for (const auto& [name, check] : options_.extra_health) serving.push_back(check());
  return serving;
}

void Server::SetExtraServing(const std::vector<bool>& serving) {
  auto* health = server_->GetHealthCheckService();
  for (size_t i = 0; i < serving.size(); ++i) {
    if (last_extra_serving_[i] == static_cast<int>(serving[i])) continue;
    last_extra_serving_[i] = serving[i];
    const std::string& name = options_.extra_health[i].first;
    health->SetServingStatus(name, serving[i]);
    Log(serving[i] ? LogLevel::kInfo : LogLevel::kWarn, "health",
        {{"check", name}, {"serving", serving[i]}});
  }
}

void Server::WatchHealth() {
  mu_.Lock();
  while (!stopping_) {
    mu_.Unlock();
    const bool db_ok = options_.db == nullptr || options_.db->Ping().ok();
    const std::vector<bool> extra = EvaluateExtraHealth();
    mu_.Lock();
    if (stopping_) break;
    if (options_.db != nullptr) SetServing(db_ok);
    SetExtraServing(extra);
    const absl::Time deadline = absl::Now() + options_.health_interval;
    while (!stopping_ && !stop_cv_.WaitWithDeadline(&mu_, deadline)) {
    }
  }
  mu_.Unlock();
}

void Server::Shutdown() {
  if (!server_) return;  // never started (e.g. the address was taken)
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    last_serving_ = -1;
    SetServing(false);
    SetExtraServing(std::vector<bool>(options_.extra_health.size(), false));
  }
  stop_cv_.SignalAll();
  if (health_thread_.joinable()) health_thread_.join();
  Log(LogLevel::kInfo, "draining",
      {{"deadline_ms", absl::ToInt64Milliseconds(options_.drain_timeout)}});
  server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.drain_timeout));
  server_->Wait();
  Log(LogLevel::kInfo, "stopped");
}

void BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForShutdownSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  Log(LogLevel::kInfo, "shutdown signal", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  // A second signal while draining means "now": exit without waiting for the drain.
  std::thread([set] {
    int again = 0;
    while (sigwait(&set, &again) != 0) {
    }
    Log(LogLevel::kWarn, "second shutdown signal; exiting without draining");
    std::_Exit(1);
  }).detach();
  return sig;
}

}  // namespace qai::common
