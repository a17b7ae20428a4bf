#include "common/grpc_metrics.h"

#include <chrono>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "common/strings.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/server_context.h"

namespace qai::common {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

std::string TypeName(bool client_streaming, bool server_streaming) {
  if (client_streaming && server_streaming) return "bidi_stream";
  if (client_streaming) return "client_stream";
  if (server_streaming) return "server_stream";
  return "unary";
}

// CallMetrics: one call's interceptor: started when the call is, handled when its status goes
// out (before the client can see it, so a scrape after the reply counts the call).
class CallMetrics : public grpc::experimental::Interceptor {
 public:
  CallMetrics(GrpcServerMetrics* metrics, GrpcServerMetrics::Method* method,
              grpc::ServerContextBase* ctx)
      : metrics_(metrics), method_(method), ctx_(ctx), start_(std::chrono::steady_clock::now()) {
    method_->started->Increment();
  }
  ~CallMetrics() override {
    if (!handled_) Handle(grpc::StatusCode::CANCELLED);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) && !handled_) {
      // A status sent to a client that has gone away is not what it saw: some handlers (gRPC's
      // health Watch) answer a cancellation with UNKNOWN.
      const bool cancelled = ctx_ != nullptr && ctx_->IsCancelled();
      Handle(cancelled ? grpc::StatusCode::CANCELLED : methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Handle(grpc::StatusCode code) {
    handled_ = true;
    metrics_->Handled(
        *method_, code,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

  GrpcServerMetrics* const metrics_;
  GrpcServerMetrics::Method* const method_;
  grpc::ServerContextBase* const ctx_;
  const std::chrono::steady_clock::time_point start_;
  bool handled_ = false;
};

class Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(GrpcServerMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new CallMetrics(metrics_,
                           &metrics_->MethodFor(info->method() == nullptr ? "" : info->method()),
                           info->server_context());
  }

 private:
  GrpcServerMetrics* const metrics_;
};

}  // namespace

GrpcServerMetrics::GrpcServerMetrics(prometheus::Registry& registry,
                                     const std::vector<std::string>& services)
    : started_(prometheus::BuildCounter()
                   .Name("grpc_server_started_total")
                   .Help("RPCs started on the server.")
                   .Register(registry)),
      handled_(prometheus::BuildCounter()
                   .Name("grpc_server_handled_total")
                   .Help("RPCs completed on the server, by status code.")
                   .Register(registry)),
      handling_(prometheus::BuildHistogram()
                    .Name("grpc_server_handling_seconds")
                    .Help("Time from the start of an RPC to its status, in seconds.")
                    .Register(registry)) {
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : services) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = service->method(i);
      std::unique_ptr<Method>& slot =
          methods_[absl::StrCat("/", service->full_name(), "/", m->name())];
      if (slot == nullptr) {
        slot = Make({{"grpc_type", TypeName(m->client_streaming(), m->server_streaming())},
                     {"grpc_service", service->full_name()},
                     {"grpc_method", m->name()}});
      }
    }
  }
  unknown_ =
      Make({{"grpc_type", "unknown"}, {"grpc_service", "unknown"}, {"grpc_method", "unknown"}});
}

std::unique_ptr<GrpcServerMetrics::Method> GrpcServerMetrics::Make(prometheus::Labels labels) {
  auto method = std::make_unique<Method>();
  method->labels = std::move(labels);
  method->started = &started_.Add(method->labels);
  method->handling = &handling_.Add(method->labels, LatencyBuckets());
  return method;
}

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
GrpcServerMetrics::InterceptorFactories() {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<Factory>(this));
  return factories;
}

GrpcServerMetrics::Method& GrpcServerMetrics::MethodFor(std::string_view path) {
  auto it = methods_.find(ToAbsl(path));
  return it == methods_.end() ? *unknown_ : *it->second;
}

void GrpcServerMetrics::Handled(Method& method, grpc::StatusCode code, double seconds) {
  int index = static_cast<int>(code);
  if (index < 0 || index >= static_cast<int>(method.handled.size()))
    index = grpc::StatusCode::UNKNOWN;
  prometheus::Counter* counter = method.handled[index].load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Family::Add is idempotent and thread-safe: racing first calls get the same counter.
    prometheus::Labels labels = method.labels;
    labels["grpc_code"] = absl::StatusCodeToString(static_cast<absl::StatusCode>(index));
    counter = &handled_.Add(labels);
    method.handled[index].store(counter, std::memory_order_release);
  }
  counter->Increment();
  method.handling->Observe(seconds);
}

}  // namespace qai::common
