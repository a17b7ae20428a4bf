// The caps on runs queued or running at once (QAI_RUN_MAX_ACTIVE_PER_PROJECT and
// QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL): RunStore::Start enforces them, serialised against
// concurrent Starts; RunHandlers::StartRun refuses with RESOURCE_EXHAUSTED and a QuotaFailure
// on the wire; CountActiveRuns tells MessageService the counts.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "services/orchestrator/api/handlers.h"
#include "services/orchestrator/store/run_store.h"
#include "tests/support/pg_server.h"

namespace qai::orchestrator {
namespace {

std::string Started(int attempt) { return "started " + std::to_string(attempt); }

class RunCapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pool =
        common::DbPool::Create({.url = testing::PgServer::Shared().CreateDatabase(), .size = 8});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    store_ = std::make_unique<RunStore>(pool_.get());
  }

  absl::StatusOr<RunRecord> Start(const std::string& project, const std::string& author,
                                  orchestrator::RunCaps caps,
                                  const std::string& message = common::NewUuid()) {
    return store_->Start({.id = common::NewUuid(),
                          .project_id = project,
                          .message_id = message,
                          .prompt = "Build a site",
                          .max_iterations = 5,
                          .queued_event = "queued",
                          .author = author,
                          .caps = caps});
  }

  int64_t Count(const std::string& sql) {
    long long n = -1;
    EXPECT_TRUE(pool_
                    ->Run([&](common::DbConnection& conn) -> absl::Status {
                      conn.session() << sql, soci::into(n);
                      return absl::OkStatus();
                    })
                    .ok());
    return n;
  }

  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<RunStore> store_;
};

// Subjects: the QuotaFailure subjects a status carries.
std::vector<std::string> Subjects(const absl::Status& status) {
  std::vector<std::string> out;
  for (const common::QuotaViolation& v : common::GetQuotaViolations(status))
    out.push_back(v.subject);
  return out;
}

TEST_F(RunCapsTest, TheRunPastTheProjectCapIsRefusedNamingTheProject) {
  const orchestrator::RunCaps caps{.per_project = 3, .per_principal = 0};
  const std::string project = common::NewUuid();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Start(project, "alice", caps).ok()) << i;
  absl::StatusOr<RunRecord> refused = Start(project, "bob", caps);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_NE(refused.status().message().find("QAI_RUN_MAX_ACTIVE_PER_PROJECT"), std::string::npos)
      << refused.status();
  EXPECT_EQ(Subjects(refused.status()), std::vector<std::string>{"project:" + project});
  EXPECT_EQ(Count("SELECT count(*) FROM orchestrator.runs"), 3)
      << "nothing was written for the refused run";
  EXPECT_EQ(Count("SELECT count(*) FROM orchestrator.run_events"), 3);
  // Another project has its own cap.
  EXPECT_TRUE(Start(common::NewUuid(), "alice", caps).ok());
  // No cap: as many as asked.
  EXPECT_TRUE(Start(project, "alice", {.per_project = 0, .per_principal = 0}).ok());
}

TEST_F(RunCapsTest, ThePrincipalCapCountsTheAuthorsRunsInEveryProject) {
  const orchestrator::RunCaps caps{.per_project = 10, .per_principal = 3};
  const std::string p1 = common::NewUuid(), p2 = common::NewUuid(), p3 = common::NewUuid();
  ASSERT_TRUE(Start(p1, "alice", caps).ok());
  ASSERT_TRUE(Start(p1, "alice", caps).ok());
  ASSERT_TRUE(Start(p2, "alice", caps).ok());
  // Runs of other principals and of no principal do not count against alice.
  ASSERT_TRUE(Start(p3, "bob", caps).ok());
  ASSERT_TRUE(Start(p3, "", caps).ok());
  absl::StatusOr<RunRecord> refused = Start(p3, "alice", caps);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_NE(refused.status().message().find("QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL"), std::string::npos)
      << refused.status();
  EXPECT_EQ(Subjects(refused.status()), std::vector<std::string>{"principal:alice"});
  EXPECT_TRUE(Start(p3, "bob", caps).ok());
  // A run without an author counts against its project only.
  EXPECT_TRUE(Start(p3, "", caps).ok());

  // Both caps reached: both are named.
  const orchestrator::RunCaps tight{.per_project = 2, .per_principal = 3};
  refused = Start(p1, "alice", tight);
  EXPECT_EQ(Subjects(refused.status()),
            (std::vector<std::string>{"project:" + p1, "principal:alice"}));
}

TEST_F(RunCapsTest, AFinishedOrCancelledRunFreesASlot) {
  const orchestrator::RunCaps caps{.per_project = 2, .per_principal = 3};
  const std::string project = common::NewUuid();
  absl::StatusOr<RunRecord> a = Start(project, "alice", caps);
  absl::StatusOr<RunRecord> b = Start(project, "alice", caps);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(Start(project, "alice", caps).status().code(), absl::StatusCode::kResourceExhausted);

  // a runs (still active) and then succeeds: its slot is free.
  auto claimed = store_->Claim("w1", absl::Seconds(30), Started);
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  ASSERT_EQ((*claimed)->run.id, a->id);
  ASSERT_EQ(Start(project, "alice", caps).status().code(), absl::StatusCode::kResourceExhausted)
      << "a RUNNING run counts too";
  ASSERT_TRUE(
      store_->Finish((*claimed)->lease, {.state = kSucceeded, .terminal_event = "succeeded"}).ok());
  absl::StatusOr<RunRecord> c = Start(project, "alice", caps);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(Start(project, "alice", caps).status().code(), absl::StatusCode::kResourceExhausted);

  // b is cancelled while queued: its slot is free too.
  ASSERT_TRUE(store_->Cancel(b->id, "cancelled").ok());
  absl::StatusOr<RunRecord> d = Start(project, "alice", caps);
  ASSERT_TRUE(d.ok()) << d.status();

  // alice has c and d active; her third slot is free in another project, not a fourth.
  ASSERT_TRUE(Start(common::NewUuid(), "alice", caps).ok());
  EXPECT_EQ(Subjects(Start(common::NewUuid(), "alice", caps).status()),
            std::vector<std::string>{"principal:alice"});
}

TEST_F(RunCapsTest, ARepeatOfAnAcceptedStartReturnsItsRunEvenAtTheCap) {
  const orchestrator::RunCaps caps{.per_project = 1, .per_principal = 1};
  const std::string project = common::NewUuid(), message = common::NewUuid();
  absl::StatusOr<RunRecord> first = Start(project, "alice", caps, message);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->author, "alice");
  // The project and alice are at their caps now; the relay delivering the same StartRun again
  // (at least once) gets the run it started, not a refusal.
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<RunRecord> again = Start(project, "alice", caps, message);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->id, first->id);
  }
  EXPECT_EQ(Start(project, "alice", caps).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Count("SELECT count(*) FROM orchestrator.runs"), 1);
  // Even past the caps (runs started without them, or caps an operator lowered since).
  ASSERT_TRUE(Start(project, "alice", {.per_project = 0, .per_principal = 0}).ok());
  absl::StatusOr<RunRecord> again = Start(project, "alice", caps, message);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, first->id);
}

TEST_F(RunCapsTest, ConcurrentStartsNeverGetPastTheCaps) {
  // Twelve Starts in one project and twelve of the same author in twelve other projects, all
  // at once: the project takes at most 3, the author exactly 5 in all.
  const orchestrator::RunCaps caps{.per_project = 3, .per_principal = 5};
  const std::string project = common::NewUuid();
  std::atomic<int> accepted_in_project = 0, accepted = 0, refused = 0, other = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < 24; ++i) {
    threads.emplace_back([&, i] {
      const bool same_project = i % 2 == 0;
      absl::StatusOr<RunRecord> r =
          Start(same_project ? project : common::NewUuid(), "alice", caps);
      if (r.ok()) {
        ++accepted;
        if (same_project) ++accepted_in_project;
      } else if (r.status().code() == absl::StatusCode::kResourceExhausted) {
        ++refused;
      } else {
        ADD_FAILURE() << r.status();
        ++other;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(other, 0);
  EXPECT_EQ(accepted, 5);
  EXPECT_EQ(refused, 19);
  EXPECT_LE(accepted_in_project, 3);
  EXPECT_EQ(
      Count("SELECT count(*) FROM orchestrator.runs WHERE author = 'alice' AND state IN (1, 2)"),
      5);
  EXPECT_LE(Count("SELECT count(*) FROM orchestrator.runs WHERE project_id = '" + project + "'"),
            3);

  // The project cap alone, under contention: exactly the cap.
  const std::string crowded = common::NewUuid();
  std::atomic<int> in_crowded = 0;
  threads.clear();
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      if (Start(crowded, "user-" + std::to_string(i), {.per_project = 4, .per_principal = 20}).ok())
        ++in_crowded;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(in_crowded, 4);
  EXPECT_EQ(Count("SELECT count(*) FROM orchestrator.runs WHERE project_id = '" + crowded + "'"),
            4);
}

TEST_F(RunCapsTest, CountActiveCountsQueuedAndRunningRunsOnly) {
  const orchestrator::RunCaps none{.per_project = 0, .per_principal = 0};
  const std::string p1 = common::NewUuid(), p2 = common::NewUuid();
  ASSERT_TRUE(Start(p1, "alice", none).ok());
  ASSERT_TRUE(Start(p1, "alice", none).ok());
  ASSERT_TRUE(Start(p1, "bob", none).ok());
  ASSERT_TRUE(Start(p2, "alice", none).ok());
  auto claimed = store_->Claim("w1", absl::Seconds(30), Started);  // p1's first (or p2's) runs now
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  absl::StatusOr<orchestrator::ActiveRuns> counts = store_->CountActive(p1, "alice");
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->project, 3);
  EXPECT_EQ(counts->principal, 3);
  ASSERT_TRUE(
      store_->Finish((*claimed)->lease, {.state = kSucceeded, .terminal_event = "succeeded"}).ok());
  counts = store_->CountActive(p1, "alice");
  EXPECT_EQ(counts->principal, 2);
  counts = store_->CountActive(p2, "");
  EXPECT_EQ(counts->principal, 0) << "no author, no principal count";
  EXPECT_EQ(store_->CountActive(common::NewUuid(), "carol")->project, 0);
}

// The author's count reads the partial index of active runs (so finished runs, however many,
// cost it nothing) once sequential scans are out of the picture; the project's likewise.
TEST_F(RunCapsTest, TheCountsUseThePartialIndexesOfActiveRuns) {
  std::string plan;
  ASSERT_TRUE(
      pool_
          ->Transaction([&](common::DbConnection& conn) -> absl::Status {
            conn.session() << "SET LOCAL enable_seqscan = off";
            const std::string author = "alice", project = common::NewUuid();
            for (const char* sql : {"EXPLAIN SELECT count(*) FROM orchestrator.runs"
                                    " WHERE author = :v AND state IN (1, 2)",
                                    "EXPLAIN SELECT count(*) FROM orchestrator.runs"
                                    " WHERE project_id = CAST(:v AS uuid) AND state IN (1, 2)"}) {
              const std::string& value = plan.empty() ? author : project;
              soci::rowset<std::string> rows = (conn.session().prepare << sql, soci::use(value));
              for (const std::string& line : rows) plan += line + "\n";
            }
            return absl::OkStatus();
          })
          .ok());
  EXPECT_NE(plan.find("runs_author_active"), std::string::npos) << plan;
  EXPECT_NE(plan.find("runs_project_active"), std::string::npos) << plan;
}

class RunHandlersCapsTest : public RunCapsTest {
 protected:
  void SetUp() override {
    RunCapsTest::SetUp();
    bounds_.caps = {.per_project = 2, .per_principal = 20};
    // StartRun and CountActiveRuns ask ProjectService nothing (services see every project).
    handlers_ = std::make_unique<RunHandlers>(store_.get(), nullptr, nullptr, &bounds_, [] {});
  }

  v1::StartRunRequest Request(const std::string& project, const std::string& author) {
    v1::StartRunRequest req;
    req.set_project_id(project);
    req.set_message_id(common::NewUuid());
    req.set_prompt("Build a site");
    req.set_author(author);
    return req;
  }

  common::CallContext service_{
      .principal = {.id = "service:messages", .role = common::Role::kService}, .request_id = "r1"};
  common::CallContext user_{.principal = {.id = "alice", .role = common::Role::kUser},
                            .request_id = "r2"};
  orchestrator::RunBounds bounds_;
  std::unique_ptr<RunHandlers> handlers_;
};

TEST_F(RunHandlersCapsTest, StartRunPastTheCapIsResourceExhaustedWithAQuotaFailureOnTheWire) {
  const std::string project = common::NewUuid();
  v1::Run run;
  const v1::StartRunRequest first = Request(project, "alice");
  ASSERT_TRUE(handlers_->StartRun(service_, first, run).ok());
  EXPECT_EQ(run.author(), "alice");
  ASSERT_TRUE(handlers_->StartRun(service_, Request(project, "alice"), run).ok());

  v1::Run refused_run;
  const absl::Status refused =
      handlers_->StartRun(service_, Request(project, "alice"), refused_run);
  const grpc::Status wire = common::ToGrpcStatus(refused);
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(wire.error_message().find("project " + project + " has 2 runs queued or running"),
            std::string::npos)
      << wire.error_message();
  EXPECT_NE(wire.error_message().find("QAI_RUN_MAX_ACTIVE_PER_PROJECT allows (2)"),
            std::string::npos)
      << wire.error_message();
  google::rpc::Status rich;
  ASSERT_TRUE(rich.ParseFromString(wire.error_details()));
  ASSERT_EQ(rich.details_size(), 1);
  google::rpc::QuotaFailure failure;
  ASSERT_TRUE(rich.details(0).UnpackTo(&failure));
  ASSERT_EQ(failure.violations_size(), 1);
  EXPECT_EQ(failure.violations(0).subject(), "project:" + project);
  EXPECT_NE(failure.violations(0).description().find("at most 2"), std::string::npos);

  // The relay's repeat of the first StartRun still gets its run.
  v1::Run again;
  ASSERT_TRUE(handlers_->StartRun(service_, first, again).ok());
  EXPECT_EQ(again.message_id(), first.message_id());
}

TEST_F(RunHandlersCapsTest, CountActiveRunsIsForServicesAndCountsAProjectAndAnAuthor) {
  const std::string project = common::NewUuid();
  v1::Run run;
  ASSERT_TRUE(handlers_->StartRun(service_, Request(project, "alice"), run).ok());
  ASSERT_TRUE(handlers_->StartRun(service_, Request(common::NewUuid(), "alice"), run).ok());
  v1::CountActiveRunsRequest req;
  req.set_project_id(project);
  req.set_author("alice");
  v1::CountActiveRunsResponse resp;
  ASSERT_TRUE(handlers_->CountActiveRuns(service_, req, resp).ok());
  EXPECT_EQ(resp.project_active(), 1);
  EXPECT_EQ(resp.principal_active(), 2);

  EXPECT_EQ(handlers_->CountActiveRuns(user_, req, resp).code(),
            absl::StatusCode::kPermissionDenied);
  req.set_project_id("not-a-uuid");
  EXPECT_EQ(handlers_->CountActiveRuns(service_, req, resp).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RunHandlersCapsTest, StartRunRefusesAnOverlongAuthor) {
  v1::Run run;
  const absl::Status s =
      handlers_->StartRun(service_, Request(common::NewUuid(), std::string(257, 'a')), run);
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(common::GetFieldViolations(s).size(), 1u);
  EXPECT_EQ(common::GetFieldViolations(s)[0].field, "author");
}

}  // namespace
}  // namespace qai::orchestrator
