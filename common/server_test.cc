#include "common/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/paths.h"
#include "tests/support/pg_server.h"

namespace qai::common {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class HealthClient {
 public:
  explicit HealthClient(int port)
      : stub_(Health::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                  grpc::InsecureChannelCredentials()))) {}

  // Check: the status of `service`; SERVICE_UNKNOWN when the call fails (e.g. NOT_FOUND).
  HealthCheckResponse::ServingStatus Check(const std::string& service) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    HealthCheckRequest req;
    req.set_service(service);
    HealthCheckResponse resp;
    if (!stub_->Check(&ctx, req, &resp).ok()) return HealthCheckResponse::SERVICE_UNKNOWN;
    return resp.status();
  }

  // WaitFor: Check until it answers `want` or `timeout` passes; returns the last answer.
  HealthCheckResponse::ServingStatus WaitFor(const std::string& service,
                                             HealthCheckResponse::ServingStatus want,
                                             absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time until = absl::Now() + timeout;
    HealthCheckResponse::ServingStatus status = Check(service);
    while (status != want && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(10));
      status = Check(service);
    }
    return status;
  }

  Health::Stub& stub() { return *stub_; }

 private:
  std::unique_ptr<Health::Stub> stub_;
};

constexpr char kServiceName[] = "qai.test.v1.TestService";
constexpr auto kServing = HealthCheckResponse::SERVING;
constexpr auto kNotServing = HealthCheckResponse::NOT_SERVING;

TEST(ServerHealthTest, ExtraChecksAnswerOnTheirOwnNamesOnly) {
  std::atomic<bool> outbox_ok{true};
  auto server = Server::Start({.listen_addr = "127.0.0.1:0",
                               .health_names = {kServiceName},
                               .extra_health = {{"outbox", [&] { return outbox_ok.load(); }},
                                                {"always", [] { return true; }}},
                               .health_interval = absl::Milliseconds(20),
                               .drain_timeout = absl::Seconds(1)});
  ASSERT_TRUE(server.ok()) << server.status();
  HealthClient health((*server)->port());
  // Set at start-up, not after the first interval.
  EXPECT_EQ(health.Check("outbox"), kServing);
  EXPECT_EQ(health.Check("always"), kServing);
  EXPECT_EQ(health.Check("no-such-check"), HealthCheckResponse::SERVICE_UNKNOWN);

  outbox_ok = false;
  EXPECT_EQ(health.WaitFor("outbox", kNotServing), kNotServing);
  EXPECT_EQ(health.Check(""), kServing);
  EXPECT_EQ(health.Check(kServiceName), kServing);
  EXPECT_EQ(health.Check("always"), kServing);

  outbox_ok = true;
  EXPECT_EQ(health.WaitFor("outbox", kServing), kServing);

  // Shutdown turns the extra names NOT_SERVING too: a watcher sees it before the drain ends.
  grpc::ClientContext ctx;
  HealthCheckRequest req;
  req.set_service("always");
  auto watch = health.stub().Watch(&ctx, req);
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), kServing);
  std::thread stopper([&] { (*server)->Shutdown(); });
  bool saw_not_serving = false;
  while (!saw_not_serving && watch->Read(&update)) saw_not_serving = update.status() == kNotServing;
  EXPECT_TRUE(saw_not_serving);
  ctx.TryCancel();
  stopper.join();
}

// The database's health sets the overall and service statuses, never the extra checks': a
// database that answers does not make a failing check SERVING, one that is down does not
// make a passing check NOT_SERVING.
TEST(ServerHealthTest, DatabaseHealthLeavesExtraChecksAlone) {
  auto up = DbPool::Create(
      {.url = qai::testing::PgServer::Shared().CreateDatabase(/*migrated=*/false), .size = 1});
  ASSERT_TRUE(up.ok()) << up.status();
  auto server = Server::Start({.listen_addr = "127.0.0.1:0",
                               .health_names = {kServiceName},
                               .db = up->get(),
                               .extra_health = {{"outbox", [] { return false; }}},
                               .health_interval = absl::Milliseconds(20),
                               .drain_timeout = absl::Seconds(1)});
  ASSERT_TRUE(server.ok()) << server.status();
  HealthClient health((*server)->port());
  EXPECT_EQ(health.WaitFor("", kServing), kServing);
  EXPECT_EQ(health.Check(kServiceName), kServing);
  absl::SleepFor(absl::Milliseconds(100));  // a few intervals
  EXPECT_EQ(health.Check("outbox"), kNotServing);
  EXPECT_EQ(health.Check(""), kServing);
  (*server)->Shutdown();

  const std::string down_url =
      "postgresql://postgres@127.0.0.1:" + std::to_string(qai::testing::FreePort()) + "/none";
  auto down = DbPool::Create({.url = down_url, .size = 1});
  ASSERT_TRUE(down.ok()) << down.status();
  server = Server::Start({.listen_addr = "127.0.0.1:0",
                          .health_names = {kServiceName},
                          .db = down->get(),
                          .extra_health = {{"outbox", [] { return true; }}},
                          .health_interval = absl::Milliseconds(20),
                          .drain_timeout = absl::Seconds(1)});
  ASSERT_TRUE(server.ok()) << server.status();
  HealthClient health_down((*server)->port());
  EXPECT_EQ(health_down.WaitFor("", kNotServing), kNotServing);
  EXPECT_EQ(health_down.Check(kServiceName), kNotServing);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(health_down.Check("outbox"), kServing);
  EXPECT_EQ(health_down.Check(""), kNotServing);
  (*server)->Shutdown();
}

}  // namespace
}  // namespace qai::common
