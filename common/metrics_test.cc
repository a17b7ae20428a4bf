#include "common/metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "common/server.h"
#include "common/status_macros.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "tests/support/scrape.h"

namespace qai::common {
namespace {

using testing::SampleValue;

std::unique_ptr<Metrics> MustCreate(const std::string& addr) {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Create(addr);
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  return metrics.ok() ? std::move(*metrics) : nullptr;
}

TEST(MetricsTest, OffWithoutAnAddressButTheRegistryWorks) {
  auto metrics = MustCreate("");
  ASSERT_NE(metrics, nullptr);
  EXPECT_FALSE(metrics->serving());
  EXPECT_EQ(metrics->port(), 0);
  prometheus::BuildCounter()
      .Name("qai_test_total")
      .Help("t")
      .Register(metrics->registry())
      .Add({{"k", "v"}})
      .Increment(3);
  EXPECT_EQ(SampleValue(metrics->Render(), "qai_test_total", {{"k", "v"}}), 3);
  // Nothing samples periodically when nobody can scrape.
  std::atomic<int> runs = 0;
  Metrics::Hook hook = metrics->Every(absl::Milliseconds(1), [&] { ++runs; });
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(runs, 0);
}

TEST(MetricsTest, ScrapeHooksRunBeforeEachScrapeUntilRemoved) {
  auto metrics = MustCreate("");
  prometheus::Gauge& gauge = prometheus::BuildGauge()
                                 .Name("qai_test_gauge")
                                 .Help("t")
                                 .Register(metrics->registry())
                                 .Add({});
  int value = 0;
  {
    Metrics::Hook hook = metrics->OnScrape([&] { gauge.Set(++value); });
    EXPECT_EQ(SampleValue(metrics->Render(), "qai_test_gauge"), 1);
    EXPECT_EQ(SampleValue(metrics->Render(), "qai_test_gauge"), 2);
  }
  EXPECT_EQ(SampleValue(metrics->Render(), "qai_test_gauge"), 2);
}

TEST(MetricsTest, ServesOverHttpOnAPickedPortAndRunsPeriodicUpdates) {
  auto metrics = MustCreate("127.0.0.1:0");
  ASSERT_NE(metrics, nullptr);
  ASSERT_TRUE(metrics->serving());
  ASSERT_GT(metrics->port(), 0);
  prometheus::Gauge& gauge = prometheus::BuildGauge()
                                 .Name("qai_test_periodic")
                                 .Help("t")
                                 .Register(metrics->registry())
                                 .Add({});
  std::atomic<int> runs = 0;
  Metrics::Hook hook = metrics->Every(absl::Milliseconds(20), [&] { gauge.Set(++runs); });
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (runs < 3 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_GE(runs, 3);
  hook = Metrics::Hook();  // removed: it runs no more
  const int after = runs;
  absl::SleepFor(absl::Milliseconds(60));
  EXPECT_EQ(runs, after);

  absl::StatusOr<std::string> text = testing::ScrapeMetrics(metrics->port());
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(SampleValue(*text, "qai_test_periodic"), after);
}

TEST(MetricsTest, AnAddressThatCannotBeBoundIsAnError) {
  auto first = MustCreate("127.0.0.1:0");
  absl::StatusOr<std::unique_ptr<Metrics>> second =
      Metrics::Create("127.0.0.1:" + std::to_string(first->port()));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

using Labels = std::map<std::string, std::string>;

Labels WithCode(Labels labels, const std::string& code) {
  labels["grpc_code"] = code;
  return labels;
}

const Labels kCheck = {
    {"grpc_type", "unary"}, {"grpc_service", "grpc.health.v1.Health"}, {"grpc_method", "Check"}};
const Labels kWatch = {{"grpc_type", "server_stream"},
                       {"grpc_service", "grpc.health.v1.Health"},
                       {"grpc_method", "Watch"}};
const Labels kUnknown = {
    {"grpc_type", "unknown"}, {"grpc_service", "unknown"}, {"grpc_method", "unknown"}};

grpc::StatusCode HealthCheck(grpc::health::v1::Health::Stub& health, const std::string& service) {
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  return health.Check(&ctx, req, &resp).error_code();
}

// WatchAndCancel: a server stream the client cancels.
void WatchAndCancel(grpc::health::v1::Health::Stub& health) {
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  auto reader = health.Watch(&ctx, req);
  grpc::health::v1::HealthCheckResponse resp;
  EXPECT_TRUE(reader->Read(&resp));
  ctx.TryCancel();
  while (reader->Read(&resp)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

// CallUnknownService: a call of a service the server does not have (as a client of
// qai.projects.v1 would make it; a generic stub, since common/ knows no service's protos).
grpc::StatusCode CallUnknownService(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub generic(channel);
  grpc::ClientContext ctx;
  grpc::Slice no_fields("");
  grpc::ByteBuffer empty(&no_fields, 1), resp;
  std::promise<grpc::Status> done;
  generic.UnaryCall(&ctx, "/qai.projects.v1.ProjectService/GetProject", grpc::StubOptions(), &empty,
                    &resp, [&](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get().error_code();
}

// ScrapeAfterWatchEnded: the metrics once they count the cancelled Watch (its end reaches the
// server a moment after the client saw it), or after 5 s.
absl::StatusOr<std::string> ScrapeAfterWatchEnded(int port) {
  std::string text;
  const absl::Time until = absl::Now() + absl::Seconds(5);
  do {
    QAI_ASSIGN_OR_RETURN(text, testing::ScrapeMetrics(port));
  } while (!SampleValue(text, "grpc_server_handled_total", WithCode(kWatch, "CANCELLED")) &&
           absl::Now() < until);
  return text;
}

// ExpectOnlyKnownServices: no label value came from the callers: every series is one of the
// known methods'.
void ExpectOnlyKnownServices(const std::string& text) {
  for (const auto& labels : testing::SampleLabels(text, "grpc_server_started_total")) {
    const std::string& service = labels.at("grpc_service");
    EXPECT_TRUE(service == "grpc.health.v1.Health" ||
                service == "grpc.reflection.v1alpha.ServerReflection" || service == "unknown")
        << service;
  }
}

// The gRPC server metrics, through a real server with health checking (no database) and
// reflection: every call counted once, by method and code, and other services' methods under
// one "unknown" label set.
TEST(GrpcServerMetricsTest, CountsEveryCallByMethodAndCode) {
  auto metrics = MustCreate("127.0.0.1:0");
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start({.listen_addr = "127.0.0.1:0", .metrics = metrics.get()});
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->port()),
                                     grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(HealthCheck(*health, ""), grpc::StatusCode::OK);
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(HealthCheck(*health, "no.such.Service"), grpc::StatusCode::NOT_FOUND);
  WatchAndCancel(*health);
  EXPECT_EQ(CallUnknownService(channel), grpc::StatusCode::UNIMPLEMENTED);

  absl::StatusOr<std::string> scraped = ScrapeAfterWatchEnded(metrics->port());
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  const std::string& text = *scraped;
  EXPECT_EQ(SampleValue(text, "grpc_server_started_total", kCheck), 5);
  EXPECT_EQ(SampleValue(text, "grpc_server_handled_total", WithCode(kCheck, "OK")), 3);
  EXPECT_EQ(SampleValue(text, "grpc_server_handled_total", WithCode(kCheck, "NOT_FOUND")), 2);
  EXPECT_EQ(SampleValue(text, "grpc_server_handling_seconds_count", kCheck), 5);
  Labels inf_bucket = kCheck;
  inf_bucket["le"] = "+Inf";
  EXPECT_EQ(SampleValue(text, "grpc_server_handling_seconds_bucket", inf_bucket), 5);

  EXPECT_EQ(SampleValue(text, "grpc_server_started_total", kWatch), 1);
  EXPECT_EQ(SampleValue(text, "grpc_server_handled_total", WithCode(kWatch, "CANCELLED")), 1)
      << text;

  EXPECT_EQ(SampleValue(text, "grpc_server_started_total", kUnknown), 1);
  EXPECT_EQ(SampleValue(text, "grpc_server_handled_total", WithCode(kUnknown, "UNIMPLEMENTED")), 1);
  // Reflection's methods are known from the start, at zero.
  EXPECT_EQ(SampleValue(text, "grpc_server_started_total",
                        {{"grpc_type", "bidi_stream"},
                         {"grpc_service", "grpc.reflection.v1alpha.ServerReflection"},
                         {"grpc_method", "ServerReflectionInfo"}}),
            0);
  ExpectOnlyKnownServices(text);
  (*server)->Shutdown();
}

}  // namespace
}  // namespace qai::common
