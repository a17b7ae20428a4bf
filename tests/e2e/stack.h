#pragma once
// StackTest: the whole suite as processes for end-to-end tests (qai-projects, qai-messages, two
// qai-orchestrator replicas with the builtin model, and qai-sandbox replicas with their
// previews) on a private PostgreSQL database, with the calls the tests make of it.

#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/ids.h"
#include "common/status.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/e2e/harness.h"
#include "tests/support/paths.h"
#include "tests/support/pg_server.h"

namespace qai::testing {

namespace ppb = qai::projects::v1;
namespace mpb = qai::messages::v1;
namespace opb = qai::orchestrator::v1;
using grpc::StatusCode;

inline std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> fields;
  for (const auto& v : common::GetFieldViolations(common::FromGrpcStatus(status)))
    fields.push_back(v.field);
  return fields;
}

inline absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

inline bool Eventually(const std::function<bool()>& done,
                       absl::Duration timeout = absl::Seconds(30)) {
  const absl::Time until = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

inline std::string Local(int port) { return "127.0.0.1:" + std::to_string(port); }

class StackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_url_ = PgServer::Shared().CreateDatabase();
    projects_port_ = FreePort();
    messages_port_ = FreePort();
    orchestrator_ports_ = {FreePort(), FreePort()};
    EnvVars projects_env{{"QAI_DATABASE_URL", db_url_},
                         {"QAI_LISTEN_ADDR", Local(projects_port_)},
                         {"QAI_MESSAGES_ADDR", Local(messages_port_)},
                         {"QAI_ORCHESTRATOR_ADDR", Local(orchestrator_ports_[0])}};
    for (const auto& [name, value] : shared_env_) {
      if (name == "QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL") projects_env.emplace_back(name, value);
    }
    auto projects = StartService("services/projects/qai-projects", projects_env);
    ASSERT_TRUE(projects.ok()) << projects.status();
    projects_ = std::move(*projects);
    StartMessages();
    sandboxes_.resize(sandbox_replicas_);
    for (size_t i = 0; i < sandboxes_.size(); ++i) {
      sandboxes_[i] = {.root = ::testing::TempDir() + "/qai-sandbox-" + common::NewUuid(),
                       .port = FreePort(),
                       .preview_port = FreePort()};
      StartSandbox(i);
    }
    orchestrators_.resize(2);
    StartOrchestrator(0);
    projects_stub_ = ppb::ProjectService::NewStub(projects_.Channel());
    messages_stub_ = mpb::MessageService::NewStub(messages_.Channel());
  }

  void StartMessages() {
    EnvVars env{{"QAI_DATABASE_URL", db_url_},
                {"QAI_LISTEN_ADDR", Local(messages_port_)},
                {"QAI_PROJECTS_ADDR", Local(projects_port_)},
                {"QAI_ORCHESTRATOR_ADDR", Local(orchestrator_ports_[0])},
                {"QAI_OUTBOX_MAX_BACKOFF", "1s"}};
    env.insert(env.end(), shared_env_.begin(), shared_env_.end());
    auto messages = StartService("services/messages/qai-messages", env);
    ASSERT_TRUE(messages.ok()) << messages.status();
    messages_ = std::move(*messages);
  }

  // StartABakeryRunInItsCheck: a project whose run is in iteration 3, where the builtin's check
  // command (`sleep 4`) runs in the sandbox: its page is written by then.
  void StartABakeryRunInItsCheck(ppb::Project* p, std::vector<opb::Run>* runs) {
    *p = CreateProject("Build a bakery site [[sleep 4]]");
    *runs = WaitForRuns(p->id(), 1);
    ASSERT_EQ(runs->size(), 1u);
    ASSERT_TRUE(Eventually([&] {
      auto r = Runs(p->id());
      return !r.empty() && r[0].state() == opb::Run::STATE_RUNNING && r[0].iteration() >= 3;
    }));
  }

  // ExpectResumedOnce: the run ends SUCCEEDED on attempt `attempt` (2 after its worker was
  // lost; 1 after a dependency failed, which costs no attempt), with one ASSISTANT message and
  // its events (into *events) numbered 1..N without a gap.
  opb::Run ExpectResumedOnce(const std::string& run_id, const std::string& project_id,
                             std::vector<opb::RunEvent>* events, int attempt = 2) {
    opb::Run run = WaitForEnd(run_id, absl::Seconds(90));
    EXPECT_EQ(run.state(), opb::Run::STATE_SUCCEEDED) << run.error();
    EXPECT_EQ(run.attempt(), attempt);
    EXPECT_EQ(AssistantCount(Messages(project_id)), 1);
    EXPECT_TRUE(Watch(run.id(), 0, events).ok());
    for (size_t i = 0; i < events->size(); ++i)
      EXPECT_EQ((*events)[i].sequence(), static_cast<int64_t>(i + 1));
    return run;
  }

  // StartSandbox: sandbox replica i (bubblewrap, as shipped), named sandbox-<i>, on its port, its
  // workspaces under its root.
  void StartSandbox(size_t i) {
    SandboxReplica& r = sandboxes_[i];
    EnvVars env{{"QAI_DATABASE_URL", db_url_},
                {"QAI_LISTEN_ADDR", Local(r.port)},
                {"QAI_SANDBOX_ROOT", r.root},
                {"QAI_PREVIEW_ADDR", Local(r.preview_port)},
                {"QAI_REPLICA_NAME", absl::StrCat("sandbox-", i)},
                {"QAI_DRAIN_TIMEOUT", "2s"}};
    if (sandboxes_.size() > 1) env.push_back({"QAI_REPLICA_ADDR", Local(r.port)});
    env.insert(env.end(), sandbox_env_.begin(), sandbox_env_.end());
    auto svc = StartService("services/sandbox/qai-sandbox", env);
    ASSERT_TRUE(svc.ok()) << svc.status();
    r.service = std::move(*svc);
  }

  // KillSandbox: sandbox replica i is killed (SIGKILL).
  void KillSandbox(size_t i) {
    ASSERT_TRUE(sandboxes_[i].service.process->Kill().ok());
    ASSERT_TRUE(sandboxes_[i].service.process->Wait(absl::Seconds(10)).ok());
  }

  // LoseSandboxMachine: the (only) sandbox replica is killed and comes back on a new disk.
  void LoseSandboxMachine() {
    KillSandbox(0);
    std::filesystem::remove_all(sandboxes_[0].root);
    StartSandbox(0);
  }

  // SandboxTarget: the orchestrators' way to the sandbox tier (any replica).
  std::string SandboxTarget() const {
    if (sandboxes_.size() == 1) return Local(sandboxes_[0].port);
    std::vector<std::string> addrs;
    for (const SandboxReplica& r : sandboxes_) addrs.push_back(Local(r.port));
    return absl::StrCat("ipv4:", absl::StrJoin(addrs, ","));
  }

  // ServingReplica: the name of the sandbox replica the project is assigned to ("" none).
  std::string ServingReplica(const std::string& project_id) {
    soci::session s(soci::postgresql, db_url_);
    std::string name;
    s << "SELECT r.name FROM sandbox.assignments a JOIN sandbox.replicas r ON r.id = a.replica_id"
         " WHERE a.project_id = CAST(:p AS uuid)",
        soci::use(project_id), soci::into(name);
    return name;
  }

  void StartOrchestrator(int i, const EnvVars& extra = {}) {
    EnvVars env{{"QAI_DATABASE_URL", db_url_},
                {"QAI_LISTEN_ADDR", Local(orchestrator_ports_[i])},
                {"QAI_PROJECTS_ADDR", Local(projects_port_)},
                {"QAI_MESSAGES_ADDR", Local(messages_port_)},
                {"QAI_SANDBOX_ADDR", SandboxTarget()},
                {"QAI_RUN_LEASE", "2s"},
                {"QAI_DRAIN_TIMEOUT", "2s"}};
    env.insert(env.end(), extra.begin(), extra.end());
    env.insert(env.end(), orchestrator_env_.begin(), orchestrator_env_.end());
    env.insert(env.end(), shared_env_.begin(), shared_env_.end());
    auto svc = StartService("services/orchestrator/qai-orchestrator", env);
    ASSERT_TRUE(svc.ok()) << svc.status();
    orchestrators_[i] = std::move(*svc);
    stubs_[i] = opb::AgentOrchestrator::NewStub(orchestrators_[i].Channel());
  }

  ppb::Project CreateProject(const std::string& prompt, const std::string& sub = "alice",
                             const std::string& request_id = "") {
    grpc::ClientContext ctx;
    AsUser(ctx, sub);
    ppb::CreateProjectRequest req;
    req.set_initial_prompt(prompt);
    req.set_request_id(request_id);
    ppb::Project p;
    grpc::Status s = projects_stub_->CreateProject(&ctx, req, &p);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return p;
  }

  std::vector<opb::Run> Runs(const std::string& project, int replica = 0,
                             const std::string& sub = "alice") {
    grpc::ClientContext ctx;
    AsUser(ctx, sub);
    opb::ListRunsRequest req;
    req.set_project_id(project);
    opb::ListRunsResponse resp;
    if (!stubs_[replica]->ListRuns(&ctx, req, &resp).ok()) return {};
    return {resp.runs().begin(), resp.runs().end()};
  }

  // WaitForRuns: the project's runs (newest first) once it has n of them.
  std::vector<opb::Run> WaitForRuns(const std::string& project, size_t n) {
    std::vector<opb::Run> runs;
    Eventually([&] { return (runs = Runs(project)).size() >= n; });
    return runs;
  }

  opb::Run WaitForEnd(const std::string& run_id, absl::Duration timeout = absl::Seconds(60)) {
    opb::Run run;
    Eventually(
        [&] {
          grpc::ClientContext ctx;
          AsUser(ctx, "alice");
          opb::GetRunRequest req;
          req.set_id(run_id);
          return stubs_[0]->GetRun(&ctx, req, &run).ok() &&
                 run.state() >= opb::Run::STATE_SUCCEEDED;
        },
        timeout);
    return run;
  }

  // Watch: every event of the stream, and its final status.
  grpc::Status Watch(const std::string& run_id, int64_t after, std::vector<opb::RunEvent>* events,
                     int replica = 0) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
    opb::WatchRunRequest req;
    req.set_run_id(run_id);
    req.set_after_sequence(after);
    auto reader = stubs_[replica]->WatchRun(&ctx, req);
    opb::RunEvent e;
    while (reader->Read(&e)) events->push_back(e);
    return reader->Finish();
  }

  opb::ListVersionsResponse ListVersions(const std::string& project) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    opb::ListVersionsRequest req;
    req.set_project_id(project);
    opb::ListVersionsResponse resp;
    grpc::Status s = stubs_[0]->ListVersions(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  // Diff: from version `from` to version `to`, or to the draft of run `draft` when given.
  opb::DiffVersionsResponse Diff(const std::string& project, int from, int to,
                                 const std::string& draft = "") {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    opb::DiffVersionsRequest req;
    req.set_project_id(project);
    req.mutable_from()->set_number(from);
    if (draft.empty()) {
      req.mutable_to()->set_number(to);
    } else {
      req.mutable_to()->set_draft_of_run(draft);
    }
    opb::DiffVersionsResponse resp;
    grpc::Status s = stubs_[0]->DiffVersions(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  opb::Version GetVersion(const std::string& project, int number,
                          opb::GetVersionRequest::View view) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    opb::GetVersionRequest req;
    req.set_project_id(project);
    req.set_number(number);
    req.set_view(view);
    opb::Version resp;
    grpc::Status s = stubs_[0]->GetVersion(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  grpc::Status RestoreVersion(const std::string& project, int number, const std::string& request_id,
                              opb::Run* out) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    opb::RestoreVersionRequest req;
    req.set_project_id(project);
    req.set_number(number);
    req.set_request_id(request_id);
    return stubs_[0]->RestoreVersion(&ctx, req, out);
  }

  // Prompt: a follow-up prompt, and its run once it ended.
  opb::Run Prompt(const std::string& project, const std::string& content) {
    const size_t before = Runs(project).size();
    EXPECT_TRUE(Send(project, content).ok());
    std::vector<opb::Run> runs = WaitForRuns(project, before + 1);
    return WaitForEnd(runs[0].id());
  }

  std::vector<mpb::Message> Messages(const std::string& project) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    mpb::ListMessagesRequest req;
    req.set_project_id(project);
    req.set_page_size(100);
    mpb::ListMessagesResponse resp;
    EXPECT_TRUE(messages_stub_->ListMessages(&ctx, req, &resp).ok());
    return {resp.messages().begin(), resp.messages().end()};
  }

  // CancelRun: as alice, on the first replica.
  grpc::Status CancelRun(const std::string& run_id) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    opb::CancelRunRequest req;
    req.set_id(run_id);
    opb::Run out;
    return stubs_[0]->CancelRun(&ctx, req, &out);
  }

  grpc::Status DeleteProject(const std::string& project) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    ppb::DeleteProjectRequest req;
    req.set_id(project);
    google::protobuf::Empty empty;
    return projects_stub_->DeleteProject(&ctx, req, &empty);
  }

  // Send: a prompt, with the run settings `settings` puts in the request.
  grpc::Status Send(const std::string& project, const std::string& content,
                    const std::function<void(mpb::CreateMessageRequest&)>& settings = {}) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    mpb::CreateMessageRequest req;
    req.set_project_id(project);
    req.set_content(content);
    if (settings) settings(req);
    mpb::Message m;
    return messages_stub_->CreateMessage(&ctx, req, &m);
  }

  // Fetch: an HTTP GET of a preview URL (http://localhost:PORT/SNAPSHOT/PATH).
  static httplib::Result Fetch(const std::string& url, const std::string& path = "") {
    const size_t host_start = url.find("//") + 2;
    const size_t path_start = url.find('/', host_start);
    httplib::Client client("http://" + url.substr(host_start, path_start - host_start));
    return client.Get(url.substr(path_start) + path);
  }

  // RestartOrchestrator: replica i again, with `extra` settings.
  void RestartOrchestrator(int i, const EnvVars& extra) {
    ASSERT_TRUE(orchestrators_[i].process->Kill().ok());
    ASSERT_TRUE(orchestrators_[i].process->Wait(absl::Seconds(10)).ok());
    StartOrchestrator(i, extra);
  }

  // EventRows: the run's rows in the (unarchived) event table.
  int64_t EventRows(const std::string& run_id) {
    soci::session s(soci::postgresql, db_url_);
    int64_t n = -1;
    s << "SELECT count(*) FROM orchestrator.run_events WHERE run_id = CAST(:id AS uuid)",
        soci::use(run_id), soci::into(n);
    return n;
  }

  static int AssistantCount(const std::vector<mpb::Message>& messages) {
    int n = 0;
    for (const auto& m : messages) n += m.role() == mpb::Message::ROLE_ASSISTANT;
    return n;
  }

  struct SandboxReplica {
    std::string root;
    int port = 0, preview_port = 0;
    RunningService service;
  };
  std::string db_url_;
  EnvVars orchestrator_env_;  // more settings for the orchestrators, set before SetUp
  // Settings of the messages service and the orchestrators alike (one ConfigMap), set before SetUp.
  EnvVars shared_env_;
  int projects_port_ = 0, messages_port_ = 0;
  std::vector<int> orchestrator_ports_;
  size_t sandbox_replicas_ = 1;  // set before SetUp
  std::vector<SandboxReplica> sandboxes_;
  EnvVars sandbox_env_;  // more settings for qai-sandbox, set before SetUp
  RunningService projects_, messages_;
  std::vector<RunningService> orchestrators_;
  std::unique_ptr<ppb::ProjectService::Stub> projects_stub_;
  std::unique_ptr<mpb::MessageService::Stub> messages_stub_;
  std::unique_ptr<opb::AgentOrchestrator::Stub> stubs_[2];
};

}  // namespace qai::testing
