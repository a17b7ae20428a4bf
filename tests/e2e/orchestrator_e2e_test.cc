// The whole suite as processes (qai-projects, qai-messages, qai-orchestrator with the builtin
// model): a prompt end to end with its progress stream and preview; WatchRun replays and
// follows on any replica, for many watchers; runs survive a killed orchestrator; cancel,
// multitask, the iteration limit, follow-ups and old previews. And whole runs on the `openai`
// provider against a scripted fake endpoint: retries, streaming, a malformed tool call, failure.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "common/auth.h"
#include "common/ids.h"
#include "common/jwt.h"
#include "common/status.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "services/orchestrator/model/prompts.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/stack.h"
#include "tests/support/fake_openai.h"
#include "tests/support/paths.h"
#include "tests/support/pg_server.h"
#include "tests/support/scrape.h"

namespace qai::testing {
namespace {

using nlohmann::json;

class OrchestratorE2ETest : public StackTest {};

TEST_F(OrchestratorE2ETest, APromptEndToEnd) {
  ppb::Project p = CreateProject("Build a landing page for a coffee shop with a menu");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  std::vector<opb::RunEvent> events;
  grpc::Status watched = Watch(runs[0].id(), 0, &events);
  ASSERT_TRUE(watched.ok()) << watched.error_message();
  ASSERT_FALSE(events.empty());
  for (size_t i = 0; i < events.size(); ++i)
    EXPECT_EQ(events[i].sequence(), static_cast<int64_t>(i + 1));
  EXPECT_TRUE(events.front().has_queued());
  bool tool_call = false, tool_result = false, files = false;
  for (const auto& e : events) {
    tool_call = tool_call || e.has_tool_call();
    tool_result = tool_result || e.has_tool_result();
    files = files || e.has_files_changed();
    EXPECT_EQ(e.run_id(), runs[0].id());
  }
  EXPECT_TRUE(tool_call && tool_result && files);
  ASSERT_TRUE(events.back().has_succeeded()) << events.back().DebugString();
  const auto& done = events.back().succeeded();
  EXPECT_FALSE(done.title().empty());
  EXPECT_FALSE(done.summary().empty());

  opb::Run run = WaitForEnd(runs[0].id());
  EXPECT_EQ(run.state(), opb::Run::STATE_SUCCEEDED);
  EXPECT_EQ(run.sandbox_url(), done.sandbox_url());
  EXPECT_EQ(run.last_sequence(), events.back().sequence());
  auto page = Fetch(done.sandbox_url());
  ASSERT_TRUE(page) << "preview unreachable: " << done.sandbox_url();
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("Coffee"), std::string::npos);

  std::vector<mpb::Message> messages = Messages(p.id());
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(AssistantCount(messages), 1);
  EXPECT_EQ(messages[1].id(), done.message_id());
  EXPECT_EQ(messages[1].fragment().sandbox_url(), done.sandbox_url());
  EXPECT_TRUE(messages[1].fragment().files().contains("index.html"));
  EXPECT_EQ(messages[1].fragment().summary(), done.summary());
  EXPECT_EQ(messages[0].run_id(), run.id()) << "the prompt knows its run";

  // Replays: from k, and from the last sequence (the stream just ends).
  std::vector<opb::RunEvent> tail;
  ASSERT_TRUE(Watch(run.id(), 3, &tail).ok());
  ASSERT_EQ(tail.size(), events.size() - 3);
  EXPECT_EQ(tail.front().sequence(), 4);
  std::vector<opb::RunEvent> none;
  ASSERT_TRUE(Watch(run.id(), run.last_sequence(), &none).ok());
  EXPECT_TRUE(none.empty());

  // The project shows the run as its latest, ended (the orchestrator's outbox tells projects).
  ppb::Project shown;
  for (int i = 0; i < 200 && shown.latest_run().state() != "STATE_SUCCEEDED"; ++i) {
    if (i > 0) absl::SleepFor(absl::Milliseconds(50));
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    ppb::GetProjectRequest req;
    req.set_id(p.id());
    ASSERT_TRUE(projects_stub_->GetProject(&ctx, req, &shown).ok());
  }
  EXPECT_EQ(shown.latest_run().id(), run.id());
  EXPECT_EQ(shown.latest_run().state(), "STATE_SUCCEEDED");
  EXPECT_EQ(shown.etag(), p.etag()) << "news of a run is not an edit of the project";
}

TEST_F(OrchestratorE2ETest, OnlyServicesMayRecordALatestRunAndBadNewsNamesItsFields) {
  ppb::Project p = CreateProject("Build a page");
  ppb::RecordLatestRunRequest req;
  req.set_project_id(p.id());
  req.mutable_run()->set_id(p.id());
  req.mutable_run()->set_state("STATE_SUCCEEDED");
  req.mutable_run_create_time()->set_seconds(1);
  req.set_sequence(99);
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    google::protobuf::Empty out;
    EXPECT_EQ(projects_stub_->RecordLatestRun(&ctx, req, &out).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  ppb::RecordLatestRunRequest bad;
  bad.set_project_id("nope");
  bad.mutable_run()->set_state("FINISHED");
  grpc::ClientContext ctx;
  AsService(ctx, "orchestrator");
  google::protobuf::Empty out;
  grpc::Status s = projects_stub_->RecordLatestRun(&ctx, bad, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  for (const char* field : {"project_id", "run.id", "run.state", "run_create_time", "sequence"}) {
    EXPECT_NE(s.error_message().find(field), std::string::npos)
        << field << " in " << s.error_message();
  }
  // Several at once: the same rules, each named by its place; nothing applied.
  ppb::RecordLatestRunsRequest many;
  *many.add_runs() = req;
  *many.add_runs() = bad;
  {
    grpc::ClientContext user;
    AsUser(user, "alice");
    EXPECT_EQ(projects_stub_->RecordLatestRuns(&user, many, &out).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  grpc::ClientContext service;
  AsService(service, "orchestrator");
  s = projects_stub_->RecordLatestRuns(&service, many, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("runs[1].run.state"), std::string::npos) << s.error_message();
  EXPECT_EQ(s.error_message().find("runs[0]"), std::string::npos) << s.error_message();
  grpc::ClientContext reader;
  AsUser(reader, "alice");
  ppb::GetProjectRequest get;
  get.set_id(p.id());
  ppb::Project shown;
  ASSERT_TRUE(projects_stub_->GetProject(&reader, get, &shown).ok());
  EXPECT_NE(shown.latest_run().id(), p.id()) << "the valid news of a refused call was not applied";
}

// A watch after a sequence the run never reached is refused at once, INT64_MAX included,
// instead of waiting for events that never come.
TEST_F(OrchestratorE2ETest, AWatchPastTheRunsLastEventIsRefusedAtOnce) {
  ppb::Project p = CreateProject("Build a page [[sleep 3]]");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  for (int64_t after : {std::numeric_limits<int64_t>::max(), int64_t{1000}}) {
    std::vector<opb::RunEvent> events;
    const absl::Time start = absl::Now();
    grpc::Status s = Watch(runs[0].id(), after, &events);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << after << ": " << s.error_message();
    EXPECT_NE(s.error_message().find("after_sequence"), std::string::npos) << s.error_message();
    EXPECT_TRUE(events.empty());
    EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "refused while the run still runs";
  }
  opb::Run ended = WaitForEnd(runs[0].id());
  std::vector<opb::RunEvent> events;
  EXPECT_TRUE(Watch(runs[0].id(), ended.last_sequence(), &events).ok())
      << "after the last event: nothing, then the end";
  EXPECT_TRUE(events.empty());
}

// WatchRun streams are capped per principal on each replica (QAI_WATCH_MAX_PER_PRINCIPAL): past
// the cap a stream is refused at once; another user is not affected, and a closed stream frees
// its place.
TEST_F(OrchestratorE2ETest, WatchStreamsAreCappedPerPrincipal) {
  RestartOrchestrator(0, {{"QAI_WATCH_MAX_PER_PRINCIPAL", "2"}});
  ppb::Project mine = CreateProject("Build a page [[sleep 20]]");
  ppb::Project bobs = CreateProject("Build a page [[sleep 20]]", "bob");
  const std::string run = WaitForRuns(mine.id(), 1).at(0).id();
  std::vector<opb::Run> bob_runs;
  ASSERT_TRUE(Eventually([&] { return (bob_runs = Runs(bobs.id(), 0, "bob")).size() == 1; }));
  struct Stream {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<opb::RunEvent>> reader;
  };
  // open: a stream of `run_id` as `sub`; OK once its first event arrived, else how it ended.
  auto open = [&](Stream& s, const std::string& sub, const std::string& run_id) {
    AsUser(s.ctx, sub);
    opb::WatchRunRequest req;
    req.set_run_id(run_id);
    s.reader = stubs_[0]->WatchRun(&s.ctx, req);
    opb::RunEvent first;
    return s.reader->Read(&first) ? grpc::Status::OK : s.reader->Finish();
  };
  Stream a, b, c, d, e;
  ASSERT_TRUE(open(a, "alice", run).ok());
  ASSERT_TRUE(open(b, "alice", run).ok());
  grpc::Status refused = open(c, "alice", run);
  EXPECT_EQ(refused.error_code(), StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("QAI_WATCH_MAX_PER_PRINCIPAL"));
  EXPECT_TRUE(open(d, "bob", bob_runs[0].id()).ok()) << "another user";
  a.ctx.TryCancel();
  (void)a.reader->Finish();
  EXPECT_TRUE(Eventually([&] {
    Stream again;
    const bool ok = open(again, "alice", run).ok();
    again.ctx.TryCancel();
    if (ok) (void)again.reader->Finish();
    return ok;
  })) << "a closed stream frees its place";
  for (Stream* s : {&b, &d}) s->ctx.TryCancel();
  for (Stream* s : {&b, &d}) (void)s->reader->Finish();
}

// A stream outlives no token: once QAI_WATCH_RECHECK has passed it asks again, before reading
// on, whether its caller may still see the run, and ends UNAUTHENTICATED when the token it was
// opened with has expired (never sending the expired token on); the run itself goes on.
TEST_F(OrchestratorE2ETest, AWatchEndsOnceItsTokenHasExpired) {
  RestartOrchestrator(0, {{"QAI_WATCH_RECHECK", "1s"}});
  ppb::Project p;
  std::vector<opb::Run> runs;
  StartABakeryRunInItsCheck(&p, &runs);  // its events go on after a 4 s check
  // Valid for about 2 s more: tokens are accepted up to 30 s past their exp.
  const common::JwtClaims claims{.subject = "alice",
                                 .expires = absl::Now() - absl::Seconds(28),
                                 .issued_at = absl::Now() - absl::Seconds(60)};
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + common::SignJwt(claims, kJwtSecret));
  opb::WatchRunRequest req;
  req.set_run_id(runs[0].id());
  auto reader = stubs_[0]->WatchRun(&ctx, req);
  std::vector<opb::RunEvent> events;
  for (opb::RunEvent e; reader->Read(&e);) events.push_back(e);
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << s.error_message();
  ASSERT_FALSE(events.empty()) << "the stream was open";
  EXPECT_FALSE(events.back().has_succeeded()) << "it ran to the end on an expired token";
  EXPECT_EQ(WaitForEnd(runs[0].id()).state(), opb::Run::STATE_SUCCEEDED);
  EXPECT_THAT(projects_.process->Output(), ::testing::Not(::testing::HasSubstr("token expired")));
}

TEST_F(OrchestratorE2ETest, ManyWatchersOnAnotherReplicaSeeTheSameStream) {
  // All 200 are alice's.
  RestartOrchestrator(0, {{"QAI_WATCH_MAX_PER_PRINCIPAL", "0"}});
  StartOrchestrator(1, {{"QAI_WATCH_MAX_PER_PRINCIPAL", "0"}});
  ppb::Project p = CreateProject("Build a portfolio site [[sleep 2]]");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  constexpr int kWatchers = 200;
  std::vector<std::vector<int64_t>> seen(kWatchers);
  std::vector<grpc::Status> statuses(kWatchers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWatchers; ++i) {
    threads.emplace_back([&, i] {
      std::vector<opb::RunEvent> events;
      statuses[i] = Watch(runs[0].id(), 0, &events, /*replica=*/i % 2);
      for (const auto& e : events) seen[i].push_back(e.sequence());
    });
  }
  for (auto& t : threads) t.join();
  opb::Run run = WaitForEnd(runs[0].id());
  EXPECT_EQ(run.state(), opb::Run::STATE_SUCCEEDED);
  for (int i = 0; i < kWatchers; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].error_message();
    ASSERT_EQ(seen[i], seen[0]) << "watcher " << i;
  }
  ASSERT_EQ(static_cast<int64_t>(seen[0].size()), run.last_sequence());
}

// The sandbox replica dies (SIGKILL) while the agent's command runs in it, and its disk with
// it: the command's call fails, the run goes back to the queue (its attempt given back: the
// sandbox is a dependency, not the run's worker), and it resumes by rebuilding the workspace
// from the project's last state and the journal, then goes on after its last step.
TEST_F(OrchestratorE2ETest, AKilledSandboxDuringACommandCostsNoAttemptAndNothingElse) {
  ppb::Project p;
  std::vector<opb::Run> runs;
  StartABakeryRunInItsCheck(&p, &runs);
  ASSERT_FALSE(HasFatalFailure());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  LoseSandboxMachine();
  std::vector<opb::RunEvent> events;
  opb::Run run = ExpectResumedOnce(runs[0].id(), p.id(), &events, /*attempt=*/1);
  ASSERT_FALSE(HasFatalFailure());
  // The page the first attempt wrote before the kill is served from the new snapshot.
  auto page = Fetch(run.sandbox_url());
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("Bakery"), std::string::npos);
}

// The sandbox tier with two replicas, the orchestrators reaching it through both addresses.
class TwoSandboxReplicasE2ETest : public OrchestratorE2ETest {
 protected:
  void SetUp() override {
    sandbox_replicas_ = 2;
    OrchestratorE2ETest::SetUp();
  }
};

// The replica serving a project is killed (SIGKILL) during the agent's command and stays down:
// the run's next attempt goes to the other replica, which rebuilds the workspace from the
// project's last state and the journal; one ASSISTANT message, events without a gap, and the
// page is served by the replica that took over.
TEST_F(TwoSandboxReplicasE2ETest, AKilledReplicasRunResumesOnTheOtherOne) {
  ppb::Project p;
  std::vector<opb::Run> runs;
  StartABakeryRunInItsCheck(&p, &runs);
  ASSERT_FALSE(HasFatalFailure());
  const std::string first = ServingReplica(p.id());
  ASSERT_TRUE(first == "sandbox-0" || first == "sandbox-1") << first;
  const size_t dead = first == "sandbox-0" ? 0 : 1, other = 1 - dead;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  KillSandbox(dead);

  std::vector<opb::RunEvent> events;
  opb::Run run = ExpectResumedOnce(runs[0].id(), p.id(), &events, /*attempt=*/1);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(ServingReplica(p.id()), absl::StrCat("sandbox-", other));
  // As that replica sees it: each workspace is a filesystem in its own mount namespace.
  const std::string rebuilt =
      absl::StrCat("/proc/", sandboxes_[other].service.process->pid(), "/root",
                   sandboxes_[other].root, "/workspaces/", p.id(), "/index.html");
  EXPECT_TRUE(std::filesystem::exists(rebuilt)) << rebuilt;
  EXPECT_TRUE(
      absl::StrContains(run.sandbox_url(), absl::StrCat(":", sandboxes_[other].preview_port, "/")))
      << run.sandbox_url();
  auto page = Fetch(run.sandbox_url());
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("Bakery"), std::string::npos);
}

// A project stays on its replica from one prompt to the next, and a purge on one replica
// removes the project's workspace from the other too.
TEST_F(TwoSandboxReplicasE2ETest, AProjectStaysOnItsReplicaAndIsPurgedEverywhere) {
  ppb::Project p = CreateProject("Build a page for a shop");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  ASSERT_EQ(WaitForEnd(runs[0].id()).state(), opb::Run::STATE_SUCCEEDED);
  const std::string home = ServingReplica(p.id());
  ASSERT_TRUE(home == "sandbox-0" || home == "sandbox-1") << home;
  const size_t h = home == "sandbox-0" ? 0 : 1;
  ASSERT_TRUE(Send(p.id(), "Now add a contact section").ok());
  runs = WaitForRuns(p.id(), 2);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(WaitForEnd(runs[0].id()).state(), opb::Run::STATE_SUCCEEDED);
  EXPECT_EQ(ServingReplica(p.id()), home);
  // A copy of the workspace on the other replica (as one left behind when the project moved)
  // goes with the project. (Each replica's workspaces are in its own mount namespace.)
  auto seen_by = [&](size_t i) {
    return absl::StrCat("/proc/", sandboxes_[i].service.process->pid(), "/root", sandboxes_[i].root,
                        "/workspaces/", p.id());
  };
  const std::string stale = seen_by(1 - h), warm = seen_by(h);
  std::filesystem::create_directories(stale);
  ASSERT_TRUE(std::filesystem::exists(warm)) << warm;
  ASSERT_TRUE(DeleteProject(p.id()).ok());
  EXPECT_TRUE(Eventually([&] {
    return !std::filesystem::exists(warm) && !std::filesystem::exists(stale);
  })) << "left: "
      << std::filesystem::exists(warm) << " " << std::filesystem::exists(stale);
  EXPECT_EQ(ServingReplica(p.id()), "");
}

TEST_F(OrchestratorE2ETest, AKilledOrchestratorsRunResumesAfterItsLastStepOnceAfterRestart) {
  ppb::Project p;
  std::vector<opb::Run> runs;
  StartABakeryRunInItsCheck(&p, &runs);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(orchestrators_[0].process->Kill().ok());
  ASSERT_TRUE(orchestrators_[0].process->Wait(absl::Seconds(10)).ok());
  // The sandbox's machine is gone too: the workspace must come back from the database.
  LoseSandboxMachine();
  StartOrchestrator(0);
  std::vector<opb::RunEvent> events;
  opb::Run run = ExpectResumedOnce(runs[0].id(), p.id(), &events);
  ASSERT_FALSE(HasFatalFailure());
  bool retried = false;
  std::set<int> iterations;
  int model_outputs = 0;
  for (const auto& e : events) {
    retried = retried || e.has_retrying();
    if (e.has_iteration_started()) {
      EXPECT_TRUE(iterations.insert(e.iteration_started().iteration()).second)
          << "iteration " << e.iteration_started().iteration()
          << " started twice: the run did not resume";
    }
    model_outputs += e.has_model_output();
  }
  EXPECT_TRUE(retried);
  EXPECT_EQ(model_outputs, static_cast<int>(iterations.size()))
      << "one model call per iteration, none repeated";
  // The page written before the crash is in the fragment, rebuilt from the journal.
  std::vector<mpb::Message> messages = Messages(p.id());
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_TRUE(messages[1].fragment().files().contains("index.html"));
  EXPECT_EQ(Fetch(run.sandbox_url())->status, 200);
}

TEST_F(OrchestratorE2ETest, CancelStopsARunningCommand) {
  ppb::Project p = CreateProject("Build a shop [[sleep 60]]");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  ASSERT_TRUE(Eventually([&] {
    auto r = Runs(p.id());
    return !r.empty() && r[0].state() == opb::Run::STATE_RUNNING && r[0].last_sequence() >= 8;
  }));
  const absl::Time asked = absl::Now();
  ASSERT_TRUE(CancelRun(runs[0].id()).ok());
  opb::Run run = WaitForEnd(runs[0].id());
  EXPECT_EQ(run.state(), opb::Run::STATE_CANCELLED);
  EXPECT_LT(absl::Now() - asked, absl::Seconds(15)) << "the sleep was killed, not waited out";
  EXPECT_EQ(AssistantCount(Messages(p.id())), 0);
}

TEST_F(OrchestratorE2ETest, ASecondPromptQueuesBehindTheActiveRunOrIsRejected) {
  ppb::Project p = CreateProject("Build a blog [[sleep 2]]");
  ASSERT_EQ(WaitForRuns(p.id(), 1).size(), 1u);
  ASSERT_TRUE(Send(p.id(), "Add a pricing section").ok());
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 2);
  ASSERT_EQ(runs.size(), 2u);
  // Newest first: the follow-up waits while the first runs.
  EXPECT_EQ(runs[0].state(), opb::Run::STATE_QUEUED);
  {
    grpc::ClientContext ctx;
    AsService(ctx, "messages");
    opb::StartRunRequest req;
    req.set_project_id(p.id());
    req.set_message_id(common::NewUuid());
    req.set_prompt("rejected");
    req.set_multitask(opb::StartRunRequest::MULTITASK_REJECT);
    opb::Run out;
    EXPECT_EQ(stubs_[0]->StartRun(&ctx, req, &out).error_code(), StatusCode::FAILED_PRECONDITION);
  }
  opb::Run second = WaitForEnd(runs[0].id(), absl::Seconds(90));
  opb::Run first = WaitForEnd(runs[1].id());
  EXPECT_EQ(first.state(), opb::Run::STATE_SUCCEEDED);
  EXPECT_EQ(second.state(), opb::Run::STATE_SUCCEEDED);
  EXPECT_GE(absl::FromUnixSeconds(second.start_time().seconds()),
            absl::FromUnixSeconds(first.end_time().seconds()));

  // The follow-up built on the first run's files, and the first preview still shows its own.
  auto before = Fetch(first.sandbox_url());
  auto after = Fetch(second.sandbox_url());
  ASSERT_TRUE(before && after);
  EXPECT_EQ(before->status, 200);
  EXPECT_EQ(after->status, 200);
  EXPECT_NE(before->body, after->body);
  EXPECT_EQ(before->body.find("id=\"pricing\""), std::string::npos)
      << "the old preview is the old version";
  EXPECT_NE(after->body.find("id=\"pricing\""), std::string::npos);
  EXPECT_NE(after->body.find("Blog"), std::string::npos)
      << "the follow-up kept the first run's page";
}

TEST_F(OrchestratorE2ETest, TheIterationLimitEndsTheRunWithAnErrorMessage) {
  ppb::Project p = CreateProject("Build something [[no-summary]]");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  opb::Run run = WaitForEnd(runs[0].id(), absl::Seconds(90));
  EXPECT_EQ(run.state(), opb::Run::STATE_FAILED);
  EXPECT_EQ(run.iteration(), 15);
  EXPECT_NE(run.error().find("limit"), std::string::npos) << run.error();
  // The ERROR message goes out through the orchestrator's outbox, written with the run's end.
  std::vector<mpb::Message> messages;
  ASSERT_TRUE(Eventually([&] { return (messages = Messages(p.id())).size() == 2; }));
  EXPECT_EQ(messages[1].type(), mpb::Message::TYPE_ERROR);
  EXPECT_EQ(messages[1].content(), "Something went wrong. Please try again.");
  EXPECT_EQ(messages[1].run_id(), run.id());
  ASSERT_TRUE(
      Eventually([&] { return WaitForEnd(run.id()).result_message_id() == messages[1].id(); }));
}

TEST_F(OrchestratorE2ETest, ARunWhoseWorkerIsLostForTheLastTimeFailsWithAnErrorMessage) {
  RestartOrchestrator(0, {{"QAI_RUN_MAX_ATTEMPTS", "1"}});
  ppb::Project p = CreateProject("Build a long one [[sleep 30]]");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  ASSERT_TRUE(Eventually([&] {
    auto r = Runs(p.id());
    return !r.empty() && r[0].state() == opb::Run::STATE_RUNNING;
  }));
  RestartOrchestrator(
      0, {{"QAI_RUN_MAX_ATTEMPTS", "1"}});  // kill -9 mid-run: its only attempt is lost
  opb::Run run = WaitForEnd(runs[0].id());
  EXPECT_EQ(run.state(), opb::Run::STATE_FAILED);
  EXPECT_NE(run.error().find("lost 1 times"), std::string::npos) << run.error();
  std::vector<mpb::Message> messages;
  ASSERT_TRUE(Eventually([&] { return (messages = Messages(p.id())).size() == 2; }));
  EXPECT_EQ(messages[1].type(), mpb::Message::TYPE_ERROR);
  EXPECT_EQ(messages[1].content(), "Something went wrong. Please try again.");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(Messages(p.id()).size(), 2u) << "exactly one";
}

TEST_F(OrchestratorE2ETest, ADeletedProjectsPreviewsStopServing) {
  ppb::Project p = CreateProject("Build a small counter page");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  opb::Run run = WaitForEnd(runs[0].id());
  ASSERT_EQ(run.state(), opb::Run::STATE_SUCCEEDED) << run.error();
  ASSERT_EQ(Fetch(run.sandbox_url())->status, 200);
  ASSERT_TRUE(DeleteProject(p.id()).ok());
  // The projects outbox asks CancelProjectRuns with purge: the snapshots go.
  EXPECT_TRUE(Eventually([&] { return Fetch(run.sandbox_url())->status == 404; }));
}

// A project deleted while its run works (its page written, its check running) serves nothing
// once the purge has gone through, whatever the run did next: the sandbox tier's tombstone
// refuses a snapshot saved after the purge, so no preview of it comes back later.
TEST_F(OrchestratorE2ETest, AProjectDeletedMidRunServesNothingWhateverTheRunDidNext) {
  ppb::Project p;
  std::vector<opb::Run> runs;
  StartABakeryRunInItsCheck(&p, &runs);
  ASSERT_TRUE(DeleteProject(p.id()).ok());
  // The run is no one's to see now: its end is read from the database.
  int state = 0;
  std::string url;
  ASSERT_TRUE(Eventually(
      [&] {
        soci::session s(soci::postgresql, db_url_);
        s << "SELECT state, sandbox_url FROM orchestrator.runs WHERE id = CAST(:id AS uuid)",
            soci::into(state), soci::into(url), soci::use(runs[0].id());
        return state >= opb::Run::STATE_SUCCEEDED;
      },
      absl::Seconds(60)))
      << state;
  auto snapshots = [&] {
    soci::session s(soci::postgresql, db_url_);
    int n = -1, purged = 0;
    s << "SELECT count(*) FROM sandbox.snapshots WHERE project_id = CAST(:p AS uuid)",
        soci::into(n), soci::use(p.id());
    s << "SELECT count(*) FROM sandbox.purged_projects WHERE project_id = CAST(:p AS uuid)",
        soci::into(purged), soci::use(p.id());
    return purged == 1 ? n : -1;
  };
  ASSERT_TRUE(Eventually([&] { return snapshots() == 0; })) << snapshots();
  if (!url.empty()) {
    EXPECT_EQ(Fetch(url)->status, 404);
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(snapshots(), 0) << "a snapshot came back after the purge";
}

// A prompt the orchestrator refuses for good after qai-messages accepted it (here the two
// disagree on the iteration limit, as while a new ConfigMap rolls out) is not silent: its
// author finds an ERROR message with the reason in the conversation, and no run.
TEST_F(OrchestratorE2ETest, APromptThatCannotRunLeavesAnErrorMessage) {
  RestartOrchestrator(0, {{"QAI_RUN_MAX_ITERATIONS", "5"}});
  ppb::Project p = CreateProject("Build a page");
  ASSERT_EQ(WaitForEnd(WaitForRuns(p.id(), 1).at(0).id()).state(), opb::Run::STATE_SUCCEEDED);
  ASSERT_TRUE(Send(p.id(), "Add a footer", [](mpb::CreateMessageRequest& r) {
                r.set_max_iterations(20);
              }).ok());
  std::vector<mpb::Message> messages;
  ASSERT_TRUE(Eventually([&] {
    messages = Messages(p.id());
    return messages.size() == 4 && messages.back().type() == mpb::Message::TYPE_ERROR;
  })) << messages.size();
  EXPECT_THAT(messages.back().content(), ::testing::HasSubstr("This prompt could not run"));
  EXPECT_THAT(messages.back().content(), ::testing::HasSubstr("max_iterations"));
  EXPECT_EQ(messages.back().role(), mpb::Message::ROLE_ASSISTANT);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(Messages(p.id()).size(), 4u) << "exactly one";
  EXPECT_EQ(Runs(p.id()).size(), 1u);
}

// A QAI service or PostgreSQL briefly down never fails a run, nor costs it an attempt (only the
// loss of its own worker does): with one attempt allowed, a run outlives its sandbox replica's
// restart, and another the database going away for longer than the run lease; both succeed on
// attempt 1.
TEST_F(OrchestratorE2ETest, BriefOutagesOfDependenciesCostARunNothing) {
  RestartOrchestrator(0, {{"QAI_RUN_MAX_ATTEMPTS", "1"}, {"QAI_RUN_LEASE", "2s"}});
  ppb::Project p;
  std::vector<opb::Run> runs;
  StartABakeryRunInItsCheck(&p, &runs);
  KillSandbox(0);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  StartSandbox(0);
  opb::Run run = WaitForEnd(runs[0].id(), absl::Seconds(90));
  EXPECT_EQ(run.state(), opb::Run::STATE_SUCCEEDED) << run.error();
  EXPECT_EQ(run.attempt(), 1);

  StartABakeryRunInItsCheck(&p, &runs);
  ASSERT_TRUE(PgServer::Shared().Stop().ok());
  std::this_thread::sleep_for(std::chrono::seconds(5));  // 2.5 leases
  ASSERT_TRUE(PgServer::Shared().Start().ok());
  run = WaitForEnd(runs[0].id(), absl::Seconds(90));
  EXPECT_EQ(run.state(), opb::Run::STATE_SUCCEEDED) << run.error();
  EXPECT_EQ(run.attempt(), 1);
}

// A run's result reaches qai-messages through the outbox. With qai-messages down as the run
// ends, the run waits for it: RUNNING, held by no worker, rescued by no one (not even after the
// orchestrator that ran it is killed), and it succeeds on its first attempt once the message
// is stored, with one ASSISTANT message: the one its Succeeded event and GetRun name.
TEST_F(OrchestratorE2ETest, AResultWaitsOutAMessagesOutageWithoutRedoingTheRun) {
  const EnvVars quick_relay{{"QAI_OUTBOX_MAX_BACKOFF", "1s"}};
  RestartOrchestrator(0, quick_relay);
  ppb::Project p;
  std::vector<opb::Run> runs;
  StartABakeryRunInItsCheck(&p, &runs);
  ASSERT_TRUE(messages_.process->Kill().ok());
  ASSERT_TRUE(messages_.process->Wait(absl::Seconds(10)).ok());
  auto pending = [&] {
    soci::session s(soci::postgresql, db_url_);
    int waiting = 0;
    s << "SELECT result_pending::int FROM orchestrator.runs WHERE id = CAST(:id AS uuid)",
        soci::into(waiting), soci::use(runs[0].id());
    return waiting == 1;
  };
  ASSERT_TRUE(Eventually(pending, absl::Seconds(60))) << "the result was never posted";
  RestartOrchestrator(0, quick_relay);
  std::this_thread::sleep_for(std::chrono::seconds(5));  // 2.5 leases: the rescuer has looked
  std::vector<opb::Run> now = Runs(p.id());
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].state(), opb::Run::STATE_RUNNING) << "no success without its message";
  EXPECT_TRUE(pending());

  StartMessages();
  std::vector<opb::RunEvent> events;
  opb::Run run = ExpectResumedOnce(runs[0].id(), p.id(), &events, /*attempt=*/1);
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.back().has_succeeded());
  EXPECT_EQ(events.back().succeeded().message_id(), run.result_message_id());
  EXPECT_EQ(events.back().succeeded().sandbox_url(), run.sandbox_url());
  for (const mpb::Message& m : Messages(p.id())) {
    if (m.role() != mpb::Message::ROLE_ASSISTANT) continue;
    EXPECT_EQ(m.id(), run.result_message_id());
    EXPECT_EQ(m.fragment().sandbox_url(), run.sandbox_url());
  }
  EXPECT_EQ(Fetch(run.sandbox_url())->status, 200);
}

TEST_F(OrchestratorE2ETest, FinishedRunsEventsAreArchivedAndStillReplay) {
  RestartOrchestrator(0, {{"QAI_RUN_ARCHIVE_AFTER", "0s"}});
  ppb::Project p = CreateProject("Build a small counter page");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  std::vector<opb::RunEvent> live;
  ASSERT_TRUE(Watch(runs[0].id(), 0, &live).ok());
  ASSERT_TRUE(live.back().has_succeeded());
  // The keeper archives every lease/2 (1 s here).
  ASSERT_TRUE(Eventually([&] { return EventRows(runs[0].id()) == 0; }, absl::Seconds(10)));
  std::vector<opb::RunEvent> replayed;
  ASSERT_TRUE(Watch(runs[0].id(), 0, &replayed).ok()) << "a stream of an archived run still ends";
  ASSERT_EQ(replayed.size(), live.size());
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(replayed[i].SerializeAsString(), live[i].SerializeAsString()) << "event " << i + 1;
  }
  std::vector<opb::RunEvent> tail;
  ASSERT_TRUE(Watch(runs[0].id(), live.size() - 1, &tail).ok());
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_TRUE(tail[0].has_succeeded());
}

TEST_F(OrchestratorE2ETest, SigtermEndsStreamsAtOnceAndHandsTheRunBack) {
  ppb::Project p = CreateProject("Build a long one [[sleep 30]]");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  ASSERT_TRUE(Eventually([&] {
    auto r = Runs(p.id());
    return !r.empty() && r[0].state() == opb::Run::STATE_RUNNING && r[0].last_sequence() >= 8;
  }));
  std::vector<opb::RunEvent> events;
  grpc::Status watched;
  std::thread watcher([&] { watched = Watch(runs[0].id(), 0, &events); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const absl::Time sent = absl::Now();
  ASSERT_TRUE(orchestrators_[0].process->Signal(SIGTERM).ok());
  watcher.join();
  EXPECT_EQ(watched.error_code(), StatusCode::UNAVAILABLE) << watched.error_message();
  EXPECT_LT(absl::Now() - sent, absl::Seconds(5))
      << "the stream did not wait for the drain deadline";
  absl::StatusOr<int> code = orchestrators_[0].process->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  // The run went back to the queue (its attempt not counted) and another replica finishes it.
  StartOrchestrator(1);
  ASSERT_TRUE(Eventually([&] {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    opb::GetRunRequest req;
    req.set_id(runs[0].id());
    opb::Run run;
    return stubs_[1]->GetRun(&ctx, req, &run).ok() && run.state() == opb::Run::STATE_RUNNING &&
           run.attempt() == 1;
  }));
}

TEST_F(OrchestratorE2ETest, RunsAreTheirOwnersOnly) {
  ppb::Project p = CreateProject("Build a site");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_TRUE(Runs(p.id(), 0, "mallory").empty());
  grpc::ClientContext ctx;
  AsUser(ctx, "mallory");
  opb::GetRunRequest req;
  req.set_id(runs[0].id());
  opb::Run out;
  EXPECT_EQ(stubs_[0]->GetRun(&ctx, req, &out).error_code(), StatusCode::NOT_FOUND);
  grpc::ClientContext start_ctx;
  AsUser(start_ctx, "alice");
  opb::StartRunRequest start;
  start.set_project_id(p.id());
  start.set_message_id(common::NewUuid());
  start.set_prompt("x");
  EXPECT_EQ(stubs_[0]->StartRun(&start_ctx, start, &out).error_code(),
            StatusCode::PERMISSION_DENIED);
}

// RunCapsE2ETest: the suite with at most 2 runs queued or running per project and 3 per
// principal (one ConfigMap for qai-messages and qai-orchestrator).
class RunCapsE2ETest : public OrchestratorE2ETest {
 protected:
  RunCapsE2ETest() {
    shared_env_ = {{"QAI_RUN_MAX_ACTIVE_PER_PROJECT", "2"},
                   {"QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL", "3"}};
  }

  // WaitForDelivered: every StartRun of the messages outbox delivered. A run exists a moment
  // before its row is marked delivered, and CreateMessage counts undelivered rows too (a
  // prompt on its way): until then the same prompt counts twice.
  void WaitForDelivered() {
    ASSERT_TRUE(Eventually([&] {
      soci::session sql(soci::postgresql, db_url_);
      int pending = -1;
      sql << "SELECT count(*) FROM messages.outbox WHERE deliver_time IS NULL", soci::into(pending);
      return pending == 0;
    }));
  }

  static std::vector<std::string> QuotaSubjects(const grpc::Status& status) {
    std::vector<std::string> out;
    for (const auto& v : common::GetQuotaViolations(common::FromGrpcStatus(status)))
      out.push_back(v.subject);
    return out;
  }
};

TEST_F(RunCapsE2ETest, PromptsPastTheCapsAreRefusedAtOnceAndAnEndedRunMakesRoom) {
  // Project p: a long run and one queued behind it, both alice's: p is at its cap.
  ppb::Project p = CreateProject("Build a blog [[sleep 60]]");
  ASSERT_EQ(WaitForRuns(p.id(), 1).size(), 1u);
  WaitForDelivered();
  const grpc::Status second = Send(p.id(), "Add a pricing section");
  ASSERT_TRUE(second.ok()) << second.error_message();
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 2);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].author(), "alice");
  EXPECT_EQ(runs[1].author(), "alice") << "a new project's first prompt counts against its owner";
  WaitForDelivered();
  grpc::Status refused = Send(p.id(), "Add a gallery");
  EXPECT_EQ(refused.error_code(), StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("QAI_RUN_MAX_ACTIVE_PER_PROJECT allows (2)"),
            std::string::npos)
      << refused.error_message();
  EXPECT_EQ(QuotaSubjects(refused), std::vector<std::string>{"project:" + p.id()});
  EXPECT_EQ(Messages(p.id()).size(), 2u) << "the refused prompt was not stored";

  // Project q: its first prompt is alice's third active run, at her cap.
  const std::string q_request = common::NewUuid();
  ppb::Project q = CreateProject("Build a shop [[sleep 60]]", "alice", q_request);
  ASSERT_EQ(WaitForRuns(q.id(), 1).size(), 1u);
  WaitForDelivered();
  refused = Send(q.id(), "Add a cart");
  EXPECT_EQ(refused.error_code(), StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(QuotaSubjects(refused), std::vector<std::string>{"principal:alice"});
  EXPECT_EQ(Messages(q.id()).size(), 1u);

  // A new project's first prompt counts too: refused at once, and no project is made.
  {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    ppb::CreateProjectRequest req;
    req.set_initial_prompt("Build a third site");
    ppb::Project r;
    refused = projects_stub_->CreateProject(&ctx, req, &r);
    EXPECT_EQ(refused.error_code(), StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
    EXPECT_EQ(QuotaSubjects(refused), std::vector<std::string>{"principal:alice"});
    grpc::ClientContext list_ctx;
    AsUser(list_ctx, "alice");
    ppb::ListProjectsResponse listed;
    ASSERT_TRUE(projects_stub_->ListProjects(&list_ctx, ppb::ListProjectsRequest(), &listed).ok());
    EXPECT_EQ(listed.projects_size(), 2);
  }
  // A repeat of q's CreateProject (its answer lost, say) still answers q, cap or not.
  EXPECT_EQ(CreateProject("Build a shop [[sleep 60]]", "alice", q_request).id(), q.id());

  // The orchestrator enforces the caps on its own too; the relay's repeat of an accepted
  // StartRun still gets its run.
  {
    grpc::ClientContext ctx;
    AsService(ctx, "messages");
    opb::StartRunRequest req;
    req.set_project_id(p.id());
    req.set_message_id(common::NewUuid());
    req.set_prompt("straight to the orchestrator");
    req.set_author("bob");
    opb::Run out;
    grpc::Status direct = stubs_[0]->StartRun(&ctx, req, &out);
    EXPECT_EQ(direct.error_code(), StatusCode::RESOURCE_EXHAUSTED) << direct.error_message();
    EXPECT_EQ(QuotaSubjects(direct), std::vector<std::string>{"project:" + p.id()});
    grpc::ClientContext again_ctx;
    AsService(again_ctx, "messages");
    req.set_message_id(runs[0].message_id());
    req.set_prompt("Add a pricing section");
    req.set_author("alice");
    ASSERT_TRUE(stubs_[0]->StartRun(&again_ctx, req, &out).ok());
    EXPECT_EQ(out.id(), runs[0].id());
  }
  EXPECT_EQ(Runs(p.id()).size(), 2u);

  // Cancelling the queued run of p frees a place in p and one of alice's.
  ASSERT_TRUE(CancelRun(runs[0].id()).ok());
  ASSERT_EQ(WaitForEnd(runs[0].id()).state(), opb::Run::STATE_CANCELLED);
  ASSERT_TRUE(Send(p.id(), "Add a gallery").ok());
  runs = WaitForRuns(p.id(), 3);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].state(), opb::Run::STATE_QUEUED);
  EXPECT_EQ(runs[0].author(), "alice");
  EXPECT_EQ(Send(q.id(), "Add a cart").error_code(), StatusCode::RESOURCE_EXHAUSTED)
      << "alice is at her cap again";
  for (const opb::Run& r : {runs[0], runs[2], WaitForRuns(q.id(), 1)[0]})
    ASSERT_TRUE(CancelRun(r.id()).ok());
}

// RunSettingsE2ETest: the suite with a model allowed besides the default and a lower longest
// timeout.
class RunSettingsE2ETest : public OrchestratorE2ETest {
 protected:
  RunSettingsE2ETest() {
    shared_env_ = {{"QAI_MODEL_ALLOWED", "fast"}, {"QAI_RUN_MAX_TIMEOUT", "1h"}};
  }
};

TEST_F(RunSettingsE2ETest, APromptsSettingsReachItsRunAndTheRunCountsItsSteps) {
  ppb::Project p = CreateProject("Build a landing page for a bakery");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  opb::Run first = WaitForEnd(runs[0].id());
  ASSERT_EQ(first.state(), opb::Run::STATE_SUCCEEDED) << first.error();
  EXPECT_EQ(first.model(), "builtin") << "no model asked for: the default";
  EXPECT_EQ(first.max_iterations(), 15);
  EXPECT_EQ(first.timeout().seconds(), 1800);
  // Its journal: each iteration's start, model answer and end, each tool call and each result.
  std::vector<opb::RunEvent> events;
  ASSERT_TRUE(Watch(first.id(), 0, &events).ok());
  int64_t journaled = 0;
  for (const auto& e : events) {
    journaled += e.has_iteration_started() * 2 + e.has_iteration_finished() + e.has_tool_call() +
                 e.has_tool_result();
  }
  EXPECT_GT(journaled, 0);
  EXPECT_EQ(first.steps(), journaled) << "counted after the journal was dropped";

  ASSERT_TRUE(Send(p.id(), "Add a pricing section", [](mpb::CreateMessageRequest& req) {
                req.set_model("fast");
                req.set_max_iterations(9);
                req.mutable_run_timeout()->set_seconds(600);
              }).ok());
  runs = WaitForRuns(p.id(), 2);
  ASSERT_EQ(runs.size(), 2u);
  opb::Run second = WaitForEnd(runs[0].id());
  EXPECT_EQ(second.state(), opb::Run::STATE_SUCCEEDED) << second.error();
  EXPECT_EQ(second.model(), "fast") << "the builtin records the name it was asked for";
  EXPECT_EQ(second.max_iterations(), 9);
  EXPECT_EQ(second.timeout().seconds(), 600);
  EXPECT_GT(second.steps(), 0);

  // CreateMessage refuses what is out of bounds at once, and StartRun checks again.
  grpc::Status refused = Send(p.id(), "Add a blog", [](mpb::CreateMessageRequest& req) {
    req.set_model("huge");
    req.mutable_run_timeout()->set_seconds(7200);
  });
  EXPECT_EQ(refused.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(refused), (std::vector<std::string>{"model", "run_timeout"}));
  grpc::ClientContext ctx;
  AsService(ctx, "messages");
  opb::StartRunRequest start;
  start.set_project_id(p.id());
  start.set_message_id(common::NewUuid());
  start.set_prompt("too much");
  start.set_max_iterations(51);
  start.set_model("huge");
  start.mutable_timeout()->set_seconds(3601);
  opb::Run out;
  grpc::Status direct = stubs_[0]->StartRun(&ctx, start, &out);
  EXPECT_EQ(direct.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(direct),
            (std::vector<std::string>{"max_iterations", "model", "timeout"}));
  EXPECT_EQ(Runs(p.id()).size(), 2u);
}

TEST_F(OrchestratorE2ETest, ARunPastItsTimeoutFailsWithTheReasonAndAnErrorMessage) {
  ppb::Project p = CreateProject("Build a small counter page [[instant]]");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  ASSERT_EQ(WaitForEnd(runs[0].id()).state(), opb::Run::STATE_SUCCEEDED);
  ASSERT_TRUE(Send(p.id(), "Add a long section [[sleep 30]]", [](mpb::CreateMessageRequest& req) {
                req.mutable_run_timeout()->set_seconds(2);
              }).ok());
  runs = WaitForRuns(p.id(), 2);
  ASSERT_EQ(runs.size(), 2u);
  opb::Run run = WaitForEnd(runs[0].id());
  EXPECT_EQ(run.state(), opb::Run::STATE_FAILED);
  EXPECT_EQ(run.error(), "the run took longer than its timeout of 2s");
  EXPECT_EQ(run.timeout().seconds(), 2);
  EXPECT_LT(ToTime(run.end_time()) - ToTime(run.start_time()), absl::Seconds(10))
      << "the sleep was killed";
  std::vector<opb::RunEvent> events;
  ASSERT_TRUE(Watch(run.id(), 0, &events).ok());
  ASSERT_TRUE(events.back().has_failed());
  EXPECT_EQ(events.back().failed().error(), run.error());
  // The ERROR message goes out through the outbox, as for any failure.
  std::vector<mpb::Message> messages;
  ASSERT_TRUE(Eventually([&] { return (messages = Messages(p.id())).size() == 4; }));
  EXPECT_EQ(messages[3].type(), mpb::Message::TYPE_ERROR);
  EXPECT_EQ(messages[3].content(), "Something went wrong. Please try again.");
  EXPECT_EQ(messages[3].run_id(), run.id());
}

// OpenAiE2ETest: the orchestrator on the `openai` provider, against the scripted fake endpoint
// this test process runs.
// The orchestrator's /metrics after one prompt end to end: the run counted by state, its
// model calls, the watcher while it watched, and the WatchRun stream as a gRPC call.
class MetricsE2ETest : public OrchestratorE2ETest {
 protected:
  void SetUp() override {
    orchestrator_env_ = {{"QAI_METRICS_ADDR", "127.0.0.1:0"}};
    OrchestratorE2ETest::SetUp();
  }
  std::string Scrape() {
    absl::StatusOr<std::string> text = ScrapeMetrics(orchestrators_[0].metrics_port);
    EXPECT_TRUE(text.ok()) << text.status();
    return text.value_or("");
  }
};

TEST_F(MetricsE2ETest, ARunItsModelCallsAndItsWatcherAreCounted) {
  ASSERT_GT(orchestrators_[0].metrics_port, 0);
  ppb::Project p = CreateProject("Build a landing page for a coffee shop [[sleep 8]]");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  std::vector<opb::RunEvent> events;
  grpc::Status watched;
  std::thread watcher([&] { watched = Watch(runs[0].id(), 0, &events); });
  // While the run works (its check command sleeps), the watcher shows, and the run runs.
  Eventually([&] {
    const std::string text = Scrape();
    return SampleValue(text, "qai_watchers") == 1 &&
           SampleValue(text, "qai_runs", {{"state", "running"}}) == 1;
  });
  std::string text = Scrape();
  EXPECT_EQ(SampleValue(text, "qai_watchers"), 1) << text;
  EXPECT_EQ(SampleValue(text, "qai_runs", {{"state", "running"}}), 1);
  watcher.join();
  ASSERT_TRUE(watched.ok()) << watched.error_message();
  opb::Run run = WaitForEnd(runs[0].id());
  ASSERT_EQ(run.state(), opb::Run::STATE_SUCCEEDED);

  // The run counts are read every 5 s.
  Eventually([&] {
    text = Scrape();
    return SampleValue(text, "qai_runs", {{"state", "running"}}) == 0 &&
           SampleValue(text, "qai_watchers") == 0;
  });
  EXPECT_EQ(SampleValue(text, "qai_runs", {{"state", "queued"}}), 0);
  EXPECT_EQ(SampleValue(text, "qai_run_queue_depth"), 0);
  EXPECT_EQ(SampleValue(text, "qai_watchers"), 0);
  EXPECT_EQ(SampleValue(text, "qai_runs_finished_total", {{"state", "succeeded"}}), 1);
  EXPECT_EQ(SampleValue(text, "qai_runs_finished_total", {{"state", "failed"}}), 0);
  EXPECT_EQ(SampleValue(text, "qai_run_claim_seconds_count", {{"result", "claimed"}}), 1);
  // One call per iteration, then the title and the response; the builtin model counts no tokens.
  EXPECT_EQ(SampleValue(text, "qai_model_call_seconds_count",
                        {{"provider", "builtin"}, {"outcome", "OK"}}),
            run.iteration() + 2);
  EXPECT_EQ(SampleValue(text, "qai_model_prompt_tokens_total", {{"provider", "builtin"}}),
            run.prompt_tokens());
  EXPECT_EQ(SampleValue(text, "qai_model_completion_tokens_total", {{"provider", "builtin"}}),
            run.completion_tokens());

  const std::map<std::string, std::string> watch = {
      {"grpc_type", "server_stream"},
      {"grpc_service", "qai.orchestrator.v1.AgentOrchestrator"},
      {"grpc_method", "WatchRun"},
      {"grpc_code", "OK"}};
  EXPECT_EQ(SampleValue(text, "grpc_server_handled_total", watch), 1);
  EXPECT_EQ(SampleValue(text, "grpc_server_handled_total",
                        {{"grpc_type", "unary"},
                         {"grpc_service", "qai.orchestrator.v1.AgentOrchestrator"},
                         {"grpc_method", "StartRun"},
                         {"grpc_code", "OK"}}),
            1);
  EXPECT_TRUE(SampleValue(text, "qai_outbox_delivered_total", {{"table", "orchestrator.outbox"}})
                  .has_value());
}

class OpenAiE2ETest : public OrchestratorE2ETest {
 protected:
  static constexpr char kApiKey[] = "sk-e2e-0123456789abcdef";

  void SetUp() override {
    // The title and the friendly answer, whenever they are asked for (the agent's turns are
    // scripted by each test).
    fake_.SetFallback([](const FakeOpenAi::Request& r) {
      const json& messages = r.json["messages"];
      const std::string system = messages.empty() ? "" : messages[0].value("content", "");
      if (system == orchestrator::kTitleSystemPrompt) return FakeOpenAi::Json("Fake Title");
      if (system == orchestrator::kResponseSystemPrompt)
        return FakeOpenAi::Json("I built your page.");
      return FakeOpenAi::Error(500, "the test's script ran out");
    });
    orchestrator_env_ = {{"QAI_MODEL_PROVIDER", "openai"},
                         {"QAI_OPENAI_BASE_URL", fake_.base_url()},
                         {"QAI_OPENAI_MODEL", "fake-model"},
                         {"QAI_OPENAI_API_KEY", kApiKey},
                         {"QAI_OPENAI_TIMEOUT", "10s"},
                         {"QAI_MODEL_MAX_RETRIES", max_retries_},
                         {"QAI_RUN_MAX_ATTEMPTS", run_max_attempts_}};
    OrchestratorE2ETest::SetUp();
  }

  // Kinds: the events' kinds in order, with tool calls and retries named.
  static std::vector<std::string> Kinds(const std::vector<opb::RunEvent>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) {
      if (e.has_iteration_started())
        out.push_back("it" + std::to_string(e.iteration_started().iteration()));
      if (e.has_retrying())
        out.push_back("retrying " + std::to_string(e.retrying().delay().seconds()) + "s");
      if (e.has_tool_call()) out.push_back(e.tool_call().call_id());
      if (e.has_succeeded()) out.push_back("succeeded");
      if (e.has_failed()) out.push_back("failed");
    }
    return out;
  }

  FakeOpenAi fake_;
  std::string max_retries_ = "3", run_max_attempts_ = "3";
};

TEST_F(OpenAiE2ETest,
       KilledBetweenStepsAndDuringAToolCallItResumesWithoutAskingAFinishedStepAgain) {
  // 1: write the page; 2: a command (the first kill -9 lands while it runs); 3: a slow summary
  // (the second kill -9 lands while it is asked: a call cut off is the one asked again); 4: it.
  fake_.Push(FakeOpenAi::Json(
      "Writing.", {{"call_1", orchestrator::kToolWriteFiles,
                    R"({"files":[{"path":"index.html","content":"<h1>Resumed</h1>"}]})"}}));
  fake_.Push(FakeOpenAi::Json(
      "Checking.", {{"call_2", orchestrator::kToolTerminal, R"({"command":"sleep 3"})"}}));
  FakeOpenAi::Reply slow = FakeOpenAi::Json("Done. <task_summary>A resumed page.</task_summary>");
  slow.delay = absl::Seconds(20);
  fake_.Push(slow);
  fake_.Push(FakeOpenAi::Json("Done. <task_summary>A resumed page.</task_summary>"));

  ppb::Project p = CreateProject("Build a page that survives crashes");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  // During call_2's command: its tool_call event is out, its result is not.
  ASSERT_TRUE(Eventually([&] { return fake_.requests().size() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  RestartOrchestrator(0, {});
  LoseSandboxMachine();  // and the sandbox's machine with it: rebuilt from the journal
  // Between steps: the third call is in flight.
  ASSERT_TRUE(Eventually([&] { return fake_.requests().size() == 3; }, absl::Seconds(60)));
  RestartOrchestrator(0, {});

  opb::Run run = WaitForEnd(runs[0].id(), absl::Seconds(90));
  ASSERT_EQ(run.state(), opb::Run::STATE_SUCCEEDED) << run.error();
  EXPECT_EQ(run.attempt(), 3);
  // Agent calls: three answered once each, and the one cut off asked again; then title and
  // response. No answered call was asked again: every agent request's conversation is longer
  // than the one before, except the repeat of the cut-off call.
  const std::vector<FakeOpenAi::Request> requests = fake_.requests();
  ASSERT_EQ(requests.size(), 6u);
  std::vector<size_t> lengths;
  for (size_t i = 0; i < 4; ++i) lengths.push_back(requests[i].json["messages"].size());
  EXPECT_LT(lengths[0], lengths[1]);
  EXPECT_LT(lengths[1], lengths[2]);
  EXPECT_EQ(lengths[2], lengths[3]) << "the cut-off call, asked again with the same conversation";
  std::vector<opb::RunEvent> events;
  ASSERT_TRUE(Watch(run.id(), 0, &events).ok());
  EXPECT_EQ(Kinds(events),
            (std::vector<std::string>{"it1", "call_1", "it2", "call_2", "retrying 0s", "it3",
                                      "retrying 0s", "succeeded"}))
      << "each step's event once; the command cut off was run again without a second tool_call";
  std::vector<mpb::Message> messages = Messages(p.id());
  ASSERT_EQ(AssistantCount(messages), 1);
  EXPECT_EQ(messages.back().fragment().files().at("index.html"), "<h1>Resumed</h1>");
}

// OpenAiDownE2ETest: the same with fewer model retries and run attempts, for a model that
// never answers.
class OpenAiDownE2ETest : public OpenAiE2ETest {
 protected:
  OpenAiDownE2ETest() {
    max_retries_ = "1";
    run_max_attempts_ = "2";
  }
};

// The title and answer calls after the agent's work obey a cancel: a stalled endpoint no longer
// holds the worker (and the run) for its timeout times its retries, twice.
TEST_F(OpenAiE2ETest, ACancelStopsTheTitleAndAnswerCallsAtOnce) {
  fake_.SetFallback([](const FakeOpenAi::Request&) {
    FakeOpenAi::Reply stalled = FakeOpenAi::Json("A Title Too Late");
    stalled.delay = absl::Seconds(30);
    return stalled;
  });
  fake_.Push(FakeOpenAi::Json("Done. <task_summary>A page.</task_summary>",
                              {{"call_1", orchestrator::kToolWriteFiles,
                                R"({"files":[{"path":"index.html","content":"<h1>Hi</h1>"}]})"}}));
  ppb::Project p = CreateProject("Build a page");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  ASSERT_TRUE(Eventually([&] { return fake_.requests().size() >= 2; }))
      << "the title call is in flight";
  const absl::Time cancelled = absl::Now();
  ASSERT_TRUE(CancelRun(runs[0].id()).ok());
  opb::Run ended = WaitForEnd(runs[0].id());
  EXPECT_LT(absl::Now() - cancelled, absl::Seconds(5)) << "the stalled title call held the run";
  EXPECT_EQ(fake_.requests().size(), 2u) << "no answer call after the cancel";
  EXPECT_EQ(ended.state(), opb::Run::STATE_CANCELLED);
}

TEST_F(OpenAiE2ETest, AWholeRunWithRetriesAStreamedAnswerAndAMalformedToolCall) {
  fake_.Push(FakeOpenAi::Streamed(
      {"I'll write ", "your page."},
      {{"call_1", orchestrator::kToolWriteFiles,
        R"({"files":[{"path":"index.html","content":"<h1>Fake Coffee</h1>"}]})"}}));
  fake_.Push(FakeOpenAi::Error(500, "overloaded", "0"));
  fake_.Push(FakeOpenAi::Error(502, "bad gateway", "0"));
  fake_.Push(FakeOpenAi::Json("", {{"call_2", orchestrator::kToolTerminal, "{oops"}}));
  fake_.Push(FakeOpenAi::Error(429, "Rate limit reached", "1"));
  fake_.Push(FakeOpenAi::Streamed({"Done. ", "<task_summary>Built a coffee page.</task_summary>"}));

  ppb::Project p = CreateProject("Build a landing page for a coffee shop");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  std::vector<opb::RunEvent> events;
  ASSERT_TRUE(Watch(runs[0].id(), 0, &events).ok());
  ASSERT_FALSE(events.empty());
  for (size_t i = 0; i < events.size(); ++i)
    EXPECT_EQ(events[i].sequence(), static_cast<int64_t>(i + 1));
  EXPECT_EQ(Kinds(events),
            (std::vector<std::string>{"it1", "call_1", "it2", "retrying 0s", "retrying 0s",
                                      "call_2", "it3", "retrying 1s", "succeeded"}));
  std::string streamed;
  std::string malformed_result;
  for (const auto& e : events) {
    if (e.has_model_output()) streamed += e.model_output().text();
    if (e.has_retrying()) {
      EXPECT_NE(e.retrying().reason().find("model endpoint: HTTP"), std::string::npos);
    }
    if (e.has_tool_result() && e.tool_result().call_id() == "call_2")
      malformed_result = e.tool_result().output();
  }
  EXPECT_EQ(streamed,
            "I'll write your page.Done. <task_summary>Built a coffee page.</task_summary>");
  EXPECT_EQ(malformed_result, "error: the arguments are not a JSON object");
  const auto& done = events.back().succeeded();
  EXPECT_EQ(done.title(), "Fake Title");
  EXPECT_EQ(done.response(), "I built your page.");
  EXPECT_EQ(done.summary(), "Built a coffee page.");

  // 6 agent calls, a title and a response; Retry-After honoured; the key sent, never logged.
  const std::vector<FakeOpenAi::Request> requests = fake_.requests();
  ASSERT_EQ(requests.size(), 8u);
  EXPECT_GE(requests[5].time - requests[4].time, absl::Seconds(1));
  for (const auto& r : requests) {
    EXPECT_EQ(r.json["model"], "fake-model");
    EXPECT_EQ(r.headers.at("Authorization"), std::string("Bearer ") + kApiKey);
  }
  EXPECT_EQ(orchestrators_[0].process->Output().find(kApiKey), std::string::npos);

  // Token usage: 5 answers of 10 + 5 tokens each (the failed calls cost nothing).
  opb::Run run = WaitForEnd(runs[0].id());
  EXPECT_EQ(run.state(), opb::Run::STATE_SUCCEEDED);
  EXPECT_EQ(run.prompt_tokens(), 50);
  EXPECT_EQ(run.completion_tokens(), 25);
  std::vector<mpb::Message> messages = Messages(p.id());
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1].content(), "I built your page.");
  EXPECT_EQ(messages[1].fragment().files().at("index.html"), "<h1>Fake Coffee</h1>");
}

TEST_F(OpenAiDownE2ETest, ARunRetriedAfterARateLimitWaitsAsLongAsTheServerAsked) {
  fake_.SetFallback(
      [](const FakeOpenAi::Request&) { return FakeOpenAi::Error(429, "slow down", "2"); });
  ppb::Project p = CreateProject("Build a page");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  std::vector<opb::RunEvent> events;
  ASSERT_TRUE(Watch(runs[0].id(), 0, &events).ok());
  // The model's own retry and the run's retry both wait the 2 s the server asked for (the run's
  // backoff alone would be about 1 s).
  EXPECT_EQ(Kinds(events), (std::vector<std::string>{"it1", "retrying 2s", "retrying 2s",
                                                     "retrying 2s", "failed"}));
}

TEST_F(OpenAiDownE2ETest, AModelThatStaysDownFailsTheRunWithAnErrorMessage) {
  fake_.SetFallback(
      [](const FakeOpenAi::Request&) { return FakeOpenAi::Error(503, "down for good", "0"); });

  ppb::Project p = CreateProject("Build a page");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  std::vector<opb::RunEvent> events;
  ASSERT_TRUE(Watch(runs[0].id(), 0, &events).ok());
  // Each attempt: a call, its retry, a call; then the run is retried once (the second attempt
  // resumes inside iteration 1: its start is journaled), and fails.
  EXPECT_EQ(Kinds(events), (std::vector<std::string>{"it1", "retrying 0s", "retrying 0s",
                                                     "retrying 0s", "failed"}));
  opb::Run run = WaitForEnd(runs[0].id());
  EXPECT_EQ(run.state(), opb::Run::STATE_FAILED);
  EXPECT_EQ(run.attempt(), 2);
  EXPECT_NE(run.error().find("HTTP 503: down for good"), std::string::npos) << run.error();
  EXPECT_EQ(fake_.calls(), 4u);
  std::vector<mpb::Message> messages;
  ASSERT_TRUE(Eventually([&] { return (messages = Messages(p.id())).size() == 2; }));
  EXPECT_EQ(messages[1].type(), mpb::Message::TYPE_ERROR);
  EXPECT_EQ(messages[1].content(), "Something went wrong. Please try again.");
}

// OpenAiModelChoiceE2ETest: the openai provider with a second model allowed.
class OpenAiModelChoiceE2ETest : public OpenAiE2ETest {
 protected:
  OpenAiModelChoiceE2ETest() {
    shared_env_ = {{"QAI_MODEL_PROVIDER", "openai"},
                   {"QAI_OPENAI_MODEL", "fake-model"},
                   {"QAI_MODEL_ALLOWED", "fake-large"}};
  }
};

TEST_F(OpenAiModelChoiceE2ETest, ARunAsksTheEndpointForTheModelItChose) {
  // Every agent turn writes a page and finishes.
  fake_.SetFallback([](const FakeOpenAi::Request& r) {
    const json& messages = r.json["messages"];
    const std::string system = messages.empty() ? "" : messages[0].value("content", "");
    if (system == orchestrator::kTitleSystemPrompt) return FakeOpenAi::Json("Fake Title");
    if (system == orchestrator::kResponseSystemPrompt)
      return FakeOpenAi::Json("I built your page.");
    return FakeOpenAi::Json("<task_summary>Built it.</task_summary>",
                            {{"call_1", orchestrator::kToolWriteFiles,
                              R"({"files":[{"path":"index.html","content":"<h1>Hi</h1>"}]})"}});
  });
  ppb::Project p = CreateProject("Build a page");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  ASSERT_EQ(runs.size(), 1u);
  opb::Run first = WaitForEnd(runs[0].id());
  ASSERT_EQ(first.state(), opb::Run::STATE_SUCCEEDED) << first.error();
  EXPECT_EQ(first.model(), "fake-model");
  const size_t before = fake_.requests().size();
  EXPECT_EQ(before, 3u) << "a turn, a title and a response";

  ASSERT_TRUE(Send(p.id(), "Make it bigger", [](mpb::CreateMessageRequest& req) {
                req.set_model("fake-large");
              }).ok());
  runs = WaitForRuns(p.id(), 2);
  ASSERT_EQ(runs.size(), 2u);
  opb::Run second = WaitForEnd(runs[0].id());
  ASSERT_EQ(second.state(), opb::Run::STATE_SUCCEEDED) << second.error();
  EXPECT_EQ(second.model(), "fake-large");
  const std::vector<FakeOpenAi::Request> requests = fake_.requests();
  ASSERT_EQ(requests.size(), before + 3);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].json["model"], i < before ? "fake-model" : "fake-large")
        << "request " << i;
  }
  EXPECT_EQ(second.prompt_tokens(), 30) << "its turn, title and response, 10 each";
}

}  // namespace
}  // namespace qai::testing
