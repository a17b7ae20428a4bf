// qai-projects as a process, called over gRPC: every RPC, the bad inputs of docs/api.md, auth,
// the outbox hop to a fake MessageService, a database restart under a running server, and a
// graceful SIGTERM.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/ids.h"
#include "common/page_token.h"
#include "common/status.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/e2e/harness.h"
#include "tests/support/paths.h"
#include "tests/support/pg_server.h"
#include "tests/support/scrape.h"

namespace qai::testing {
namespace {

namespace pb = qai::projects::v1;
namespace mpb = qai::messages::v1;
using grpc::StatusCode;

// FakeMessages records CreateMessage calls, as the real MessageService will receive them.
class FakeMessages final : public mpb::MessageService::CallbackService {
 public:
  struct Call {
    mpb::CreateMessageRequest request;
    std::string api_key;
  };
  grpc::ServerUnaryReactor* CreateMessage(grpc::CallbackServerContext* ctx,
                                          const mpb::CreateMessageRequest* req,
                                          mpb::Message* resp) override {
    std::string key;
    if (auto it = ctx->client_metadata().find("x-api-key"); it != ctx->client_metadata().end()) {
      key.assign(it->second.data(), it->second.size());
    }
    {
      std::lock_guard lock(mu_);
      calls_.push_back({*req, key});
    }
    resp->set_id(common::NewUuid());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::vector<Call> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  // WaitForCalls: the calls so far, once there is at least one (or the timeout passed).
  std::vector<Call> WaitForCalls(absl::Duration timeout) {
    const absl::Time until = absl::Now() + timeout;
    std::vector<Call> seen = calls();
    while (seen.empty() && absl::Now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      seen = calls();
    }
    return seen;
  }

 private:
  std::mutex mu_;
  std::vector<Call> calls_;
};

std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> fields;
  for (const auto& v : common::GetFieldViolations(common::FromGrpcStatus(status)))
    fields.push_back(v.field);
  return fields;
}

class ProjectsE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_url_ = PgServer::Shared().CreateDatabase();
    messages_port_ = FreePort();
    StartProjects();
  }

  void StartProjects(EnvVars extra_env = {}) {
    EnvVars env = {{"QAI_DATABASE_URL", db_url_},
                   {"QAI_MESSAGES_ADDR", "127.0.0.1:" + std::to_string(messages_port_)},
                   {"QAI_DRAIN_TIMEOUT", "5s"}};
    for (auto& e : extra_env) env.push_back(std::move(e));
    auto svc = StartService("services/projects/qai-projects", std::move(env));
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = std::move(*svc);
    stub_ = pb::ProjectService::NewStub(svc_.Channel());
  }

  std::unique_ptr<grpc::Server> StartFakeMessages(FakeMessages* fake) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(messages_port_),
                             grpc::InsecureServerCredentials());
    builder.RegisterService(fake);
    return builder.BuildAndStart();
  }

  grpc::Status Create(const std::string& sub, const std::string& prompt, pb::Project* out,
                      const std::string& request_id = "", const std::string& display_name = "") {
    grpc::ClientContext ctx;
    AsUser(ctx, sub);
    pb::CreateProjectRequest req;
    req.set_initial_prompt(prompt);
    req.set_display_name(display_name);
    req.set_request_id(request_id);
    return stub_->CreateProject(&ctx, req, out);
  }

  grpc::Status Get(const std::string& sub, const std::string& id, pb::Project* out = nullptr) {
    grpc::ClientContext ctx;
    AsUser(ctx, sub);
    pb::GetProjectRequest req;
    req.set_id(id);
    pb::Project ignored;
    return stub_->GetProject(&ctx, req, out ? out : &ignored);
  }

  // Rename: UpdateProject of display_name as `sub`, with an etag when given.
  grpc::Status Rename(const std::string& sub, const std::string& id, const std::string& name,
                      const std::string& etag = "", pb::Project* out = nullptr) {
    grpc::ClientContext ctx;
    AsUser(ctx, sub);
    pb::UpdateProjectRequest req;
    req.mutable_project()->set_id(id);
    req.mutable_project()->set_display_name(name);
    req.mutable_project()->set_etag(etag);
    req.mutable_update_mask()->add_paths("display_name");
    pb::Project ignored;
    return stub_->UpdateProject(&ctx, req, out ? out : &ignored);
  }

  pb::Project MustCreate(const std::string& sub, const std::string& prompt = "Build a todo app") {
    pb::Project p;
    grpc::Status s = Create(sub, prompt, &p);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return p;
  }

  std::string db_url_;
  int messages_port_ = 0;
  RunningService svc_;
  std::unique_ptr<pb::ProjectService::Stub> stub_;
};

TEST_F(ProjectsE2ETest, ServingWithHealthAndReflection) {
  auto health = grpc::health::v1::Health::NewStub(svc_.Channel());
  for (std::string name : {"", "qai.projects.v1.ProjectService", "outbox"}) {
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s;
    // Health follows the first database ping, which may take a moment after start-up.
    for (int i = 0; i < 50; ++i) {
      grpc::ClientContext ctx;
      grpc::health::v1::HealthCheckRequest req;
      req.set_service(name);
      s = health->Check(&ctx, req, &resp);
      if (s.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << name;
  }

  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(svc_.Channel());
  grpc::ClientContext ctx;
  auto stream = reflection->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("");
  ASSERT_TRUE(stream->Write(req));
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::vector<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.push_back(s.name());
  EXPECT_NE(std::find(names.begin(), names.end(), "qai.projects.v1.ProjectService"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "grpc.health.v1.Health"), names.end());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ProjectsE2ETest, EveryRpcThroughAProjectsLife) {
  pb::Project created;
  ASSERT_TRUE(Create("alice", "Build a landing page", &created, "", "Landing").ok());
  EXPECT_TRUE(common::IsUuid(created.id()));
  EXPECT_EQ(created.owner(), "alice");
  EXPECT_EQ(created.display_name(), "Landing");
  EXPECT_FALSE(created.name().empty());
  EXPECT_FALSE(created.etag().empty());
  EXPECT_GT(created.create_time().seconds(), 0);

  pb::Project got;
  ASSERT_TRUE(Get("alice", created.id(), &got).ok());
  EXPECT_EQ(got.name(), created.name());
  EXPECT_EQ(got.etag(), created.etag());

  MustCreate("alice");
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    pb::ListProjectsRequest req;
    req.set_page_size(1);
    pb::ListProjectsResponse page1, page2;
    ASSERT_TRUE(stub_->ListProjects(&ctx, req, &page1).ok());
    ASSERT_EQ(page1.projects_size(), 1);
    ASSERT_FALSE(page1.next_page_token().empty());
    grpc::ClientContext ctx2;
    AsUser(ctx2, "alice");
    req.set_page_token(page1.next_page_token());
    ASSERT_TRUE(stub_->ListProjects(&ctx2, req, &page2).ok());
    ASSERT_EQ(page2.projects_size(), 1);
    EXPECT_TRUE(page2.next_page_token().empty());
    EXPECT_EQ(page2.projects(0).id(), created.id());  // oldest update last
  }

  pb::Project renamed;
  ASSERT_TRUE(Rename("alice", created.id(), "Renamed", created.etag(), &renamed).ok());
  EXPECT_EQ(renamed.display_name(), "Renamed");
  EXPECT_NE(renamed.etag(), created.etag());
  // The old etag is stale now.
  EXPECT_EQ(Rename("alice", created.id(), "Again", created.etag()).error_code(),
            StatusCode::ABORTED);
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    pb::DeleteProjectRequest req;
    req.set_id(created.id());
    req.set_etag(renamed.etag());
    google::protobuf::Empty out;
    ASSERT_TRUE(stub_->DeleteProject(&ctx, req, &out).ok());
  }
  EXPECT_EQ(Get("alice", created.id()).error_code(), StatusCode::NOT_FOUND);
}

// QAI_METRICS_ADDR: after a known set of calls, /metrics counts exactly those, by method and
// code, with the latency histogram's count to match, and the pool and outbox series are there.
TEST_F(ProjectsE2ETest, MetricsCountTheCallsMade) {
  StartProjects({{"QAI_METRICS_ADDR", "127.0.0.1:0"}, {"QAI_DB_POOL_SIZE", "6"}});
  ASSERT_GT(svc_.metrics_port, 0) << svc_.process->Output();
  pb::Project project;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Create("alice", "Build a todo app", &project).ok());
  EXPECT_TRUE(Get("alice", project.id()).ok());
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(Get("alice", common::NewUuid()).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Get("alice", "not-a-uuid").error_code(), StatusCode::INVALID_ARGUMENT);
  {
    grpc::ClientContext ctx;  // no credentials
    pb::ListProjectsRequest req;
    pb::ListProjectsResponse resp;
    EXPECT_EQ(stub_->ListProjects(&ctx, req, &resp).error_code(), StatusCode::UNAUTHENTICATED);
  }

  absl::StatusOr<std::string> text = ScrapeMetrics(svc_.metrics_port);
  ASSERT_TRUE(text.ok()) << text.status();
  auto method = [](const std::string& name) {
    return std::map<std::string, std::string>{{"grpc_type", "unary"},
                                              {"grpc_service", "qai.projects.v1.ProjectService"},
                                              {"grpc_method", name}};
  };
  auto handled = [&](const std::string& name, const std::string& code) {
    auto labels = method(name);
    labels["grpc_code"] = code;
    return SampleValue(*text, "grpc_server_handled_total", labels);
  };
  EXPECT_EQ(SampleValue(*text, "grpc_server_started_total", method("CreateProject")), 3);
  EXPECT_EQ(handled("CreateProject", "OK"), 3);
  EXPECT_EQ(SampleValue(*text, "grpc_server_handling_seconds_count", method("CreateProject")), 3);
  EXPECT_EQ(SampleValue(*text, "grpc_server_started_total", method("GetProject")), 4);
  EXPECT_EQ(handled("GetProject", "OK"), 1);
  EXPECT_EQ(handled("GetProject", "NOT_FOUND"), 2);
  EXPECT_EQ(handled("GetProject", "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(SampleValue(*text, "grpc_server_handling_seconds_count", method("GetProject")), 4);
  EXPECT_EQ(handled("ListProjects", "UNAUTHENTICATED"), 1);
  EXPECT_EQ(handled("ListProjects", "OK"), std::nullopt);  // a code appears once it happened
  EXPECT_EQ(SampleValue(*text, "grpc_server_started_total", method("DeleteProject")), 0);
  for (const auto& labels : SampleLabels(*text, "grpc_server_handled_total")) {
    EXPECT_EQ(labels.size(), 4u);
    EXPECT_NE(labels.at("grpc_method"), "");
  }

  EXPECT_EQ(SampleValue(*text, "qai_db_pool_size"), 6);
  EXPECT_EQ(SampleValue(*text, "qai_db_pool_waiting"), 0);
  EXPECT_TRUE(SampleValue(*text, "qai_db_pool_connections", {{"state", "in_use"}}).has_value());
  EXPECT_TRUE(SampleValue(*text, "qai_db_pool_connections", {{"state", "idle"}}).has_value());
  EXPECT_TRUE(
      SampleValue(*text, "qai_outbox_delivered_total", {{"table", "projects.outbox"}}).has_value());
  EXPECT_TRUE(SampleValue(*text, "qai_outbox_pending", {{"table", "projects.outbox"}}).has_value());
}

TEST_F(ProjectsE2ETest, RepeatedRequestIdReturnsTheFirstProject) {
  const std::string rid = common::NewUuid();
  pb::Project a, b;
  ASSERT_TRUE(Create("alice", "one", &a, rid).ok());
  ASSERT_TRUE(Create("alice", "one", &b, rid).ok());
  EXPECT_EQ(a.id(), b.id());
  EXPECT_EQ(a.name(), b.name());
}

TEST_F(ProjectsE2ETest, BadInputsNameTheirFields) {
  pb::Project out;
  grpc::Status s = Create("alice", "   \n\t", &out);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(s), std::vector<std::string>{"initial_prompt"});
  EXPECT_NE(s.error_message().find("initial_prompt"), std::string::npos);

  EXPECT_EQ(ViolatedFields(Create("alice", "", &out)), std::vector<std::string>{"initial_prompt"});
  EXPECT_EQ(ViolatedFields(Create("alice", std::string(10001, 'x'), &out)),
            std::vector<std::string>{"initial_prompt"});
  EXPECT_TRUE(Create("alice", std::string(10000, 'x'), &out).ok());
  // Several bad fields at once are all named.
  s = Create("alice", std::string(10001, 'x'), &out, "not-a-uuid", std::string(101, 'n'));
  EXPECT_EQ(ViolatedFields(s),
            (std::vector<std::string>{"initial_prompt", "display_name", "request_id"}));

  EXPECT_EQ(ViolatedFields(Get("alice", "not-a-uuid")), std::vector<std::string>{"id"});
  EXPECT_EQ(ViolatedFields(Get("alice", "")), std::vector<std::string>{"id"});

  {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    pb::ListProjectsRequest req;
    req.set_page_size(-1);
    pb::ListProjectsResponse resp;
    EXPECT_EQ(ViolatedFields(stub_->ListProjects(&ctx, req, &resp)),
              std::vector<std::string>{"page_size"});
  }
  for (std::string token : {"garbage", "", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}) {
    if (token.empty()) continue;
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    pb::ListProjectsRequest req;
    req.set_page_token(token);
    pb::ListProjectsResponse resp;
    EXPECT_EQ(ViolatedFields(stub_->ListProjects(&ctx, req, &resp)),
              std::vector<std::string>{"page_token"});
  }
  {  // A page size above 100 is lowered, not refused.
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    pb::ListProjectsRequest req;
    req.set_page_size(1000);
    pb::ListProjectsResponse resp;
    EXPECT_TRUE(stub_->ListProjects(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    pb::UpdateProjectRequest req;
    req.mutable_project()->set_id(common::NewUuid());
    req.mutable_project()->set_etag("W/garbage");
    req.mutable_update_mask()->add_paths("owner");
    pb::Project resp;
    EXPECT_EQ(ViolatedFields(stub_->UpdateProject(&ctx, req, &resp)),
              (std::vector<std::string>{"update_mask", "project.etag"}));
  }
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    pb::UpdateProjectRequest req;
    pb::Project resp;
    EXPECT_EQ(ViolatedFields(stub_->UpdateProject(&ctx, req, &resp)),
              std::vector<std::string>{"project"});
  }
  {  // 5 MB is refused by the transport before any handler runs.
    s = Create("alice", std::string(5 << 20, 'x'), &out);
    EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  }
  // The server is still fine afterwards.
  EXPECT_TRUE(Create("alice", "still works", &out).ok());
}

TEST_F(ProjectsE2ETest, CallersMustAuthenticate) {
  pb::Project out;
  pb::GetProjectRequest req;
  req.set_id(common::NewUuid());
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(stub_->GetProject(&ctx, req, &out).error_code(), StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer not.a.jwt");
    EXPECT_EQ(stub_->GetProject(&ctx, req, &out).error_code(), StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-api-key", "wrong key");
    EXPECT_EQ(stub_->GetProject(&ctx, req, &out).error_code(), StatusCode::UNAUTHENTICATED);
  }
}

// Page tokens were signed with the users' token key: they have a key of their own, which a
// service refuses to start without (or with the JWT secret as it).
TEST_F(ProjectsE2ETest, PageTokensHaveAKeyOfTheirOwn) {
  for (int i = 0; i < 3; ++i) MustCreate("alice");
  pb::ListProjectsRequest req;
  req.set_page_size(1);
  pb::ListProjectsResponse page;
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    ASSERT_TRUE(stub_->ListProjects(&ctx, req, &page).ok());
    ASSERT_FALSE(page.next_page_token().empty());
  }
  // The same position, signed with the JWT secret, is a forgery.
  common::PageTokenCodec with_jwt_secret(kJwtSecret);
  req.set_page_token(common::EncodePosition(with_jwt_secret, "projects/owner:alice",
                                            {absl::ToUnixMicros(absl::Now()), common::NewUuid()}));
  grpc::ClientContext ctx;
  AsUser(ctx, "alice");
  EXPECT_EQ(ViolatedFields(stub_->ListProjects(&ctx, req, &page)),
            std::vector<std::string>{"page_token"});

  const std::string secret = "a-jwt-secret-of-more-than-32-bytes-0123456789";
  for (const auto& [key, error] : std::vector<std::pair<std::string, std::string>>{
           {secret, "QAI_PAGE_TOKEN_KEY must not be QAI_JWT_SECRET"},
           {"short", "QAI_PAGE_TOKEN_KEY): must be at least 32 bytes"},
           {"", "QAI_PAGE_TOKEN_KEY"}}) {
    absl::StatusOr<RunningService> refused = StartService(
        "services/projects/qai-projects",
        {{"QAI_DATABASE_URL", db_url_}, {"QAI_JWT_SECRET", secret}, {"QAI_PAGE_TOKEN_KEY", key}});
    ASSERT_FALSE(refused.ok()) << key;
    EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr(error));
  }
}

TEST_F(ProjectsE2ETest, ForeignProjectsAreInvisible) {
  pb::Project mine = MustCreate("alice");
  EXPECT_EQ(Get("bob", mine.id()).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Rename("bob", mine.id(), "mine now").error_code(), StatusCode::NOT_FOUND);
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "bob");
    pb::DeleteProjectRequest req;
    req.set_id(mine.id());
    google::protobuf::Empty out;
    EXPECT_EQ(stub_->DeleteProject(&ctx, req, &out).error_code(), StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "bob");
    pb::ListProjectsResponse resp;
    ASSERT_TRUE(stub_->ListProjects(&ctx, {}, &resp).ok());
    EXPECT_EQ(resp.projects_size(), 0);
  }
  {  // An admin sees everyone's.
    grpc::ClientContext ctx;
    AsAdmin(ctx, "root");
    pb::GetProjectRequest req;
    req.set_id(mine.id());
    pb::Project out;
    EXPECT_TRUE(stub_->GetProject(&ctx, req, &out).ok());
  }
  EXPECT_TRUE(Get("alice", mine.id()).ok());
}

TEST_F(ProjectsE2ETest, InitialPromptIsDeliveredOnceMessagesIsUp) {
  pb::Project p = MustCreate("alice", "Make a portfolio site");
  // MessageService is down: the relay keeps the row and retries with backoff.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  FakeMessages fake;
  auto server = StartFakeMessages(&fake);
  ASSERT_TRUE(server);
  std::vector<FakeMessages::Call> calls = fake.WaitForCalls(absl::Seconds(15));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].request.project_id(), p.id());
  EXPECT_EQ(calls[0].request.content(), "Make a portfolio site");
  EXPECT_TRUE(common::IsUuid(calls[0].request.request_id()));
  EXPECT_EQ(calls[0].api_key, ServiceKey("projects"));
  // Delivered rows are not sent again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(fake.calls().size(), 1u);
  server->Shutdown();
}

// The outbox row is committed with the project: a service killed before it delivered the
// initial prompt delivers it after a restart, once.
TEST_F(ProjectsE2ETest, KilledBeforeDeliveryDeliversOnceAfterRestart) {
  pb::Project p = MustCreate("alice", "Survive a crash");
  ASSERT_TRUE(svc_.process->Kill().ok());
  ASSERT_TRUE(svc_.process->Wait(absl::Seconds(10)).ok());
  FakeMessages fake;
  auto server = StartFakeMessages(&fake);
  ASSERT_TRUE(server);
  StartProjects();
  std::vector<FakeMessages::Call> calls = fake.WaitForCalls(absl::Seconds(15));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].request.project_id(), p.id());
  EXPECT_EQ(calls[0].request.content(), "Survive a crash");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(fake.calls().size(), 1u);
  EXPECT_TRUE(Get("alice", p.id()).ok());
  server->Shutdown();
}

// An outbox row waiting longer than --outbox-stale-after (MessageService is down) turns the
// "outbox" health name NOT_SERVING and is logged as a backlog warning, while the replica as a
// whole stays SERVING: a downstream outage must not take it out of its load balancer.
TEST_F(ProjectsE2ETest, StaleOutboxShowsOnItsOwnHealthNameOnly) {
  pb::Project p = MustCreate("alice", "Wait for me");
  {
    soci::session sql(soci::postgresql, db_url_);
    sql << "UPDATE projects.outbox SET create_time = now() - interval '3 minutes'";
  }
  // The relay reads its backlog at start-up, then every 30 s: a restart shows the aged row now.
  ASSERT_TRUE(svc_.process->Signal(SIGTERM).ok());
  ASSERT_EQ(svc_.process->Wait(absl::Seconds(10)).value_or(-999), 0);
  StartProjects({{"QAI_OUTBOX_STALE_AFTER", "2m"}});
  absl::StatusOr<std::string> backlog =
      svc_.process->WaitForLine("\"msg\":\"outbox backlog\"", absl::Seconds(10));
  ASSERT_TRUE(backlog.ok()) << backlog.status();
  EXPECT_NE(backlog->find("\"level\":\"warn\""), std::string::npos) << *backlog;
  EXPECT_NE(backlog->find("\"pending\":1"), std::string::npos) << *backlog;

  auto health = grpc::health::v1::Health::NewStub(svc_.Channel());
  auto check = [&](const std::string& name) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(name);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = health->Check(&ctx, req, &resp);
    return s.ok() ? resp.status() : grpc::health::v1::HealthCheckResponse::UNKNOWN;
  };
  // The health thread takes the relay's verdict on its next interval (1 s).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (check("outbox") != grpc::health::v1::HealthCheckResponse::NOT_SERVING &&
         absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(check("outbox"), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(check(""), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(check("qai.projects.v1.ProjectService"),
            grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_TRUE(Get("alice", p.id()).ok());
}

TEST_F(ProjectsE2ETest, DatabaseRestartIsSurvivedWithoutRestartingTheService) {
  pb::Project p = MustCreate("alice");
  ASSERT_TRUE(PgServer::Shared().Stop().ok());
  grpc::Status down = Get("alice", p.id());
  EXPECT_EQ(down.error_code(), StatusCode::UNAVAILABLE) << down.error_message();
  EXPECT_EQ(down.error_message().find("postgres"), std::string::npos) << "no internals leak";
  pb::Project out;
  EXPECT_EQ(Create("alice", "while down", &out).error_code(), StatusCode::UNAVAILABLE);
  ASSERT_TRUE(PgServer::Shared().Start().ok());
  grpc::Status up = Get("alice", p.id());
  EXPECT_TRUE(up.ok()) << up.error_message();
  EXPECT_TRUE(Create("alice", "after restart", &out).ok());
  EXPECT_TRUE(svc_.process->Running());
}

TEST_F(ProjectsE2ETest, SigtermLetsInFlightCallsFinish) {
  pb::Project p = MustCreate("alice");
  // Hold the project's row lock so that an UpdateProject is in flight when SIGTERM arrives.
  soci::session blocker(soci::postgresql, db_url_);
  blocker.begin();
  blocker << "SELECT 1 FROM projects.projects WHERE id = CAST(:id AS uuid) FOR UPDATE",
      soci::use(p.id());

  grpc::Status update_status;
  pb::Project updated;
  std::thread caller(
      [&] { update_status = Rename("alice", p.id(), "finished during drain", "", &updated); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(svc_.process->Signal(SIGTERM).ok());
  ASSERT_TRUE(svc_.process->WaitForLine("\"msg\":\"draining\"", absl::Seconds(5)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  blocker.commit();
  caller.join();
  EXPECT_TRUE(update_status.ok()) << update_status.error_message();
  EXPECT_EQ(updated.display_name(), "finished during drain");
  absl::StatusOr<int> code = svc_.process->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace qai::testing

namespace qai::testing {
namespace {

// A second SIGTERM during the drain ends the process at once, in-flight calls or not.
TEST_F(ProjectsE2ETest, SecondSigtermExitsWithoutDraining) {
  pb::Project p = MustCreate("alice");
  soci::session blocker(soci::postgresql, db_url_);
  blocker.begin();
  blocker << "SELECT 1 FROM projects.projects WHERE id = CAST(:id AS uuid) FOR UPDATE",
      soci::use(p.id());
  std::thread caller([&] { (void)Rename("alice", p.id(), "never"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(svc_.process->Signal(SIGTERM).ok());
  ASSERT_TRUE(svc_.process->WaitForLine("\"msg\":\"draining\"", absl::Seconds(5)).ok());
  ASSERT_TRUE(svc_.process->Signal(SIGTERM).ok());
  absl::StatusOr<int> code = svc_.process->Wait(absl::Seconds(3));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1);
  blocker.rollback();
  caller.join();
}

// QAI_RATE_LIMIT: a principal past its burst is refused with RESOURCE_EXHAUSTED and a
// RetryInfo of the wait, while another principal (and a SERVICE one) is served; after that
// wait the first one is served again.
TEST_F(ProjectsE2ETest, RateLimitRefusesOnePrincipalWithARetryDelayAndServesAnother) {
  ASSERT_TRUE(svc_.process->Signal(SIGTERM).ok());
  ASSERT_EQ(svc_.process->Wait(absl::Seconds(10)).value_or(-999), 0);
  StartProjects({{"QAI_RATE_LIMIT", "1"}, {"QAI_RATE_BURST", "3"}});
  auto list = [&](const std::string& sub) {
    grpc::ClientContext ctx;
    AsUser(ctx, sub);
    pb::ListProjectsResponse resp;
    return stub_->ListProjects(&ctx, pb::ListProjectsRequest(), &resp);
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(list("alice").ok()) << i;
  grpc::Status refused = list("alice");
  ASSERT_EQ(refused.error_code(), StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("QAI_RATE_LIMIT"), std::string::npos)
      << refused.error_message();
  std::optional<absl::Duration> delay = common::GetRetryDelay(common::FromGrpcStatus(refused));
  ASSERT_TRUE(delay.has_value());
  EXPECT_GT(*delay, absl::ZeroDuration());
  EXPECT_LE(*delay, absl::Seconds(1));
  // The detail is a standard google.rpc.RetryInfo in grpc-status-details-bin.
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(refused.error_details()));
  bool has_retry_info = false;
  for (const auto& any : details.details())
    has_retry_info = has_retry_info || any.Is<google::rpc::RetryInfo>();
  EXPECT_TRUE(has_retry_info);

  EXPECT_TRUE(list("bob").ok());
  std::this_thread::sleep_for(absl::ToChronoMilliseconds(*delay + absl::Milliseconds(50)));
  EXPECT_TRUE(list("alice").ok());
}

// Rate limiting is on by default (QAI_RATE_LIMIT 20/s, QAI_RATE_BURST 40): one user calling as
// fast as it can is refused once its burst is spent, while the tokens it was given stay within
// the burst plus the refill over the time it took.
TEST_F(ProjectsE2ETest, RateLimitIsOnByDefault) {
  ASSERT_TRUE(svc_.process->Signal(SIGTERM).ok());
  ASSERT_EQ(svc_.process->Wait(absl::Seconds(10)).value_or(-999), 0);
  StartProjects({{"QAI_RATE_LIMIT", kUnset}});
  const absl::Time start = absl::Now();
  int served = 0, refused = 0;
  for (int i = 0; i < 200; ++i) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    pb::ListProjectsResponse resp;
    grpc::Status s = stub_->ListProjects(&ctx, pb::ListProjectsRequest(), &resp);
    if (s.ok()) {
      ++served;
    } else {
      ASSERT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
      ++refused;
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  EXPECT_GE(served, 40);
  EXPECT_LE(served, 40 + 20 * seconds + 1) << "in " << seconds << " s";
  if (seconds < 7) {
    EXPECT_GT(refused, 0);
  }
}

// Wrong credentials are throttled per source (the last x-forwarded-for entry, which the edge
// appends, else the peer): after 30 failures a source's calls are refused before their
// credentials are read, good ones included, until a second has passed; other sources are
// served; the wrong keys never reach the log.
TEST_F(ProjectsE2ETest, FailedAuthenticationsAreThrottledPerSourceAndNeverLogged) {
  // list: ListProjects from `source` (none: the peer) with one credential header.
  auto list = [&](const std::string& source, const std::string& header, const std::string& value) {
    grpc::ClientContext ctx;
    if (!source.empty()) ctx.AddMetadata("x-forwarded-for", "10.9.9.9, " + source);
    ctx.AddMetadata(header, value);
    pb::ListProjectsResponse resp;
    return stub_->ListProjects(&ctx, pb::ListProjectsRequest(), &resp);
  };
  const std::string alice = "Bearer " + Token("alice");
  for (int i = 0; i < 30; ++i) {
    grpc::Status s =
        i % 2 == 0
            ? list("203.0.113.7", "x-api-key", "guessed-key-" + std::to_string(i))
            : list("203.0.113.7", "authorization", "Bearer guessed-token-" + std::to_string(i));
    ASSERT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << i << ": " << s.error_message();
  }
  grpc::Status refused = list("203.0.113.7", "authorization", alice);
  ASSERT_EQ(refused.error_code(), StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_THAT(refused.error_message(),
              ::testing::HasSubstr("too many failed authentications from 203.0.113.7"));
  std::optional<absl::Duration> delay = common::GetRetryDelay(common::FromGrpcStatus(refused));
  ASSERT_TRUE(delay.has_value());
  EXPECT_GT(*delay, absl::ZeroDuration());
  EXPECT_LE(*delay, absl::Seconds(1));

  EXPECT_TRUE(list("198.51.100.2", "authorization", alice).ok()) << "another source";
  EXPECT_TRUE(list("", "authorization", alice).ok()) << "the peer itself";
  std::this_thread::sleep_for(absl::ToChronoMilliseconds(*delay + absl::Milliseconds(50)));
  EXPECT_TRUE(list("203.0.113.7", "authorization", alice).ok()) << "after the delay";
  EXPECT_THAT(svc_.process->Output(), ::testing::Not(::testing::HasSubstr("guessed-")));
}

// A request larger than QAI_GRPC_MAX_MESSAGE_BYTES (capped at 256 KiB in qai-projects) is
// refused by gRPC itself, before any handler reads it.
TEST_F(ProjectsE2ETest, OverSizeRequestIsRefusedByGrpc) {
  pb::Project p;
  grpc::Status s = Create("alice", std::string(300 << 10, 'x'), &p);
  EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // The server is unharmed.
  MustCreate("alice");
}

}  // namespace
}  // namespace qai::testing
