// qai-messages and qai-projects as processes, with a fake (recording) orchestrator: the chain
// from a prompt to StartRun, exactly once whatever is down or killed; every RPC of
// MessageService and its bad inputs; ownership; SERVICE-only calls; DeleteProject's purge.

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "common/ids.h"
#include "common/status.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "services/orchestrator/client/run_settings.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/e2e/harness.h"
#include "tests/support/paths.h"
#include "tests/support/pg_server.h"
#include "tests/support/proc_status.h"

namespace qai::testing {
namespace {

namespace pb = qai::messages::v1;
namespace ppb = qai::projects::v1;
namespace opb = qai::orchestrator::v1;
using grpc::StatusCode;

// How long qai-messages trusts ProjectService's answer that a user owns a project, here
// (QAI_PROJECT_OWNER_TTL): a test that stops ProjectService waits this long to be asked again.
constexpr absl::Duration kOwnerTtl = absl::Seconds(1);

// FakeOrchestrator records StartRun and CancelProjectRuns calls and, like the real one, answers
// a repeated StartRun for a message with the same run.
// It answers CountActiveRuns with the counts set by SetActive, and refuses every StartRun with
// RESOURCE_EXHAUSTED while SetFull(true), as the real one does past a cap.
class FakeOrchestrator final : public opb::AgentOrchestrator::CallbackService {
 public:
  grpc::ServerUnaryReactor* StartRun(grpc::CallbackServerContext* ctx,
                                     const opb::StartRunRequest* req, opb::Run* resp) override {
    std::lock_guard lock(mu_);
    starts_.push_back(*req);
    auto* reactor = ctx->DefaultReactor();
    if (full_) {
      reactor->Finish(common::ToGrpcStatus(common::QuotaExceeded(
          "too many active runs", {{"project:" + req->project_id(), "at most 5"}})));
      return reactor;
    }
    auto [it, fresh] = runs_.try_emplace(req->message_id(), common::NewUuid());
    resp->set_id(it->second);
    resp->set_project_id(req->project_id());
    resp->set_message_id(req->message_id());
    resp->set_state(opb::Run::STATE_QUEUED);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* CountActiveRuns(grpc::CallbackServerContext* ctx,
                                            const opb::CountActiveRunsRequest* req,
                                            opb::CountActiveRunsResponse* resp) override {
    {
      std::lock_guard lock(mu_);
      counts_.push_back(*req);
      resp->set_project_active(active_.project);
      resp->set_principal_active(active_.principal);
    }
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  void SetActive(orchestrator::ActiveRuns active) {
    std::lock_guard lock(mu_);
    active_ = active;
  }
  void SetFull(bool full) {
    std::lock_guard lock(mu_);
    full_ = full;
  }
  std::vector<opb::CountActiveRunsRequest> counts() {
    std::lock_guard lock(mu_);
    return counts_;
  }
  grpc::ServerUnaryReactor* CancelProjectRuns(grpc::CallbackServerContext* ctx,
                                              const opb::CancelProjectRunsRequest* req,
                                              google::protobuf::Empty*) override {
    {
      std::lock_guard lock(mu_);
      cancels_.push_back(req->project_id());
    }
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::vector<opb::StartRunRequest> starts() {
    std::lock_guard lock(mu_);
    return starts_;
  }
  std::vector<std::string> cancels() {
    std::lock_guard lock(mu_);
    return cancels_;
  }
  std::string RunOf(const std::string& message_id) {
    std::lock_guard lock(mu_);
    auto it = runs_.find(message_id);
    return it == runs_.end() ? "" : it->second;
  }

 private:
  std::mutex mu_;
  std::vector<opb::StartRunRequest> starts_;
  std::vector<std::string> cancels_;
  std::map<std::string, std::string> runs_;
  std::vector<opb::CountActiveRunsRequest> counts_;
  orchestrator::ActiveRuns active_;
  bool full_ = false;
};

// Eventually: polls until `done` holds or the timeout passes; returns whether it held.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(15)) {
  const absl::Time until = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::vector<std::string> QuotaSubjects(const grpc::Status& status) {
  std::vector<std::string> subjects;
  for (const auto& v : common::GetQuotaViolations(common::FromGrpcStatus(status)))
    subjects.push_back(v.subject);
  return subjects;
}

std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> fields;
  for (const auto& v : common::GetFieldViolations(common::FromGrpcStatus(status)))
    fields.push_back(v.field);
  return fields;
}

class MessagesE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_url_ = PgServer::Shared().CreateDatabase();
    projects_port_ = FreePort();
    messages_port_ = FreePort();
    orchestrator_port_ = FreePort();
    StartProjects();
    StartMessages();
  }

  void StartProjects() {
    auto svc = StartService("services/projects/qai-projects",
                            {{"QAI_DATABASE_URL", db_url_},
                             {"QAI_LISTEN_ADDR", Local(projects_port_)},
                             {"QAI_MESSAGES_ADDR", Local(messages_port_)},
                             {"QAI_ORCHESTRATOR_ADDR", Local(orchestrator_port_)}});
    ASSERT_TRUE(svc.ok()) << svc.status();
    projects_ = std::move(*svc);
    projects_stub_ = ppb::ProjectService::NewStub(projects_.Channel());
  }

  void StartMessages(const EnvVars& extra = {}) {
    EnvVars env{{"QAI_DATABASE_URL", db_url_},
                {"QAI_LISTEN_ADDR", Local(messages_port_)},
                {"QAI_PROJECTS_ADDR", Local(projects_port_)},
                {"QAI_ORCHESTRATOR_ADDR", Local(orchestrator_port_)},
                // Retries stay frequent, so "delivered after the outage" is prompt.
                {"QAI_OUTBOX_MAX_BACKOFF", "1s"},
                {"QAI_PROJECT_OWNER_TTL", absl::StrCat(absl::ToInt64Seconds(kOwnerTtl), "s")}};
    env.insert(env.end(), extra.begin(), extra.end());
    auto svc = StartService("services/messages/qai-messages", env);
    ASSERT_TRUE(svc.ok()) << svc.status();
    messages_ = std::move(*svc);
    stub_ = pb::MessageService::NewStub(messages_.Channel());
  }

  std::unique_ptr<grpc::Server> StartOrchestrator(FakeOrchestrator* fake) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(Local(orchestrator_port_), grpc::InsecureServerCredentials());
    builder.RegisterService(fake);
    return builder.BuildAndStart();
  }

  static std::string Local(int port) { return "127.0.0.1:" + std::to_string(port); }

  ppb::Project CreateProject(const std::string& sub, const std::string& prompt) {
    grpc::ClientContext ctx;
    AsUser(ctx, sub);
    ppb::CreateProjectRequest req;
    req.set_initial_prompt(prompt);
    ppb::Project p;
    grpc::Status s = projects_stub_->CreateProject(&ctx, req, &p);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return p;
  }

  grpc::Status Send(const std::string& sub, const std::string& project, const std::string& content,
                    pb::Message* out = nullptr, const std::string& request_id = "") {
    grpc::ClientContext ctx;
    AsUser(ctx, sub);
    pb::CreateMessageRequest req;
    req.set_project_id(project);
    req.set_content(content);
    req.set_request_id(request_id);
    pb::Message ignored;
    return stub_->CreateMessage(&ctx, req, out ? out : &ignored);
  }

  // List: as the user `sub`, or as a service when it is empty.
  grpc::Status List(
      const std::string& sub, const std::string& project, pb::ListMessagesResponse* out,
      int page_size = 0, const std::string& token = "", const std::string& order_by = "",
      pb::ListMessagesRequest::View view = pb::ListMessagesRequest::VIEW_UNSPECIFIED) {
    grpc::ClientContext ctx;
    if (sub.empty()) {
      AsService(ctx, "orchestrator");
    } else {
      AsUser(ctx, sub);
    }
    pb::ListMessagesRequest req;
    req.set_project_id(project);
    req.set_page_size(page_size);
    req.set_page_token(token);
    req.set_order_by(order_by);
    req.set_view(view);
    return stub_->ListMessages(&ctx, req, out);
  }

  grpc::Status GetMessage(const std::string& sub, const std::string& id,
                          pb::Message* out = nullptr) {
    grpc::ClientContext ctx;
    AsUser(ctx, sub);
    pb::GetMessageRequest req;
    req.set_id(id);
    pb::Message ignored;
    return stub_->GetMessage(&ctx, req, out ? out : &ignored);
  }

  // Record: RecordAgentResult as a service (or as `user` when given).
  grpc::Status Record(const pb::RecordAgentResultRequest& req, pb::Message* out = nullptr,
                      const std::string& user = "") {
    grpc::ClientContext ctx;
    if (user.empty()) {
      AsService(ctx, "orchestrator");
    } else {
      AsUser(ctx, user);
    }
    pb::Message ignored;
    return stub_->RecordAgentResult(&ctx, req, out ? out : &ignored);
  }

  // FirstMessages: the project's messages once it has at least n (as its owner sees them).
  std::vector<pb::Message> WaitForMessages(const std::string& sub, const std::string& project,
                                           int n) {
    pb::ListMessagesResponse resp;
    Eventually([&] {
      resp.Clear();
      return List(sub, project, &resp).ok() && resp.messages_size() >= n;
    });
    return {resp.messages().begin(), resp.messages().end()};
  }

  int64_t CountRows(const std::string& sql) {
    soci::session s(soci::postgresql, db_url_);
    int64_t n = -1;
    s << sql, soci::into(n);
    return n;
  }

  pb::RecordAgentResultRequest Result(const std::string& project, const std::string& run) {
    pb::RecordAgentResultRequest req;
    req.set_run_id(run);
    req.set_project_id(project);
    req.set_content("Your todo app is ready.");
    req.set_type(pb::Message::TYPE_RESULT);
    pb::Fragment* f = req.mutable_fragment();
    f->set_title("Todo app");
    f->set_sandbox_url("http://localhost:8080/p/abc/");
    f->set_summary("A page with a list");
    (*f->mutable_files())["app/page.tsx"] = "export default function Page() { return <ul/>; }\n";
    return req;
  }

  std::string db_url_;
  int projects_port_ = 0, messages_port_ = 0, orchestrator_port_ = 0;
  RunningService projects_, messages_;
  std::unique_ptr<ppb::ProjectService::Stub> projects_stub_;
  std::unique_ptr<pb::MessageService::Stub> stub_;
};

TEST_F(MessagesE2ETest, InitialPromptBecomesTheFirstMessageAndStartsOneRun) {
  FakeOrchestrator orchestrator;
  auto server = StartOrchestrator(&orchestrator);
  ppb::Project p = CreateProject("alice", "Build a todo app");
  std::vector<pb::Message> messages = WaitForMessages("alice", p.id(), 1);
  ASSERT_EQ(messages.size(), 1u);
  const pb::Message& first = messages[0];
  EXPECT_EQ(first.content(), "Build a todo app");
  EXPECT_EQ(first.role(), pb::Message::ROLE_USER);
  EXPECT_EQ(first.type(), pb::Message::TYPE_RESULT);
  EXPECT_EQ(first.author(), "alice") << "a relayed prompt is the owner's";
  EXPECT_EQ(first.project_id(), p.id());

  ASSERT_TRUE(Eventually([&] { return !orchestrator.starts().empty(); }));
  // The run's id comes back onto the message.
  ASSERT_TRUE(Eventually([&] {
    pb::Message m;
    return GetMessage("alice", first.id(), &m).ok() && !m.run_id().empty();
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  std::vector<opb::StartRunRequest> starts = orchestrator.starts();
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].project_id(), p.id());
  EXPECT_EQ(starts[0].message_id(), first.id());
  EXPECT_EQ(starts[0].prompt(), "Build a todo app");
  EXPECT_TRUE(common::IsUuid(starts[0].request_id()));
  pb::Message m;
  ASSERT_TRUE(GetMessage("alice", first.id(), &m).ok());
  EXPECT_EQ(m.run_id(), orchestrator.RunOf(first.id()));
  server->Shutdown();
}

TEST_F(MessagesE2ETest, OrchestratorDownTenSecondsThenUpGetsStartRunOnce) {
  ppb::Project p = CreateProject("alice", "Build a blog");
  std::vector<pb::Message> messages = WaitForMessages("alice", p.id(), 1);
  ASSERT_EQ(messages.size(), 1u);
  std::this_thread::sleep_for(std::chrono::seconds(10));
  FakeOrchestrator orchestrator;
  const absl::Time up = absl::Now();
  auto server = StartOrchestrator(&orchestrator);
  ASSERT_TRUE(Eventually([&] { return !orchestrator.starts().empty(); }));
  const absl::Duration after = absl::Now() - up;
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_EQ(orchestrator.starts().size(), 1u);
  EXPECT_EQ(orchestrator.starts()[0].message_id(), messages[0].id());
  EXPECT_LT(after, absl::Seconds(5)) << "retries are capped by QAI_OUTBOX_MAX_BACKOFF";
  server->Shutdown();
}

TEST_F(MessagesE2ETest, KilledAfterCommitBeforeDeliveryDeliversOnceAfterRestart) {
  ppb::Project p = CreateProject("alice", "Build a shop");
  WaitForMessages("alice", p.id(), 1);  // the initial prompt first, then the follow-up
  pb::Message sent;
  ASSERT_TRUE(Send("alice", p.id(), "Add a cart", &sent).ok());
  WaitForMessages("alice", p.id(), 2);
  // Both StartRun rows are committed and undelivered (the orchestrator is down): kill -9.
  ASSERT_EQ(CountRows("SELECT count(*) FROM messages.outbox WHERE deliver_time IS NULL"), 2);
  ASSERT_TRUE(messages_.process->Kill().ok());
  ASSERT_TRUE(messages_.process->Wait(absl::Seconds(10)).ok());
  FakeOrchestrator orchestrator;
  auto server = StartOrchestrator(&orchestrator);
  StartMessages();
  ASSERT_TRUE(Eventually([&] { return orchestrator.starts().size() >= 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  std::vector<opb::StartRunRequest> starts = orchestrator.starts();
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[0].prompt(), "Build a shop") << "a project's runs are requested in order";
  EXPECT_EQ(starts[1].message_id(), sent.id());
  pb::ListMessagesResponse all;
  ASSERT_TRUE(List("alice", p.id(), &all).ok());
  EXPECT_EQ(all.messages_size(), 2) << "no message doubled";
  server->Shutdown();
}

TEST_F(MessagesE2ETest, SendListGetAndRepeatedRequestId) {
  ppb::Project p = CreateProject("alice", "first");
  WaitForMessages("alice", p.id(), 1);
  const std::string request = common::NewUuid();
  pb::Message a, again;
  ASSERT_TRUE(Send("alice", p.id(), "second", &a, request).ok());
  ASSERT_TRUE(Send("alice", p.id(), "second", &again, request).ok());
  EXPECT_EQ(again.id(), a.id());
  EXPECT_EQ(a.author(), "alice");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Send("alice", p.id(), "more " + std::to_string(i)).ok());
  // Pages of two, oldest first, five messages in all, none twice.
  std::vector<std::string> contents;
  std::string token;
  int pages = 0;
  do {
    pb::ListMessagesResponse page;
    ASSERT_TRUE(List("alice", p.id(), &page, 2, token).ok());
    for (const auto& m : page.messages()) contents.push_back(m.content());
    token = page.next_page_token();
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_EQ(contents, (std::vector<std::string>{"first", "second", "more 0", "more 1", "more 2"}));
  pb::Message got;
  ASSERT_TRUE(GetMessage("alice", a.id(), &got).ok());
  EXPECT_EQ(got.content(), "second");
  EXPECT_EQ(got.project_id(), p.id());
  EXPECT_TRUE(got.has_create_time());
}

TEST_F(MessagesE2ETest, NewestFirstPagesAndTheBasicViewWithoutFiles) {
  ppb::Project p = CreateProject("alice", "first");
  WaitForMessages("alice", p.id(), 1);
  ASSERT_TRUE(Record(Result(p.id(), common::NewUuid())).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Send("alice", p.id(), "more " + std::to_string(i)).ok());
  // Pages of two, newest first, the basic view: the fragment without its files.
  std::vector<std::string> contents;
  std::string token;
  int pages = 0;
  do {
    pb::ListMessagesResponse page;
    ASSERT_TRUE(List("alice", p.id(), &page, 2, token, "create_time desc",
                     pb::ListMessagesRequest::VIEW_BASIC)
                    .ok());
    for (const auto& m : page.messages()) {
      contents.push_back(m.content());
      if (m.has_fragment()) {
        EXPECT_EQ(m.fragment().title(), "Todo app");
        EXPECT_EQ(m.fragment().summary(), "A page with a list");
        EXPECT_TRUE(m.fragment().files().empty()) << "the basic view leaves the files out";
      }
    }
    token = page.next_page_token();
    if (pages == 0) {
      // A token continues only its own order.
      pb::ListMessagesResponse other;
      EXPECT_EQ(ViolatedFields(List("alice", p.id(), &other, 2, token)),
                std::vector<std::string>{"page_token"});
    }
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_EQ(contents, (std::vector<std::string>{"more 2", "more 1", "more 0",
                                                "Your todo app is ready.", "first"}));
  pb::ListMessagesResponse full;
  ASSERT_TRUE(List("alice", p.id(), &full, 0, "", "create_time").ok());
  ASSERT_EQ(full.messages_size(), 5);
  EXPECT_EQ(full.messages(1).fragment().files().size(), 1u)
      << "the full view (the default) has the files";
}

// A project whose 40 results each hold a 3 MiB file, and four ListMessages{page_size: 100} at
// once, grew qai-messages by ~900 MB: each call loaded every row's files before it cut the page
// at 3 MiB. A call now costs what it returns, and the unchanged file is stored once.
TEST_F(MessagesE2ETest, AListingCostsWhatItReturnsNotWhatTheProjectStores) {
  ppb::Project p = CreateProject("alice", "first");
  WaitForMessages("alice", p.id(), 1);
  const std::string big((3 << 20) - 1024, 'b');
  constexpr int kResults = 40;
  for (int i = 0; i < kResults; ++i) {
    pb::RecordAgentResultRequest r = Result(p.id(), common::NewUuid());
    (*r.mutable_fragment()->mutable_files())["big.js"] = big;
    ASSERT_TRUE(Record(r).ok());
  }
  EXPECT_LT(CountRows("SELECT sum(octet_length(content)) FROM messages.file_contents"), 4 << 20)
      << "the file that did not change is stored once";

  const int pid = messages_.process->pid();
  std::ofstream(absl::StrCat("/proc/", pid, "/clear_refs"))
      << "5";  // the peak starts again from here
  absl::StatusOr<int64_t> before = ProcessStatusKiB(pid, "VmRSS");
  ASSERT_TRUE(before.ok()) << before.status();
  std::atomic<int> full_pages = 0;
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&] {
      pb::ListMessagesResponse page;
      grpc::Status s = List("alice", p.id(), &page, 100);
      // The prompt and the first result: the next result would pass 3 MiB.
      if (s.ok() && page.messages_size() == 2 &&
          page.messages(1).fragment().files().at("big.js") == big &&
          !page.next_page_token().empty()) {
        ++full_pages;
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(full_pages, 4);
  absl::StatusOr<int64_t> peak = ProcessStatusKiB(pid, "VmHWM");
  ASSERT_TRUE(peak.ok()) << peak.status();
  EXPECT_LT(*peak - *before, 150 << 10) << "KiB more at the peak than before the four calls";

  // Every message comes, each fragment with its files, a page at a time.
  int messages = 0, pages = 0;
  std::string token;
  do {
    pb::ListMessagesResponse page;
    ASSERT_TRUE(List("alice", p.id(), &page, 100, token).ok());
    for (const pb::Message& m : page.messages()) {
      if (m.has_fragment()) {
        EXPECT_EQ(m.fragment().files().size(), 2u);
      }
      ++messages;
    }
    token = page.next_page_token();
    ASSERT_LT(++pages, 100);
  } while (!token.empty());
  EXPECT_EQ(messages, kResults + 1);
}

TEST_F(MessagesE2ETest, BadInputsNameTheirFields) {
  ppb::Project p = CreateProject("alice", "x");
  pb::Message out;
  grpc::Status s = Send("alice", "not-a-uuid", "   ", &out, "nope");
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(s), (std::vector<std::string>{"project_id", "content", "request_id"}));
  EXPECT_EQ(ViolatedFields(Send("alice", p.id(), std::string(10001, 'a'))),
            std::vector<std::string>{"content"});
  EXPECT_EQ(ViolatedFields(Send("alice", p.id(), "")), std::vector<std::string>{"content"});
  EXPECT_EQ(ViolatedFields(Send("alice", p.id(), std::string("nul \0 inside", 13))),
            std::vector<std::string>{"content"});
  EXPECT_TRUE(Send("alice", p.id(), std::string(10000, 'a')).ok())
      << "10,000 characters is the limit, not over it";
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    pb::CreateMessageRequest req;
    req.set_project_id(p.id());
    req.set_content("mine, says bob");
    req.set_owner("bob");
    pb::Message ignored;
    EXPECT_EQ(ViolatedFields(stub_->CreateMessage(&ctx, req, &ignored)),
              std::vector<std::string>{"owner"})
        << "only a relaying service names the owner";
  }
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    pb::CreateMessageRequest req;
    req.set_project_id(p.id());
    req.set_content("copy another project into mine");
    req.mutable_fork_of()->set_project_id(p.id());
    req.mutable_fork_of()->set_version(1);
    pb::Message ignored;
    EXPECT_EQ(ViolatedFields(stub_->CreateMessage(&ctx, req, &ignored)),
              std::vector<std::string>{"fork_of"})
        << "only ProjectService relaying a fork names what it starts from";
  }

  pb::ListMessagesResponse page;
  EXPECT_EQ(ViolatedFields(List("alice", p.id(), &page, -1)),
            std::vector<std::string>{"page_size"});
  EXPECT_EQ(ViolatedFields(List("alice", p.id(), &page, 0, "garbage")),
            std::vector<std::string>{"page_token"});
  EXPECT_EQ(ViolatedFields(List("alice", "", &page)), std::vector<std::string>{"project_id"});
  EXPECT_EQ(ViolatedFields(List("alice", p.id(), &page, 0, "", "create_time; drop table",
                                static_cast<pb::ListMessagesRequest::View>(7))),
            (std::vector<std::string>{"order_by", "view"}));
  EXPECT_EQ(ViolatedFields(GetMessage("alice", "123")), std::vector<std::string>{"id"});

  pb::RecordAgentResultRequest bad = Result("x", "y");
  bad.set_content("");
  bad.set_type(pb::Message::TYPE_UNSPECIFIED);
  (*bad.mutable_fragment()->mutable_files())["../etc/passwd"] = "x";
  bad.mutable_fragment()->set_sandbox_url("javascript:alert(1)");
  EXPECT_EQ(ViolatedFields(Record(bad)),
            (std::vector<std::string>{"run_id", "project_id", "content", "type",
                                      "fragment.sandbox_url", "fragment.files"}));
  pb::RecordAgentResultRequest error_with_fragment = Result(p.id(), common::NewUuid());
  error_with_fragment.set_type(pb::Message::TYPE_ERROR);
  EXPECT_EQ(ViolatedFields(Record(error_with_fragment)), std::vector<std::string>{"fragment"});

  pb::PurgeProjectMessagesRequest purge;
  grpc::ClientContext ctx;
  AsService(ctx, "projects");
  google::protobuf::Empty empty;
  EXPECT_EQ(ViolatedFields(stub_->PurgeProjectMessages(&ctx, purge, &empty)),
            std::vector<std::string>{"project_id"});
}

TEST_F(MessagesE2ETest, RunSettingsAreCheckedAgainstTheBoundsAndPassedOnToStartRun) {
  ASSERT_TRUE(messages_.process->Kill().ok());
  ASSERT_TRUE(messages_.process->Wait(absl::Seconds(10)).ok());
  StartMessages({{"QAI_RUN_MAX_ITERATIONS", "20"},
                 {"QAI_RUN_MAX_TIMEOUT", "1h"},
                 {"QAI_MODEL_ALLOWED", "fast,slow"}});
  FakeOrchestrator orchestrator;
  auto server = StartOrchestrator(&orchestrator);
  ppb::Project p = CreateProject("alice", "Build a shop");
  ASSERT_TRUE(Eventually([&] { return orchestrator.starts().size() == 1; }));
  // A prompt that asks for nothing leaves the defaults to the orchestrator.
  const opb::StartRunRequest plain = orchestrator.starts()[0];
  EXPECT_EQ(plain.max_iterations(), 0);
  EXPECT_EQ(plain.model(), "");
  EXPECT_FALSE(plain.has_timeout());

  auto send = [&](int iterations, const std::string& model, int64_t timeout_seconds) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    pb::CreateMessageRequest req;
    req.set_project_id(p.id());
    req.set_content("Add a cart");
    req.set_max_iterations(iterations);
    req.set_model(model);
    req.mutable_run_timeout()->set_seconds(timeout_seconds);
    pb::Message out;
    return stub_->CreateMessage(&ctx, req, &out);
  };
  grpc::Status refused = send(21, "huge", 3601);
  EXPECT_EQ(refused.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(refused),
            (std::vector<std::string>{"max_iterations", "model", "run_timeout"}));
  EXPECT_NE(refused.error_message().find("must be one of: builtin, fast, slow"), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(ViolatedFields(send(-1, "", 0)), std::vector<std::string>{"max_iterations"});
  EXPECT_EQ(ViolatedFields(send(0, "", -5)), std::vector<std::string>{"run_timeout"});
  pb::ListMessagesResponse all;
  ASSERT_TRUE(List("alice", p.id(), &all).ok());
  EXPECT_EQ(all.messages_size(), 1) << "a refused message is not stored";

  ASSERT_TRUE(send(20, "slow", 3600).ok());
  ASSERT_TRUE(send(0, "builtin", 0).ok()) << "the default model is always allowed";
  ASSERT_TRUE(Eventually([&] { return orchestrator.starts().size() == 3; }));
  const opb::StartRunRequest chosen = orchestrator.starts()[1];
  EXPECT_EQ(chosen.max_iterations(), 20);
  EXPECT_EQ(chosen.model(), "slow");
  EXPECT_EQ(chosen.timeout().seconds(), 3600);
  EXPECT_EQ(orchestrator.starts()[2].model(), "builtin");
  server->Shutdown();
}

TEST_F(MessagesE2ETest, OwnershipAndServiceOnlyCalls) {
  ppb::Project p = CreateProject("alice", "mine");
  std::vector<pb::Message> messages = WaitForMessages("alice", p.id(), 1);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(Send("mallory", p.id(), "hi").error_code(), StatusCode::NOT_FOUND);
  pb::ListMessagesResponse page;
  EXPECT_EQ(List("mallory", p.id(), &page).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(GetMessage("mallory", messages[0].id()).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Send("alice", common::NewUuid(), "no such project").error_code(),
            StatusCode::NOT_FOUND);
  {  // An admin sees it.
    grpc::ClientContext ctx;
    AsAdmin(ctx, "root");
    pb::GetMessageRequest req;
    req.set_id(messages[0].id());
    pb::Message m;
    EXPECT_TRUE(stub_->GetMessage(&ctx, req, &m).ok());
  }
  {  // No credentials at all.
    grpc::ClientContext ctx;
    pb::GetMessageRequest req;
    req.set_id(messages[0].id());
    pb::Message m;
    EXPECT_EQ(stub_->GetMessage(&ctx, req, &m).error_code(), StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(Record(Result(p.id(), common::NewUuid()), nullptr, "alice").error_code(),
            StatusCode::PERMISSION_DENIED);
  grpc::ClientContext ctx;
  AsUser(ctx, "alice");
  pb::PurgeProjectMessagesRequest purge;
  purge.set_project_id(p.id());
  google::protobuf::Empty empty;
  EXPECT_EQ(stub_->PurgeProjectMessages(&ctx, purge, &empty).error_code(),
            StatusCode::PERMISSION_DENIED);
  // A service key reaches only what its service needs: the orchestrator's cannot purge (only
  // DeleteProject, through qai-projects, does), the sandbox's cannot read anyone's messages.
  {
    grpc::ClientContext as_orchestrator;
    AsService(as_orchestrator, "orchestrator");
    grpc::Status s = stub_->PurgeProjectMessages(&as_orchestrator, purge, &empty);
    EXPECT_EQ(s.error_code(), StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(s.error_message(),
              "PurgeProjectMessages may not be called with the orchestrator service's key");
    grpc::ClientContext as_sandbox;
    AsService(as_sandbox, "sandbox");
    pb::ListMessagesRequest list;
    list.set_project_id(p.id());
    EXPECT_EQ(stub_->ListMessages(&as_sandbox, list, &page).error_code(),
              StatusCode::PERMISSION_DENIED);
    grpc::ClientContext as_projects;
    AsService(as_projects, "projects");
    EXPECT_EQ(
        stub_->RecordAgentResult(&as_projects, Result(p.id(), common::NewUuid()), &messages[0])
            .error_code(),
        StatusCode::PERMISSION_DENIED);
  }
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.messages"), 1)
      << "refused calls change nothing";
}

TEST_F(MessagesE2ETest, RecordAgentResultTwiceStoresOneMessage) {
  ppb::Project p = CreateProject("alice", "Build a todo app");
  WaitForMessages("alice", p.id(), 1);
  const std::string run = common::NewUuid();
  pb::Message first, second;
  ASSERT_TRUE(Record(Result(p.id(), run), &first).ok());
  pb::RecordAgentResultRequest changed = Result(p.id(), run);
  changed.set_content("something else");
  ASSERT_TRUE(Record(changed, &second).ok());
  EXPECT_EQ(second.id(), first.id());
  EXPECT_EQ(second.content(), "Your todo app is ready.");
  EXPECT_EQ(first.role(), pb::Message::ROLE_ASSISTANT);
  EXPECT_EQ(first.run_id(), run);
  EXPECT_EQ(first.fragment().title(), "Todo app");
  EXPECT_EQ(first.fragment().message_id(), first.id());
  std::vector<pb::Message> messages = WaitForMessages("alice", p.id(), 2);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1].id(), first.id());
  EXPECT_EQ(messages[1].fragment().files().at("app/page.tsx"),
            "export default function Page() { return <ul/>; }\n");
}

TEST_F(MessagesE2ETest, DeleteProjectPurgesMessagesAndCancelsRuns) {
  FakeOrchestrator orchestrator;
  auto server = StartOrchestrator(&orchestrator);
  ppb::Project p = CreateProject("alice", "Build a todo app");
  std::vector<pb::Message> messages = WaitForMessages("alice", p.id(), 1);
  ASSERT_EQ(messages.size(), 1u);
  ASSERT_TRUE(Record(Result(p.id(), common::NewUuid())).ok());
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    ppb::DeleteProjectRequest req;
    req.set_id(p.id());
    google::protobuf::Empty empty;
    ASSERT_TRUE(projects_stub_->DeleteProject(&ctx, req, &empty).ok());
  }
  ASSERT_TRUE(Eventually([&] { return CountRows("SELECT count(*) FROM messages.messages") == 0; }));
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.fragments"), 0);
  ASSERT_TRUE(Eventually([&] { return !orchestrator.cancels().empty(); }));
  EXPECT_EQ(orchestrator.cancels(), std::vector<std::string>{p.id()});
  EXPECT_EQ(GetMessage("alice", messages[0].id()).error_code(), StatusCode::NOT_FOUND);
  pb::ListMessagesResponse page;
  EXPECT_EQ(List("alice", p.id(), &page).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(List("", p.id(), &page).error_code(), StatusCode::NOT_FOUND)
      << "nor to the orchestrator";
  EXPECT_EQ(Send("alice", p.id(), "too late").error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Record(Result(p.id(), common::NewUuid())).error_code(), StatusCode::NOT_FOUND);
  server->Shutdown();
}

TEST_F(MessagesE2ETest, ProjectsDownMeansUnavailableAndNothingWritten) {
  ppb::Project p = CreateProject("alice", "x");
  WaitForMessages("alice", p.id(), 1);
  ASSERT_TRUE(projects_.process->Kill().ok());
  ASSERT_TRUE(projects_.process->Wait(absl::Seconds(10)).ok());
  absl::SleepFor(kOwnerTtl);  // projects' last word on alice's project is no longer trusted
  grpc::Status s = Send("alice", p.id(), "while projects is down");
  EXPECT_EQ(s.error_code(), StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.messages"), 1);
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.outbox"), 1);
  StartProjects();
  EXPECT_TRUE(Eventually([&] { return Send("alice", p.id(), "after").ok(); }));
}

TEST_F(MessagesE2ETest, ARelayedFirstPromptNamesItsOwnerAndNeedsNoProjectService) {
  ppb::Project p = CreateProject("alice", "x");
  WaitForMessages("alice", p.id(), 1);
  ASSERT_TRUE(projects_.process->Kill().ok());
  ASSERT_TRUE(projects_.process->Wait(absl::Seconds(10)).ok());
  // As ProjectService's outbox relays a first prompt: the owner named, nobody asked back.
  auto relay = [&](const std::string& owner, pb::Message* out) {
    grpc::ClientContext ctx;
    AsService(ctx, "projects");
    pb::CreateMessageRequest req;
    req.set_project_id(p.id());
    req.set_content("relayed");
    req.set_owner(owner);
    req.set_request_id(common::NewUuid());
    return stub_->CreateMessage(&ctx, req, out);
  };
  pb::Message stored;
  grpc::Status s = relay("alice", &stored);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stored.author(), "alice");
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.messages WHERE owner = 'alice'"), 2);
  // A relayed prompt without an owner (a row written before the field) is vouched for by
  // ProjectService, which is down.
  EXPECT_EQ(relay("", &stored).error_code(), StatusCode::UNAVAILABLE);
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.messages"), 2);
  StartProjects();
}

TEST_F(MessagesE2ETest, AnAgentsHistoryNeedsNoProjectServiceButAnUnknownProjectDoes) {
  ppb::Project p = CreateProject("alice", "x");
  WaitForMessages("alice", p.id(), 1);
  ASSERT_TRUE(projects_.process->Kill().ok());
  ASSERT_TRUE(projects_.process->Wait(absl::Seconds(10)).ok());
  pb::ListMessagesResponse page;
  grpc::Status s = List("", p.id(), &page);
  ASSERT_TRUE(s.ok()) << "a service reads a project with messages from the messages: "
                      << s.error_message();
  EXPECT_EQ(page.messages_size(), 1);
  absl::SleepFor(kOwnerTtl);  // projects' last word on alice's project is no longer trusted
  EXPECT_EQ(List("alice", p.id(), &page).error_code(), StatusCode::UNAVAILABLE)
      << "a user is vouched for by projects";
  const std::string unknown = common::NewUuid();
  EXPECT_EQ(List("", unknown, &page).error_code(), StatusCode::UNAVAILABLE)
      << "a project without messages is asked about";
  StartProjects();
  EXPECT_TRUE(
      Eventually([&] { return List("", unknown, &page).error_code() == StatusCode::NOT_FOUND; }));
}

TEST_F(MessagesE2ETest, DatabaseDownMeansUnavailableThenRecovers) {
  ppb::Project p = CreateProject("alice", "x");
  WaitForMessages("alice", p.id(), 1);
  ASSERT_TRUE(PgServer::Shared().Stop().ok());
  grpc::Status s = Send("alice", p.id(), "while the database is down");
  EXPECT_EQ(s.error_code(), StatusCode::UNAVAILABLE) << s.error_message();
  ASSERT_TRUE(PgServer::Shared().Start().ok());
  EXPECT_TRUE(Eventually([&] { return Send("alice", p.id(), "after").ok(); }));
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.messages"), 2);
  EXPECT_TRUE(messages_.process->Running());
}

TEST_F(MessagesE2ETest, APromptPastACapIsRefusedAtOnceAndWritesNothing) {
  FakeOrchestrator orchestrator;
  auto server = StartOrchestrator(&orchestrator);
  ppb::Project p = CreateProject("alice", "Build a todo app");
  WaitForMessages("alice", p.id(), 1);
  ASSERT_TRUE(Eventually([&] {
    return CountRows("SELECT count(*) FROM messages.outbox WHERE deliver_time IS NULL") == 0;
  }));

  // The orchestrator says the project has 5 runs queued or running (the default cap).
  orchestrator.SetActive({.project = 5, .principal = 5});
  grpc::Status s = Send("alice", p.id(), "Add a gallery");
  EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("QAI_RUN_MAX_ACTIVE_PER_PROJECT"), std::string::npos)
      << s.error_message();
  EXPECT_EQ(QuotaSubjects(s), std::vector<std::string>{"project:" + p.id()});
  ASSERT_FALSE(orchestrator.counts().empty());
  EXPECT_EQ(orchestrator.counts().back().project_id(), p.id());
  EXPECT_EQ(orchestrator.counts().back().author(), "alice");
  // alice has 20 runs over her projects (the default cap per principal).
  orchestrator.SetActive({.project = 0, .principal = 20});
  const std::string request = common::NewUuid();
  s = Send("alice", p.id(), "Add a gallery", nullptr, request);
  EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_EQ(QuotaSubjects(s), std::vector<std::string>{"principal:alice"});
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.messages"), 1) << "nothing written";
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.outbox"), 1);
  EXPECT_EQ(
      CountRows("SELECT count(*) FROM messages.idempotency WHERE request_id = '" + request + "'"),
      0);

  // Room again: the same request goes through, and its StartRun names its author.
  orchestrator.SetActive({.project = 4, .principal = 19});
  pb::Message sent;
  ASSERT_TRUE(Send("alice", p.id(), "Add a gallery", &sent, request).ok());
  ASSERT_TRUE(Eventually([&] { return orchestrator.starts().size() >= 2; }));
  EXPECT_EQ(orchestrator.starts().back().message_id(), sent.id());
  EXPECT_EQ(orchestrator.starts().back().author(), "alice");
  server->Shutdown();
}

TEST_F(MessagesE2ETest, OrchestratorDownPromptsAreTakenAndTheirUndeliveredRowsCount) {
  // No orchestrator listens: CreateMessage cannot ask it, and goes on with the outbox's count.
  ppb::Project p = CreateProject("alice", "Build a blog");
  WaitForMessages("alice", p.id(), 1);
  for (int i = 0; i < 4; ++i) {
    grpc::Status s = Send("alice", p.id(), "more " + std::to_string(i));
    ASSERT_TRUE(s.ok()) << i << ": " << s.error_message();
  }
  // Five StartRuns of the project wait in the outbox: a sixth would pass the cap.
  ASSERT_EQ(CountRows("SELECT count(*) FROM messages.outbox WHERE deliver_time IS NULL"), 5);
  grpc::Status s = Send("alice", p.id(), "one too many");
  EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_EQ(QuotaSubjects(s), std::vector<std::string>{"project:" + p.id()});
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.messages"), 5);
  // Once they are delivered, there is room again.
  FakeOrchestrator orchestrator;
  auto server = StartOrchestrator(&orchestrator);
  ASSERT_TRUE(Eventually([&] {
    return CountRows("SELECT count(*) FROM messages.outbox WHERE deliver_time IS NULL") == 0;
  }));
  EXPECT_TRUE(Send("alice", p.id(), "now there is room").ok());
  server->Shutdown();
}

TEST_F(MessagesE2ETest, AStartRunRefusedPastACapStaysInTheOutboxUntilThereIsRoom) {
  FakeOrchestrator orchestrator;
  orchestrator.SetFull(true);
  auto server = StartOrchestrator(&orchestrator);
  ppb::Project p = CreateProject("alice", "Build a shop");
  std::vector<pb::Message> messages = WaitForMessages("alice", p.id(), 1);
  // Refused again and again (QAI_OUTBOX_MAX_BACKOFF is 1s here), never parked.
  ASSERT_TRUE(Eventually([&] { return orchestrator.starts().size() >= 3; }));
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.outbox WHERE deliver_time IS NULL"
                      " AND next_attempt_time <> 'infinity' AND attempts >= 2 AND last_error LIKE "
                      "'%too many%'"),
            1);
  orchestrator.SetFull(false);
  ASSERT_TRUE(Eventually([&] {
    pb::Message m;
    return GetMessage("alice", messages[0].id(), &m).ok() && !m.run_id().empty();
  }));
  EXPECT_EQ(CountRows("SELECT count(*) FROM messages.outbox WHERE deliver_time IS NULL"), 0);
  server->Shutdown();
}

}  // namespace
}  // namespace qai::testing
