// Whole `qai runs ...`, `qai watch` and `--watch` command lines against an in-process fake
// AgentOrchestrator (and small fakes of the other two services for `--watch`).

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "tools/qai/cli.h"
#include "tools/qai/output.h"
#include "tools/qai/run_follow.h"
#include "tools/qai/runs_commands.h"

namespace qai::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;
namespace pb = qai::projects::v1;
namespace pm = qai::messages::v1;
namespace opb = qai::orchestrator::v1;

constexpr int64_t kT0 = 1769850900;  // 2026-01-31T09:15:00Z
constexpr char kUuidV4[] = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

opb::Run MakeRun(const std::string& id, opb::Run::State state, int i) {
  opb::Run run;
  run.set_id(id);
  run.set_project_id("p-1");
  run.set_message_id(absl::StrCat("m-", i));
  run.set_author("alice");
  run.set_state(state);
  run.set_attempt(1);
  run.set_iteration(3);
  run.set_max_iterations(15);
  run.set_steps(11);
  run.set_model("gpt-4o-mini");
  run.set_prompt_tokens(1200);
  run.set_completion_tokens(340);
  run.mutable_timeout()->set_seconds(1800);
  run.mutable_create_time()->set_seconds(kT0 + i);
  if (state >= opb::Run::STATE_RUNNING) run.mutable_start_time()->set_seconds(kT0 + i + 1);
  if (state >= opb::Run::STATE_SUCCEEDED) {
    run.mutable_end_time()->set_seconds(kT0 + i + 4);
    run.set_last_sequence(8);
  }
  if (state == opb::Run::STATE_SUCCEEDED) {
    run.set_result_message_id(absl::StrCat("m-", i + 1));
    run.set_sandbox_url(absl::StrCat("http://localhost:8080/snap-", i, "/"));
  }
  if (state == opb::Run::STATE_FAILED) run.set_error("the iteration limit (15) was reached");
  return run;
}

// Events: a run's stream: queued, started, one iteration with a tool call, then `ending`.
std::vector<opb::RunEvent> Events(const std::string& run_id, const std::string& ending) {
  std::vector<opb::RunEvent> events;
  auto add = [&]() -> opb::RunEvent& {
    opb::RunEvent& e = events.emplace_back();
    e.set_run_id(run_id);
    e.set_sequence(static_cast<int64_t>(events.size()));
    e.mutable_time()->set_seconds(kT0 + static_cast<int64_t>(events.size()));
    return e;
  };
  add().mutable_queued();
  add().mutable_started()->set_attempt(1);
  add().mutable_iteration_started()->set_iteration(1);
  auto* call = add().mutable_tool_call();
  call->set_tool("terminal");
  call->set_arguments_json(R"({"command":"ls"})");
  auto* result = add().mutable_tool_result();
  result->set_tool("terminal");
  result->set_output("index.html\n");
  add().mutable_files_changed()->add_paths("index.html");
  add().mutable_iteration_finished()->set_iteration(1);
  if (ending == "succeeded") {
    auto* done = add().mutable_succeeded();
    done->set_title("Coffee Shop");
    done->set_response("Here is your page.");
    done->set_sandbox_url("http://localhost:8080/snap-ok/");
  } else if (ending == "failed") {
    add().mutable_failed()->set_error("the iteration limit (15) was reached");
  } else {
    add().mutable_cancelled();
  }
  return events;
}

// FakeOrchestrator: three finished runs of project p-1 (run-ok, run-failed, run-cancelled,
// newest first), their event streams, and a stream that can be made to break.
class FakeOrchestrator final : public opb::AgentOrchestrator::Service {
 public:
  FakeOrchestrator() {
    runs_ = {MakeRun("run-ok", opb::Run::STATE_SUCCEEDED, 2),
             MakeRun("run-failed", opb::Run::STATE_FAILED, 1),
             MakeRun("run-cancelled", opb::Run::STATE_CANCELLED, 0)};
    runs_[0].set_sandbox_url("http://localhost:8080/snap-ok/");
    events_["run-ok"] = Events("run-ok", "succeeded");
    events_["run-failed"] = Events("run-failed", "failed");
    events_["run-cancelled"] = Events("run-cancelled", "cancelled");
  }

  grpc::Status GetRun(grpc::ServerContext* context, const opb::GetRunRequest* request,
                      opb::Run* response) override {
    std::lock_guard lock(mu_);
    for (const opb::Run& run : runs_) {
      if (run.id() == request->id()) {
        *response = run;
        return grpc::Status::OK;
      }
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "run not found");
  }

  // Pages are indexes into the project's runs; the token is the next index. Runs of message
  // `appear_message_` are listed from the (appear_after_ + 1)th call on.
  grpc::Status ListRuns(grpc::ServerContext* context, const opb::ListRunsRequest* request,
                        opb::ListRunsResponse* response) override {
    std::lock_guard lock(mu_);
    ++list_calls_;
    if (request->project_id() == "p-denied")
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not yours");
    std::vector<opb::Run> runs;
    if (request->project_id() == appear_project_ && list_calls_ > appear_after_) {
      opb::Run run = runs_[0];
      run.set_message_id(appear_message_);
      run.set_project_id(appear_project_);
      runs.push_back(run);
    }
    if (request->project_id() == "p-1") runs.insert(runs.end(), runs_.begin(), runs_.end());
    const int start = request->page_token().empty() ? 0 : std::stoi(request->page_token());
    const int size = request->page_size() == 0 ? 20 : request->page_size();
    const int end = std::min(static_cast<int>(runs.size()), start + size);
    for (int i = start; i < end; ++i) *response->add_runs() = runs[i];
    if (end < static_cast<int>(runs.size())) response->set_next_page_token(std::to_string(end));
    return grpc::Status::OK;
  }

  grpc::Status CancelRun(grpc::ServerContext* context, const opb::CancelRunRequest* request,
                         opb::Run* response) override {
    std::lock_guard lock(mu_);
    cancel_request_ = *request;
    *response = MakeRun(request->id(), opb::Run::STATE_CANCELLED, 5);
    return grpc::Status::OK;
  }

  grpc::Status WatchRun(grpc::ServerContext* context, const opb::WatchRunRequest* request,
                        grpc::ServerWriter<opb::RunEvent>* writer) override {
    std::vector<opb::RunEvent> events;
    int send_before_break = -1;
    {
      std::lock_guard lock(mu_);
      afters_.push_back(request->after_sequence());
      auto it = events_.find(request->run_id());
      if (it == events_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "run not found");
      events = it->second;
      if (breaks_ > 0) {
        --breaks_;
        send_before_break = break_after_;
      }
    }
    int sent = 0;
    for (const opb::RunEvent& e : events) {
      if (e.sequence() <= request->after_sequence()) continue;
      if (sent == send_before_break)
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "replica restarting");
      writer->Write(e);
      ++sent;
    }
    if (send_before_break >= 0 && sent == send_before_break) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "replica restarting");
    }
    return grpc::Status::OK;
  }

  // The next `breaks` streams end with UNAVAILABLE after `after` events each.
  void BreakStreams(int breaks, int after) {
    std::lock_guard lock(mu_);
    breaks_ = breaks;
    break_after_ = after;
  }
  // A run of `message` in `project` is listed from the (polls + 1)th ListRuns on.
  void RunAppears(std::string project, std::string message, int polls) {
    std::lock_guard lock(mu_);
    appear_project_ = std::move(project);
    appear_message_ = std::move(message);
    appear_after_ = polls;
  }
  std::vector<int64_t> afters() {
    std::lock_guard lock(mu_);
    return afters_;
  }
  int list_calls() {
    std::lock_guard lock(mu_);
    return list_calls_;
  }
  opb::CancelRunRequest cancel_request() {
    std::lock_guard lock(mu_);
    return cancel_request_;
  }

 private:
  std::mutex mu_;
  std::vector<opb::Run> runs_;
  std::map<std::string, std::vector<opb::RunEvent>> events_;
  std::vector<int64_t> afters_;
  int breaks_ = 0;
  int break_after_ = 0;
  std::string appear_project_;
  std::string appear_message_;
  int appear_after_ = 0;
  int list_calls_ = 0;
  opb::CancelRunRequest cancel_request_;
};

// FakeProjects: CreateProject makes project p-new.
class FakeProjects final : public pb::ProjectService::Service {
 public:
  grpc::Status CreateProject(grpc::ServerContext* context, const pb::CreateProjectRequest* request,
                             pb::Project* response) override {
    response->set_id("p-new");
    response->set_name("brave-otter-4f2a");
    return grpc::Status::OK;
  }
};

// FakeMessages: p-new's first message is m-first; CreateMessage answers m-sent.
class FakeMessages final : public pm::MessageService::Service {
 public:
  grpc::Status CreateMessage(grpc::ServerContext* context, const pm::CreateMessageRequest* request,
                             pm::Message* response) override {
    response->set_id("m-sent");
    response->set_project_id(request->project_id());
    response->set_content(request->content());
    response->set_role(pm::Message::ROLE_USER);
    return grpc::Status::OK;
  }
  grpc::Status ListMessages(grpc::ServerContext* context, const pm::ListMessagesRequest* request,
                            pm::ListMessagesResponse* response) override {
    if (request->project_id() == "p-new") {
      pm::Message* m = response->add_messages();
      m->set_id("m-first");
      m->set_project_id("p-new");
      m->set_content("a coffee shop");
      m->set_role(pm::Message::ROLE_USER);
    }
    return grpc::Status::OK;
  }
};

class RunsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&orchestrator_);
    builder.RegisterService(&projects_);
    builder.RegisterService(&messages_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", port);
    for (const char* name : {"QAI_PROJECTS_ADDR", "QAI_MESSAGES_ADDR", "QAI_ORCHESTRATOR_ADDR"})
      env_[name] = address_;
  }
  void TearDown() override { server_->Shutdown(); }

  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    auto env = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    return RunCli(args, env, out_, err_);
  }

  // WatchOutput: what a watch of the fake's run prints, in plain lines.
  static std::string WatchOutput(const std::string& run_id) {
    std::ostringstream out, err;
    RunView view(out, err, {});
    view.Header(run_id);
    for (const opb::RunEvent& e : Events(run_id, run_id == "run-ok"       ? "succeeded"
                                                 : run_id == "run-failed" ? "failed"
                                                                          : "cancelled")) {
      view.Event(e);
    }
    return out.str();
  }

  FakeOrchestrator orchestrator_;
  FakeProjects projects_;
  FakeMessages messages_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::map<std::string, std::string> env_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(RunsCliTest, ListNewestFirstWithPages) {
  ASSERT_EQ(Run({"runs", "list", "--project", "p-1", "--page-size", "2"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "run-ok  SUCCEEDED  alice  3/15  gpt-4o-mini  3s  2026-01-31T09:15:02Z  "
            "http://localhost:8080/snap-ok/\n"
            "run-failed  FAILED  alice  3/15  gpt-4o-mini  3s  2026-01-31T09:15:01Z  the iteration "
            "limit (15) was reached\n"
            "next page: 2\n");
  ASSERT_EQ(Run({"runs", "list", "--project", "p-1", "--page-token", "2"}), kExitOk);
  EXPECT_EQ(out_.str(),
            "run-cancelled  CANCELLED  alice  3/15  gpt-4o-mini  3s  2026-01-31T09:15:00Z  -\n");
  ASSERT_EQ(Run({"runs", "list", "--project", "p-1", "--page-size", "1", "--all"}), kExitOk);
  EXPECT_THAT(out_.str(), MatchesRegex("run-ok [^\n]*\nrun-failed [^\n]*\nrun-cancelled [^\n]*\n"));
  ASSERT_EQ(Run({"--json", "runs", "list", "--project", "p-1", "--all", "--page-size", "2"}),
            kExitOk);
  EXPECT_THAT(out_.str(), MatchesRegex("(\\{\"runs\":[^\n]*\\}\n){2}"));
}

TEST_F(RunsCliTest, GetShowsEveryField) {
  ASSERT_EQ(Run({"runs", "get", "run-ok"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "id: run-ok\n"
            "project_id: p-1\n"
            "message_id: m-2\n"
            "author: alice\n"
            "state: SUCCEEDED\n"
            "attempt: 1\n"
            "iteration: 3/15\n"
            "steps: 11\n"
            "model: gpt-4o-mini\n"
            "tokens: 1200 prompt, 340 completion\n"
            "created: 2026-01-31T09:15:02Z\n"
            "started: 2026-01-31T09:15:03Z\n"
            "ended: 2026-01-31T09:15:06Z\n"
            "queued_for: 1s\n"
            "ran_for: 3s\n"
            "timeout: 30m\n"
            "result_message_id: m-3\n"
            "sandbox_url: http://localhost:8080/snap-ok/\n"
            "last_sequence: 8\n");
  ASSERT_EQ(Run({"--json", "runs", "get", "run-ok"}), kExitOk);
  EXPECT_THAT(out_.str(), StartsWith(R"({"id":"run-ok","projectId":"p-1")"));
  EXPECT_EQ(Run({"runs", "get", "run-nope"}), kExitRpcError);
  EXPECT_EQ(err_.str(), "error: NOT_FOUND: run not found\n");
}

TEST(FormatRunTest, RunsUnderWayAreTimedUpToNow) {
  const absl::Time now = absl::FromUnixSeconds(kT0 + 100) + absl::Milliseconds(250);
  opb::Run queued = MakeRun("run-q", opb::Run::STATE_QUEUED, 0);
  EXPECT_THAT(FormatRun(queued, now), HasSubstr("\nqueued_for: 1m40.2s (so far)\ntimeout: 30m\n"));
  EXPECT_THAT(FormatRun(queued, now), Not(HasSubstr("ran_for")));
  EXPECT_EQ(FormatRunRow(queued, now),
            "run-q  QUEUED  alice  3/15  gpt-4o-mini  -  2026-01-31T09:15:00Z  -\n");
  opb::Run running = MakeRun("run-r", opb::Run::STATE_RUNNING, 0);
  EXPECT_THAT(FormatRun(running, now), HasSubstr("\nqueued_for: 1s\nran_for: 1m39.2s (so far)\n"));
  EXPECT_EQ(FormatRunRow(running, now),
            "run-r  RUNNING  alice  3/15  gpt-4o-mini  1m39.2s  2026-01-31T09:15:00Z  -\n");
  // A run cancelled before it started was only ever queued.
  opb::Run cancelled = MakeRun("run-c", opb::Run::STATE_CANCELLED, 0);
  cancelled.clear_start_time();
  EXPECT_THAT(FormatRun(cancelled, now), HasSubstr("\nqueued_for: 4s\n"));
}

TEST(FormatRunTest, RunsFromBeforeModelsTimeoutsAndAuthorsShowNone) {
  opb::Run run = MakeRun("run-old", opb::Run::STATE_SUCCEEDED, 0);
  run.clear_model();
  run.clear_timeout();
  run.clear_author();
  run.set_prompt_tokens(0);
  run.set_completion_tokens(0);
  const std::string text = FormatRun(run, absl::FromUnixSeconds(kT0 + 100));
  EXPECT_THAT(text, Not(HasSubstr("model:")));
  EXPECT_THAT(text, Not(HasSubstr("timeout:")));
  EXPECT_THAT(text, Not(HasSubstr("author:")));
  EXPECT_THAT(text, HasSubstr("\ntokens: 0 prompt, 0 completion\n"));
  EXPECT_EQ(
      FormatRunRow(run, absl::FromUnixSeconds(kT0 + 100)),
      "run-old  SUCCEEDED  -  3/15  -  3s  2026-01-31T09:15:00Z  http://localhost:8080/snap-0/\n");
}

TEST_F(RunsCliTest, CancelSendsARequestIdAndShowsIt) {
  ASSERT_EQ(Run({"runs", "cancel", "run-9"}), kExitOk) << err_.str();
  const opb::CancelRunRequest request = orchestrator_.cancel_request();
  EXPECT_EQ(request.id(), "run-9");
  EXPECT_THAT(request.request_id(), MatchesRegex(kUuidV4));
  EXPECT_THAT(out_.str(), StartsWith("id: run-9\n"));
  EXPECT_THAT(out_.str(), HasSubstr("state: CANCELLED\n"));
  EXPECT_THAT(out_.str(), HasSubstr(absl::StrCat("\nrequest_id: ", request.request_id(), "\n")));
}

TEST_F(RunsCliTest, WatchFollowsTheRunToItsOutcome) {
  ASSERT_EQ(Run({"watch", "run-ok"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), WatchOutput("run-ok"));
  EXPECT_EQ(out_.str(),
            "watching run run-ok\n"
            "[   0.0s] queued\n"
            "[   1.0s] started (attempt 1)\n"
            "[   2.0s] iteration 1\n"
            "[   3.0s]   call terminal: ls\n"
            "[   4.0s]   result terminal (exit 0): index.html\n"
            "[   5.0s]   files changed: index.html\n"
            "\n"
            "succeeded: Coffee Shop (1 iteration, 7.0s)\n"
            "  Here is your page.\n"
            "preview: http://localhost:8080/snap-ok/\n");
  EXPECT_EQ(err_.str(), "");
  EXPECT_THAT(orchestrator_.afters(), ElementsAre(0));

  ASSERT_EQ(Run({"runs", "watch", "run-ok"}), kExitOk);
  EXPECT_EQ(out_.str(), WatchOutput("run-ok"));
}

TEST_F(RunsCliTest, WatchExitsOneWhenTheRunFailedOrWasCancelled) {
  EXPECT_EQ(Run({"watch", "run-failed"}), kExitRpcError);
  EXPECT_EQ(out_.str(), WatchOutput("run-failed"));
  EXPECT_THAT(out_.str(),
              HasSubstr("\nfailed: the iteration limit (15) was reached (1 iteration, 7.0s)\n"));
  EXPECT_EQ(Run({"watch", "run-cancelled"}), kExitRpcError);
  EXPECT_THAT(out_.str(), HasSubstr("\ncancelled (1 iteration, 7.0s)\n"));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(RunsCliTest, WatchJsonIsOneLinePerEvent) {
  ASSERT_EQ(Run({"--json", "watch", "run-ok"}), kExitOk);
  std::string expected;
  for (const opb::RunEvent& e : Events("run-ok", "succeeded")) expected += ToJsonLine(e);
  EXPECT_EQ(out_.str(), expected);
  EXPECT_EQ(Run({"--json", "watch", "run-failed"}), kExitRpcError);
}

TEST_F(RunsCliTest, ABrokenStreamResumesAfterTheLastSequence) {
  orchestrator_.BreakStreams(/*breaks=*/2, /*after=*/3);
  ASSERT_EQ(Run({"watch", "run-ok"}), kExitOk) << err_.str();
  EXPECT_THAT(orchestrator_.afters(), ElementsAre(0, 3, 6));
  EXPECT_EQ(out_.str(), WatchOutput("run-ok")) << "nothing missed, nothing repeated";
  EXPECT_EQ(err_.str(),
            "qai: the stream broke (UNAVAILABLE: replica restarting); reconnecting after event 3 "
            "in 250ms (1/10)\n"
            "qai: the stream broke (UNAVAILABLE: replica restarting); reconnecting after event 6 "
            "in 250ms (1/10)\n")
      << "events in between reset the count";
}

TEST_F(RunsCliTest, WatchAfterASequence) {
  ASSERT_EQ(Run({"watch", "run-ok", "--after", "5"}), kExitOk);
  EXPECT_THAT(orchestrator_.afters(), ElementsAre(5));
  EXPECT_EQ(out_.str(),
            "watching run run-ok\n"
            "[   0.0s]   files changed: index.html\n"
            "\n"
            "succeeded: Coffee Shop\n"
            "  Here is your page.\n"
            "preview: http://localhost:8080/snap-ok/\n");
}

TEST_F(RunsCliTest, WatchAfterTheEndShowsTheOutcomeFromTheRun) {
  ASSERT_EQ(Run({"watch", "run-ok", "--after", "8"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "watching run run-ok\n\nsucceeded (3 iterations, 4.0s)\npreview: "
            "http://localhost:8080/snap-ok/\n");
  EXPECT_EQ(Run({"watch", "run-failed", "--after", "8"}), kExitRpcError);
  EXPECT_THAT(out_.str(),
              HasSubstr("\nfailed: the iteration limit (15) was reached (3 iterations, 4.0s)\n"));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(RunsCliTest, WatchOfAnUnknownRunFails) {
  EXPECT_EQ(Run({"watch", "run-nope"}), kExitRpcError);
  EXPECT_EQ(err_.str(), "error: NOT_FOUND: run not found\n");
  EXPECT_THAT(orchestrator_.afters(), ElementsAre(0)) << "only a broken stream is retried";
}

TEST_F(RunsCliTest, FollowRunGivesUpAfterBoundedReconnects) {
  orchestrator_.BreakStreams(/*breaks=*/100, /*after=*/0);
  GlobalOptions options{
      .orchestrator_addr = address_, .timeout = absl::Seconds(5), .request_id = "rid"};
  std::ostringstream out, err;
  RunView view(out, err, {});
  const int code = FollowRun(options, "run-ok",
                             {.max_reconnects = 3,
                              .first_backoff = absl::Milliseconds(1),
                              .max_backoff = absl::Milliseconds(4)},
                             view, err);
  EXPECT_EQ(code, kExitRpcError);
  EXPECT_THAT(orchestrator_.afters(), ElementsAre(0, 0, 0, 0));
  EXPECT_THAT(err.str(), HasSubstr("reconnecting after event 0 in 1ms (1/3)\n"));
  EXPECT_THAT(err.str(), HasSubstr("reconnecting after event 0 in 4ms (3/3)\n"));
  EXPECT_THAT(
      err.str(),
      HasSubstr("error: the run's stream broke 4 times in a row (UNAVAILABLE: replica restarting); "
                "resume with `qai runs watch run-ok --after 0`\n"));
}

TEST_F(RunsCliTest, FollowRunWaitsForAReplicaThatIsDown) {
  GlobalOptions options{
      .orchestrator_addr = "127.0.0.1:1", .timeout = absl::Seconds(5), .request_id = "rid"};
  std::ostringstream out, err;
  RunView view(out, err, {});
  const int code = FollowRun(
      options, "run-ok", {.max_reconnects = 2, .first_backoff = absl::Milliseconds(1)}, view, err);
  EXPECT_EQ(code, kExitRpcError);
  EXPECT_THAT(err.str(), HasSubstr("(2/2)"));
  EXPECT_THAT(err.str(), HasSubstr("error: the run's stream broke 3 times in a row (UNAVAILABLE"));
}

TEST_F(RunsCliTest, CreateWatchFollowsTheFirstRun) {
  orchestrator_.RunAppears("p-new", "m-first", /*polls=*/2);
  ASSERT_EQ(Run({"projects", "create", "--prompt", "a coffee shop", "--watch"}), kExitOk)
      << err_.str();
  EXPECT_EQ(orchestrator_.list_calls(), 3) << "two polls without the run, then the run";
  EXPECT_THAT(out_.str(), StartsWith("id: p-new\n"));
  EXPECT_THAT(out_.str(), HasSubstr("\nfirst message:\n  id: m-first\n"));
  EXPECT_THAT(out_.str(), HasSubstr("\n\nwatching run run-ok\n[   0.0s] queued\n"));
  EXPECT_THAT(out_.str(), HasSubstr("\npreview: http://localhost:8080/snap-ok/\n"));
  EXPECT_EQ(err_.str(), "");

  ASSERT_EQ(Run({"--json", "projects", "create", "--prompt", "a coffee shop", "--watch"}), kExitOk);
  EXPECT_THAT(out_.str(), MatchesRegex("\\{\"id\":\"p-new\"[^\n]*\n\\{\"id\":\"m-first\"[^\n]*\n"
                                       "(\\{\"runId\":\"run-ok\"[^\n]*\n){8}"));
}

TEST_F(RunsCliTest, CreateWatchNeedsTheFirstMessage) {
  EXPECT_EQ(Run({"projects", "create", "--prompt", "p", "--watch", "--wait", "0"}), kExitUsage);
  EXPECT_THAT(
      err_.str(),
      StartsWith("error: --watch follows the run of the first message: --wait must be more than 0\n"
                 "\nusage: qai projects create"));
  EXPECT_EQ(orchestrator_.list_calls(), 0);
}

TEST_F(RunsCliTest, SendWatchFollowsTheRunItStarted) {
  orchestrator_.RunAppears("p-1", "m-sent", /*polls=*/0);
  EXPECT_EQ(Run({"messages", "send", "--project", "p-1", "--content", "add a menu", "--watch"}),
            kExitOk)
      << err_.str();
  EXPECT_THAT(out_.str(), StartsWith("id: m-sent\n"));
  EXPECT_THAT(out_.str(), HasSubstr("\n\nwatching run run-ok\n"));
  EXPECT_THAT(out_.str(), HasSubstr("\nsucceeded: Coffee Shop"));
}

TEST_F(RunsCliTest, SendWatchStopsAtAnErrorOtherThanUnavailable) {
  EXPECT_EQ(Run({"messages", "send", "--project", "p-denied", "--content", "hi", "--watch"}),
            kExitRpcError);
  EXPECT_THAT(out_.str(), StartsWith("id: m-sent\n")) << "the message was sent all the same";
  EXPECT_EQ(err_.str(), "error: PERMISSION_DENIED: not yours\n");
  EXPECT_EQ(orchestrator_.list_calls(), 1);
}

}  // namespace
}  // namespace qai::cli
