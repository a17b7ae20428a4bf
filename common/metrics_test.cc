#include "common/metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>

#include "absl/time/clock.h"
#include "common/server.h"
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
  auto check = [&](const std::string& service) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    return health->Check(&ctx, req, &resp).error_code();
  };
  for (int i = 0; i < 3; ++i) EXPECT_EQ(check(""), grpc::StatusCode::OK);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(check("no.such.Service"), grpc::StatusCode::NOT_FOUND);
  {
    // A server stream the client cancels.
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    auto reader = health->Watch(&ctx, req);
    grpc::health::v1::HealthCheckResponse resp;
    EXPECT_TRUE(reader->Read(&resp));
    ctx.TryCancel();
    while (reader->Read(&resp)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  {
    // A service this server does not have (as a client of qai.projects.v1 would call it).
    grpc::GenericStub generic(channel);
    grpc::ClientContext ctx;
    grpc::Slice no_fields("");
    grpc::ByteBuffer empty(&no_fields, 1), resp;
    std::promise<grpc::Status> done;
    generic.UnaryCall(&ctx, "/qai.projects.v1.ProjectService/GetProject", grpc::StubOptions(),
                      &empty, &resp, [&](grpc::Status s) { done.set_value(std::move(s)); });
    EXPECT_EQ(done.get_future().get().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }

  std::string text;
  const std::map<std::string, std::string> watch = {{"grpc_type", "server_stream"},
                                                    {"grpc_service", "grpc.health.v1.Health"},
                                                    {"grpc_method", "Watch"}};
  auto with_code = [](std::map<std::string, std::string> labels, const std::string& code) {
    labels["grpc_code"] = code;
    return labels;
  };
  // The cancelled stream's end reaches the server a moment after the client saw it.
  const absl::Time until = absl::Now() + absl::Seconds(5);
  do {
    absl::StatusOr<std::string> scraped = testing::ScrapeMetrics(metrics->port());
    ASSERT_TRUE(scraped.ok()) << scraped.status();
    text = *scraped;
  } while (!SampleValue(text, "grpc_server_handled_total", with_code(watch, "CANCELLED")) &&
           absl::Now() < until);

  const std::map<std::string, std::string> check_labels = {
      {"grpc_type", "unary"}, {"grpc_service", "grpc.health.v1.Health"}, {"grpc_method", "Check"}};
  EXPECT_EQ(SampleValue(text, "grpc_server_started_total", check_labels), 5);
  EXPECT_EQ(SampleValue(text, "grpc_server_handled_total", with_code(check_labels, "OK")), 3);
  EXPECT_EQ(SampleValue(text, "grpc_server_handled_total", with_code(check_labels, "NOT_FOUND")),
            2);
  EXPECT_EQ(SampleValue(text, "grpc_server_handling_seconds_count", check_labels), 5);
  auto inf_bucket = check_labels;
  inf_bucket["le"] = "+Inf";
  EXPECT_EQ(SampleValue(text, "grpc_server_handling_seconds_bucket", inf_bucket), 5);

  EXPECT_EQ(SampleValue(text, "grpc_server_started_total", watch), 1);
  EXPECT_EQ(SampleValue(text, "grpc_server_handled_total", with_code(watch, "CANCELLED")), 1)
      << text;

  const std::map<std::string, std::string> unknown = {
      {"grpc_type", "unknown"}, {"grpc_service", "unknown"}, {"grpc_method", "unknown"}};
  EXPECT_EQ(SampleValue(text, "grpc_server_started_total", unknown), 1);
  EXPECT_EQ(SampleValue(text, "grpc_server_handled_total", with_code(unknown, "UNIMPLEMENTED")), 1);
  // Reflection's methods are known from the start, at zero.
  EXPECT_EQ(SampleValue(text, "grpc_server_started_total",
                        {{"grpc_type", "bidi_stream"},
                         {"grpc_service", "grpc.reflection.v1alpha.ServerReflection"},
                         {"grpc_method", "ServerReflectionInfo"}}),
            0);
  // No label value came from the callers: every series is one of the known methods'.
  for (const auto& labels : testing::SampleLabels(text, "grpc_server_started_total")) {
    const std::string& service = labels.at("grpc_service");
    EXPECT_TRUE(service == "grpc.health.v1.Health" ||
                service == "grpc.reflection.v1alpha.ServerReflection" || service == "unknown")
        << service;
  }
  (*server)->Shutdown();
}

}  // namespace
}  // namespace qai::common
