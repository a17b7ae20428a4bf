#include "services/orchestrator/store/run_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "qai/messages/v1/messages.pb.h"
#include "qai/sandbox/v1/sandbox.pb.h"
#include "services/orchestrator/store/version_store.h"
#include "tests/support/pg_server.h"

namespace qai::orchestrator {
namespace {

std::string Started(int attempt) { return "started " + std::to_string(attempt); }
std::string Retrying(int attempt) { return "retrying " + std::to_string(attempt); }
const RunStore::RescueEvents kRescue{
    Retrying, [](const std::string& error) { return "failed: " + error; }, "cancelled",
    [](const std::string& run, const std::string&) { return "error for " + run; }};

class RunStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pool =
        common::DbPool::Create({.url = testing::PgServer::Shared().CreateDatabase(), .size = 8});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    store_ = std::make_unique<RunStore>(pool_.get());
  }

  RunRecord MustStart(const std::string& project, const std::string& message = common::NewUuid(),
                      bool reject = false) {
    auto r = store_->Start({.id = common::NewUuid(),
                            .project_id = project,
                            .message_id = message,
                            .prompt = "Build a site",
                            .max_iterations = 5,
                            .reject_if_active = reject,
                            .queued_event = "queued"});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(RunRecord{});
  }

  // MustStartBy: a run of `author` in a project of its own.
  RunRecord MustStartBy(const std::string& author) {
    auto r = store_->Start({.id = common::NewUuid(),
                            .project_id = common::NewUuid(),
                            .message_id = common::NewUuid(),
                            .prompt = "Build a site",
                            .max_iterations = 5,
                            .queued_event = "queued",
                            .author = author});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(RunRecord{});
  }

  std::optional<RunStore::Claimed> Claim(const std::string& worker = "w1",
                                         absl::Duration lease = absl::Seconds(30)) {
    auto c = store_->Claim(worker, lease, Started);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : std::nullopt;
  }

  std::vector<std::string> EventTexts(const std::string& run) {
    auto events = store_->Events(run, 0, 1000);
    EXPECT_TRUE(events.ok()) << events.status();
    std::vector<std::string> out;
    int64_t expect = 1;
    for (const StoredEvent& e : *events) {
      EXPECT_EQ(e.sequence, expect++) << "gap-free";
      out.push_back(e.event);
    }
    return out;
  }

  // Outbox: the payloads of the orchestrator's outbox rows, in write order.
  std::vector<std::string> Outbox() {
    std::vector<std::string> out;
    EXPECT_TRUE(pool_
                    ->Run([&](common::DbConnection& conn) -> absl::Status {
                      soci::rowset<std::string> rows =
                          (conn.session().prepare
                           << "SELECT convert_from(payload, 'UTF8') FROM orchestrator.outbox"
                              " WHERE topic = 'messages.RecordRunResult' ORDER BY seq");
                      out.assign(rows.begin(), rows.end());
                      return absl::OkStatus();
                    })
                    .ok());
    return out;
  }

  // EventRows: how many rows of run_events the run has.
  int64_t EventRows(const std::string& run_id) {
    long long n = -1;
    EXPECT_TRUE(pool_
                    ->Run([&](common::DbConnection& conn) -> absl::Status {
                      conn.session() << "SELECT count(*) FROM orchestrator.run_events WHERE run_id "
                                        "= CAST(:id AS uuid)",
                          soci::use(run_id), soci::into(n);
                      return absl::OkStatus();
                    })
                    .ok());
    return n;
  }

  // Stored: what the relay does once MessageService stored the run's result.
  absl::Status Stored(const std::string& run_id, const std::string& message = common::NewUuid(),
                      const std::string& url = "", const std::string& title = "") {
    return store_->ResultStored(
        {.run_id = run_id,
         .message_id = message,
         .sandbox_url = url,
         .title = title,
         .succeeded_event = [](int v) { return absl::StrCat("succeeded as version ", v); }});
  }

  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<RunStore> store_;
};

TEST_F(RunStoreTest, StartIsIdempotentOnTheMessageAndQueues) {
  const std::string project = common::NewUuid(), message = common::NewUuid();
  RunRecord run = MustStart(project, message);
  EXPECT_EQ(run.state, kQueued);
  EXPECT_EQ(run.last_sequence, 1);
  EXPECT_EQ(run.max_iterations, 5);
  RunRecord again = MustStart(project, message);
  EXPECT_EQ(again.id, run.id);
  EXPECT_EQ(EventTexts(run.id), std::vector<std::string>{"queued"});
  auto got = store_->Get(run.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->prompt, "Build a site");
  EXPECT_EQ(store_->Get(common::NewUuid()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RunStoreTest, RejectRefusesWhileTheProjectHasAnActiveRun) {
  const std::string project = common::NewUuid();
  MustStart(project);
  auto rejected = store_->Start({.id = common::NewUuid(),
                                 .project_id = project,
                                 .message_id = common::NewUuid(),
                                 .prompt = "x",
                                 .reject_if_active = true,
                                 .queued_event = "queued"});
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kFailedPrecondition);
  MustStart(common::NewUuid(), common::NewUuid(), /*reject=*/true);  // another project is free
}

TEST_F(RunStoreTest, OneRunningRunPerProjectInArrivalOrder) {
  const std::string p1 = common::NewUuid(), p2 = common::NewUuid();
  RunRecord a = MustStart(p1), b = MustStart(p1), c = MustStart(p2);
  auto first = Claim("w1");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->run.id, a.id);
  EXPECT_EQ(first->run.state, kRunning);
  EXPECT_EQ(first->run.attempt, 1);
  auto second = Claim("w2");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->run.id, c.id) << "p1's second run waits for its first";
  EXPECT_FALSE(Claim("w3"));
  ASSERT_TRUE(
      store_->Finish(first->lease, {.state = kSucceeded, .terminal_event = "succeeded"}).ok());
  auto third = Claim("w3");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->run.id, b.id);
  EXPECT_EQ(EventTexts(a.id), (std::vector<std::string>{"queued", "started 1", "succeeded"}));
  auto done = store_->Get(a.id);
  EXPECT_EQ(done->state, kSucceeded);
  EXPECT_TRUE(done->end_time.has_value());
}

TEST_F(RunStoreTest, ALostLeaseFencesItsWorkerOut) {
  RunRecord run = MustStart(common::NewUuid());
  auto old = Claim("w1", absl::Milliseconds(100));
  ASSERT_TRUE(old);
  ASSERT_TRUE(store_->Append(old->lease, {"iteration 1"}, 1).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  auto rescued = store_->RescueExpired(3, kRescue);
  ASSERT_TRUE(rescued.ok()) << rescued.status();
  EXPECT_EQ(*rescued, 1);
  auto fresh = Claim("w2");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->run.id, run.id);
  EXPECT_EQ(fresh->run.attempt, 2);
  EXPECT_NE(fresh->lease.token, old->lease.token);
  // The first worker wakes up and tries to go on: every write is refused.
  EXPECT_EQ(store_->Append(old->lease, {"stale"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Heartbeat(old->lease, absl::Seconds(30)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Finish(old->lease, {.state = kSucceeded, .terminal_event = "x"}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Requeue(old->lease, absl::ZeroDuration(), "r").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->AddUsage(old->lease, 100, 10).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->Append(fresh->lease, {"iteration 1 again"}, 1).ok());
  EXPECT_EQ(EventTexts(run.id),
            (std::vector<std::string>{"queued", "started 1", "iteration 1", "retrying 1",
                                      "started 2", "iteration 1 again"}));
}

TEST_F(RunStoreTest, TokenUsageAddsUpOverCallsAndAttempts) {
  RunRecord run = MustStart(common::NewUuid());
  EXPECT_EQ(run.prompt_tokens, 0);
  auto first = Claim();
  ASSERT_TRUE(first);
  ASSERT_TRUE(store_->AddUsage(first->lease, 100, 20).ok());
  ASSERT_TRUE(store_->AddUsage(first->lease, 150, 30).ok());
  ASSERT_TRUE(store_->Requeue(first->lease, absl::ZeroDuration(), "retrying").ok());
  auto second = Claim();
  ASSERT_TRUE(second);
  ASSERT_TRUE(store_->AddUsage(second->lease, 7, 3).ok());
  auto got = store_->Get(run.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->prompt_tokens, 257);
  EXPECT_EQ(got->completion_tokens, 53);
}

TEST_F(RunStoreTest, RescueFailsARunThatUsedItsAttempts) {
  RunRecord run = MustStart(common::NewUuid());
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto c = Claim("w", absl::Milliseconds(50));
    ASSERT_TRUE(c);
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    ASSERT_TRUE(store_->RescueExpired(2, kRescue).ok());
  }
  auto got = store_->Get(run.id);
  EXPECT_EQ(got->state, kFailed);
  EXPECT_NE(got->error.find("lost 2 times"), std::string::npos) << got->error;
  EXPECT_FALSE(Claim());
  EXPECT_EQ(Outbox(), std::vector<std::string>{"error for " + run.id})
      << "its ERROR message goes out with the failure";
}

TEST_F(RunStoreTest, AFailedRunsErrorMessageIsWrittenWithItsEndOnly) {
  RunRecord run = MustStart(common::NewUuid());
  auto c = Claim();
  ASSERT_TRUE(c);
  // A worker that lost its lease writes neither the end nor the message.
  ASSERT_TRUE(
      store_
          ->Finish(
              {run.id, c->lease.token + 1},
              {.state = kFailed, .error = "x", .terminal_event = "failed", .error_result = "late"})
          .code() == absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Outbox().empty());
  ASSERT_TRUE(store_
                  ->Finish(c->lease, {.state = kFailed,
                                      .error = "boom",
                                      .terminal_event = "failed",
                                      .error_result = "sorry"})
                  .ok());
  EXPECT_EQ(Outbox(), std::vector<std::string>{"sorry"});
  const std::string message = common::NewUuid();
  ASSERT_TRUE(Stored(run.id, message).ok());
  ASSERT_TRUE(Stored(run.id).ok());
  RunRecord got = *store_->Get(run.id);
  EXPECT_EQ(got.result_message_id, message) << "a redelivery changes nothing";
  EXPECT_EQ(got.state, kFailed) << "the ERROR message does not make a failed run succeed";
}

TEST_F(RunStoreTest, APostedResultEndsTheLeaseAndTheRunSucceedsOnceItsMessageIsStored) {
  const std::string project = common::NewUuid();
  RunRecord run = MustStart(project);
  RunRecord next = MustStart(project);
  auto c = Claim("w1", absl::Milliseconds(200));
  ASSERT_TRUE(c);
  const std::string snapshot = common::NewUuid();
  // A worker that lost its lease posts nothing.
  EXPECT_EQ(store_->PostResult({run.id, c->lease.token + 1}, {.result = "late"}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Outbox().empty());
  ASSERT_TRUE(
      store_->PostResult(c->lease, {.result = "result", .workspace_snapshot_id = snapshot}).ok());
  EXPECT_EQ(Outbox(), std::vector<std::string>{"result"});
  EXPECT_EQ(store_->WorkspaceOf(project)->value().snapshot_id, snapshot);

  // Posted: the worker's lease is over, yet the run is still active, and no one rescues it.
  EXPECT_EQ(store_->Heartbeat(c->lease, absl::Seconds(30)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Append(c->lease, {"late event"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past the lease
  EXPECT_EQ(*store_->RescueExpired(3, kRescue), 0);
  EXPECT_EQ(store_->Get(run.id)->state, kRunning);
  EXPECT_EQ(store_->CountActive(project, "")->project, 2);
  EXPECT_FALSE(Claim()) << "the project's next run waits for the result";

  const std::string message = common::NewUuid();
  ASSERT_TRUE(Stored(run.id, message, "http://preview/x/").ok());
  ASSERT_TRUE(Stored(run.id, common::NewUuid(), "again").ok());
  RunRecord done = *store_->Get(run.id);
  EXPECT_EQ(done.state, kSucceeded);
  EXPECT_EQ(done.result_message_id, message) << "a redelivery changes nothing";
  EXPECT_EQ(done.sandbox_url, "http://preview/x/");
  EXPECT_TRUE(done.end_time.has_value());
  EXPECT_EQ(EventTexts(run.id),
            (std::vector<std::string>{"queued", "started 1", "succeeded as version 1"}));
  EXPECT_EQ(done.version, 1);
  std::optional<RunStore::Claimed> after = Claim();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->run.id, next.id);
}

TEST_F(RunStoreTest, EverySuccessMakesTheNextVersionAndAFailureOnlyADraft) {
  const std::string project = common::NewUuid();
  auto succeed = [&](const std::string& snapshot, const std::string& title) {
    RunRecord run = MustStart(project);
    auto c = Claim();
    EXPECT_TRUE(c && c->run.id == run.id);
    EXPECT_TRUE(
        store_->PostResult(c->lease, {.result = "r", .workspace_snapshot_id = snapshot}).ok());
    EXPECT_TRUE(Stored(run.id, common::NewUuid(), "http://p/" + snapshot + "/", title).ok());
    return run.id;
  };
  const std::string first_snapshot = common::NewUuid();
  const std::string first = succeed(first_snapshot, "One");

  RunRecord failing = MustStart(project);
  auto c = Claim();
  ASSERT_TRUE(c);
  const std::string draft = common::NewUuid();
  ASSERT_TRUE(store_
                  ->Finish(c->lease, {.state = kFailed,
                                      .error = "x",
                                      .terminal_event = "failed",
                                      .draft_snapshot_id = draft,
                                      .draft_url = "http://p/draft/"})
                  .ok());
  RunRecord failed = *store_->Get(failing.id);
  EXPECT_EQ(failed.draft_url, "http://p/draft/");
  EXPECT_EQ(failed.version, 0);
  EXPECT_EQ(store_->WorkspaceOf(project)->value().snapshot_id, first_snapshot)
      << "the project's state stays its last version";

  const std::string third = succeed(common::NewUuid(), "Three");
  EXPECT_EQ(store_->Get(first)->version, 1);
  EXPECT_EQ(store_->Get(third)->version, 2);

  VersionStore versions(pool_.get());
  absl::StatusOr<std::vector<VersionRecord>> all = versions.List(project, 10, std::nullopt);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].number, 2) << "newest first";
  EXPECT_EQ((*all)[0].run_id, third);
  EXPECT_EQ((*all)[1].title, "One");
  EXPECT_EQ((*all)[1].snapshot_id, first_snapshot);
  EXPECT_EQ((*all)[1].sandbox_url, "http://p/" + first_snapshot + "/");
  EXPECT_EQ(versions.List(project, 1, std::nullopt)->size(), 1u);
  ASSERT_EQ(versions.List(project, 10, 2)->size(), 1u);
  EXPECT_EQ(versions.List(project, 10, 2)->front().number, 1);
  EXPECT_EQ(versions.Get(project, 2)->run_id, third);
  EXPECT_EQ(versions.Get(project, 3).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(versions.Get(common::NewUuid(), 1).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RunStoreTest, ARestoreIsARunOfItsRequestAndItsVersionSaysWhereItCameFrom) {
  const std::string project = common::NewUuid();
  RunRecord prompt = MustStart(project);
  auto restore = [&](int version, const std::string& key) {
    return store_->Start({.id = common::NewUuid(),
                          .project_id = project,
                          .prompt = "Restore version 1",
                          .max_iterations = 1,
                          .queued_event = "queued",
                          .restore_version = version,
                          .request_key = key});
  };
  absl::StatusOr<RunRecord> first = restore(1, "alice:r1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->message_id.empty()) << "a restore answers no message";
  EXPECT_EQ(first->restore_version, 1);
  EXPECT_EQ(restore(1, "alice:r1")->id, first->id) << "a repeat is the same run";
  EXPECT_EQ(restore(2, "alice:r1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_
                ->Start({.id = common::NewUuid(),
                         .project_id = common::NewUuid(),
                         .prompt = "Restore version 1",
                         .queued_event = "queued",
                         .restore_version = 1,
                         .request_key = "alice:r1"})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument)
      << "a key names one request: not the run of another project";
  EXPECT_NE(restore(1, "bob:r1")->id, first->id) << "keys are per principal";

  // The prompt's run goes first (the project's line), then the restore's.
  auto c = Claim();
  ASSERT_TRUE(c && c->run.id == prompt.id);
  ASSERT_TRUE(
      store_->PostResult(c->lease, {.result = "r", .workspace_snapshot_id = common::NewUuid()})
          .ok());
  ASSERT_TRUE(Stored(prompt.id).ok());
  c = Claim();
  ASSERT_TRUE(c && c->run.id == first->id);
  EXPECT_EQ(c->run.restore_version, 1);
  ASSERT_TRUE(
      store_->PostResult(c->lease, {.result = "r", .workspace_snapshot_id = common::NewUuid()})
          .ok());
  ASSERT_TRUE(Stored(first->id).ok());
  VersionStore versions(pool_.get());
  EXPECT_EQ(versions.Get(project, 2)->restored_from, 1);
  EXPECT_EQ(versions.Get(project, 1)->restored_from, 0);
}

TEST_F(RunStoreTest, ARefusedResultFailsTheRunWaitingForItOnly) {
  RunRecord run = MustStart(common::NewUuid());
  auto c = Claim();
  ASSERT_TRUE(c);
  ASSERT_TRUE(store_->PostResult(c->lease, {.result = "result"}).ok());
  // What the relay does when MessageService refuses the row for good.
  auto refuse = [&](const std::string& run_id) {
    messages::v1::RecordAgentResultRequest req;
    req.set_run_id(run_id);
    const common::OutboxRow row{
        .id = "1", .topic = kTopicRecordResult, .payload = req.SerializeAsString()};
    return pool_->Transaction([&](common::DbConnection& conn) {
      return MakeParkedHandlers(store_.get())[kTopicRecordResult](
          conn, row, absl::NotFoundError("project gone"));
    });
  };
  ASSERT_TRUE(refuse(run.id).ok());
  RunRecord failed = *store_->Get(run.id);
  EXPECT_EQ(failed.state, kFailed);
  EXPECT_EQ(failed.error, "its result could not be stored: project gone");
  EXPECT_EQ(EventTexts(run.id).size(), 3u);
  // A refused ERROR message (the run is not waiting) changes nothing.
  ASSERT_TRUE(refuse(run.id).ok());
  EXPECT_EQ(EventTexts(run.id).size(), 3u);
  RunRecord queued = MustStart(common::NewUuid());
  ASSERT_TRUE(refuse(queued.id).ok());
  EXPECT_EQ(store_->Get(queued.id)->state, kQueued);
}

TEST_F(RunStoreTest, EveryStateChangeIsAnnouncedToTheProjectInItsTransaction) {
  // A store that announces: each change's payload here is "<state> <sequence> <project>".
  RunStore store(pool_.get(), [](const RunStateChange& c) {
    return absl::StrCat(c.state, " ", c.sequence, " ", c.project_id,
                        c.run_create_time > absl::UnixEpoch() ? "" : " no time");
  });
  auto news = [&] {
    std::vector<std::string> out;
    EXPECT_TRUE(pool_
                    ->Run([&](common::DbConnection& conn) -> absl::Status {
                      soci::rowset<std::string> rows =
                          (conn.session().prepare
                           << "SELECT convert_from(payload, 'UTF8') || ' ' || ordering_key"
                              " FROM orchestrator.outbox WHERE topic = 'projects.RecordLatestRun'"
                              " ORDER BY seq");
                      out.assign(rows.begin(), rows.end());
                      return absl::OkStatus();
                    })
                    .ok());
    return out;
  };
  const std::string p = common::NewUuid();
  const std::string key = " latest_run:" + p;
  auto started = store.Start({.id = common::NewUuid(),
                              .project_id = p,
                              .message_id = common::NewUuid(),
                              .prompt = "x",
                              .max_iterations = 5,
                              .queued_event = "queued"});
  ASSERT_TRUE(started.ok()) << started.status();
  auto claimed = store.Claim("w", absl::Seconds(30), Started);
  ASSERT_TRUE(claimed.ok() && *claimed);
  ASSERT_TRUE(store.Requeue((*claimed)->lease, absl::ZeroDuration(), "retrying", false).ok());
  auto again = store.Claim("w", absl::Seconds(30), Started);
  ASSERT_TRUE(again.ok() && *again);
  ASSERT_TRUE(
      store.Append((*again)->lease, {"progress"}, std::nullopt).ok());  // not a state change
  ASSERT_TRUE(
      store.Finish((*again)->lease, {.state = kSucceeded, .terminal_event = "succeeded"}).ok());
  auto queued = store.Start({.id = common::NewUuid(),
                             .project_id = p,
                             .message_id = common::NewUuid(),
                             .prompt = "y",
                             .max_iterations = 5,
                             .queued_event = "queued"});
  ASSERT_TRUE(queued.ok());
  ASSERT_TRUE(store.Cancel(queued->id, "cancelled").ok());
  EXPECT_EQ(news(), (std::vector<std::string>{"1 1 " + p + key, "2 2 " + p + key, "1 3 " + p + key,
                                              "2 4 " + p + key, "3 6 " + p + key, "1 1 " + p + key,
                                              "5 2 " + p + key}));
  // A worker that lost its lease announces nothing.
  const size_t before = news().size();
  auto third = store.Start({.id = common::NewUuid(),
                            .project_id = p,
                            .message_id = common::NewUuid(),
                            .prompt = "z",
                            .max_iterations = 5,
                            .queued_event = "queued"});
  auto lease = store.Claim("w", absl::Seconds(30), Started);
  ASSERT_TRUE(lease.ok() && *lease);
  EXPECT_FALSE(store
                   .Finish({third->id, (*lease)->lease.token + 1},
                           {.state = kSucceeded, .terminal_event = "x"})
                   .ok());
  EXPECT_EQ(news().size(), before + 2) << "its queued and started only";
}

TEST_F(RunStoreTest, TheJournalIsFencedKeptAcrossAttemptsAndDroppedAtTheEnd) {
  const std::string project = common::NewUuid();
  RunRecord run = MustStart(project);
  auto c = Claim("w", absl::Milliseconds(50));
  ASSERT_TRUE(c);
  ASSERT_TRUE(store_->Append(c->lease, {"a"}, 1, {R"({"kind":"start","iteration":1})"}).ok());
  ASSERT_TRUE(
      store_->Append(c->lease, {}, std::nullopt, {R"({"kind":"model","iteration":1})"}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  ASSERT_TRUE(store_->RescueExpired(3, kRescue).ok());
  // The lapsed worker writes no step; the next attempt sees the journal as it was.
  EXPECT_EQ(store_->Append(c->lease, {"b"}, std::nullopt, {R"({"kind":"end","iteration":1})"})
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  auto again = Claim();
  ASSERT_TRUE(again);
  auto steps = store_->Steps(run.id);
  ASSERT_TRUE(steps.ok());
  ASSERT_EQ(steps->size(), 2u);
  EXPECT_NE((*steps)[1].find("model"), std::string::npos);
  EXPECT_FALSE(*store_->WorkspaceOf(project)) << "no run of the project ended yet";
  const std::string snapshot = common::NewUuid();
  ASSERT_TRUE(
      store_->PostResult(again->lease, {.result = "r", .workspace_snapshot_id = snapshot}).ok());
  ASSERT_TRUE(Stored(run.id).ok());
  EXPECT_TRUE(store_->Steps(run.id)->empty()) << "the journal goes with the run's end";
  auto state = store_->WorkspaceOf(project);
  ASSERT_TRUE(state.ok() && *state);
  EXPECT_EQ((*state)->run_id, run.id);
  EXPECT_EQ((*state)->snapshot_id, snapshot);
}

TEST_F(RunStoreTest, APurgeForgetsTheWorkspaceAndAsksTheSandboxThroughTheOutbox) {
  const std::string project = common::NewUuid();
  MustStart(project);
  auto c = Claim();
  ASSERT_TRUE(c);
  ASSERT_TRUE(
      store_->PostResult(c->lease, {.result = "r", .workspace_snapshot_id = common::NewUuid()})
          .ok());
  ASSERT_TRUE(Stored(c->run.id).ok());
  ASSERT_TRUE(*store_->WorkspaceOf(project));
  VersionStore versions(pool_.get());
  ASSERT_EQ(versions.List(project, 10, std::nullopt)->size(), 1u);
  ASSERT_TRUE(store_->PurgeProject(project).ok());
  EXPECT_FALSE(*store_->WorkspaceOf(project));
  EXPECT_TRUE(versions.List(project, 10, std::nullopt)->empty()) << "versions go with the purge";
  std::vector<std::string> purges;
  ASSERT_TRUE(pool_
                  ->Run([&](common::DbConnection& conn) -> absl::Status {
                    soci::rowset<std::string> rows =
                        (conn.session().prepare
                         << "SELECT encode(payload, 'hex') FROM orchestrator.outbox"
                            " WHERE topic = 'sandbox.PurgeProject'");
                    purges.assign(rows.begin(), rows.end());
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_EQ(purges.size(), 1u);
  sandbox::v1::PurgeProjectRequest purge;
  ASSERT_TRUE(purge.ParseFromString(absl::HexStringToBytes(purges[0])));
  EXPECT_EQ(purge.project_id(), project);
}

TEST_F(RunStoreTest, StepsAreCountedOverAttemptsAndOutliveTheJournal) {
  RunRecord run = MustStart(common::NewUuid());
  EXPECT_EQ(run.steps, 0);
  auto c = Claim("w", absl::Milliseconds(50));
  ASSERT_TRUE(c);
  ASSERT_TRUE(store_->Append(c->lease, {"a"}, 1, {R"({"kind":"start","iteration":1})"}).ok());
  ASSERT_TRUE(store_->Append(c->lease, {"b"}).ok()) << "events without a step";
  ASSERT_TRUE(
      store_->Append(c->lease, {}, std::nullopt, {R"({"kind":"model","iteration":1})"}).ok());
  EXPECT_EQ(store_->Get(run.id)->steps, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  ASSERT_TRUE(store_->RescueExpired(3, kRescue).ok());
  EXPECT_FALSE(
      store_->Append(c->lease, {}, std::nullopt, {R"({"kind":"end","iteration":1})"}).ok());
  EXPECT_EQ(store_->Get(run.id)->steps, 2) << "a fenced-out step is not counted";
  auto again = Claim();
  ASSERT_TRUE(again);
  ASSERT_TRUE(store_
                  ->Append(again->lease, {"c"}, std::nullopt,
                           {R"({"kind":"model","iteration":2})", R"({"kind":"end","iteration":2})"})
                  .ok());
  auto steps = store_->Steps(run.id);
  ASSERT_TRUE(steps.ok());
  ASSERT_EQ(steps->size(), 4u) << "the journal goes on after the earlier attempt's steps";
  EXPECT_NE((*steps)[2].find("model"), std::string::npos) << "two steps at once, in their order";
  EXPECT_NE((*steps)[3].find("end"), std::string::npos);
  ASSERT_TRUE(
      store_->Finish(again->lease, {.state = kSucceeded, .terminal_event = "succeeded"}).ok());
  EXPECT_TRUE(store_->Steps(run.id)->empty());
  EXPECT_EQ(store_->Get(run.id)->steps, 4) << "the count stays when the journal goes";
}

TEST_F(RunStoreTest, ARunKeepsItsModelAndTimeout) {
  auto started = store_->Start({.id = common::NewUuid(),
                                .project_id = common::NewUuid(),
                                .message_id = common::NewUuid(),
                                .prompt = "p",
                                .max_iterations = 7,
                                .model = "gpt-4o",
                                .timeout = absl::Seconds(90) + absl::Microseconds(5),
                                .queued_event = "queued"});
  ASSERT_TRUE(started.ok()) << started.status();
  auto c = Claim();
  ASSERT_TRUE(c);
  for (const RunRecord& run : {*started, c->run, *store_->Get(started->id)}) {
    EXPECT_EQ(run.max_iterations, 7);
    EXPECT_EQ(run.model, "gpt-4o");
    EXPECT_EQ(run.timeout, absl::Seconds(90) + absl::Microseconds(5));
  }
  ASSERT_TRUE(c->run.start_time) << "the timeout counts from here";
}

TEST_F(RunStoreTest, FinishedRunsEventsMoveToTheArchiveAndReadTheSame) {
  const std::string project = common::NewUuid();
  RunRecord done = MustStart(project);
  auto c = Claim();
  ASSERT_TRUE(c);
  ASSERT_TRUE(store_->Append(c->lease, {"a", "b", "c"}, 1).ok());
  ASSERT_TRUE(store_->Finish(c->lease, {.state = kSucceeded, .terminal_event = "succeeded"}).ok());
  RunRecord active = MustStart(project);  // queued, not finished: never archived
  const std::vector<std::string> before = EventTexts(done.id);
  ASSERT_EQ(before, (std::vector<std::string>{"queued", "started 1", "a", "b", "c", "succeeded"}));

  auto none = store_->ArchiveEvents(absl::Now() - absl::Hours(1), 100);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, 0) << "it finished less than an hour ago";
  auto archived = store_->ArchiveEvents(absl::Now() + absl::Seconds(1), 100);
  ASSERT_TRUE(archived.ok()) << archived.status();
  EXPECT_EQ(*archived, 1);
  EXPECT_EQ(EventRows(done.id), 0);
  EXPECT_EQ(EventRows(active.id), 1);
  EXPECT_EQ(EventTexts(done.id), before) << "the archive reads as the events did";
  auto tail = store_->Events(done.id, 4, 1);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ((*tail)[0].sequence, 5);
  EXPECT_EQ((*tail)[0].event, "c");
  EXPECT_EQ(*store_->ArchiveEvents(absl::Now() + absl::Seconds(1), 100), 0) << "nothing twice";
}

TEST_F(RunStoreTest, RequeueBacksOffAndKeepsTheProjectsOrder) {
  const std::string project = common::NewUuid();
  RunRecord a = MustStart(project), b = MustStart(project);
  auto c = Claim();
  ASSERT_TRUE(c);
  ASSERT_TRUE(store_->Requeue(c->lease, absl::Milliseconds(300), "retrying").ok());
  EXPECT_FALSE(Claim()) << "the retried run is not due yet, and the later one waits behind it";
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto again = Claim();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->run.id, a.id);
  EXPECT_EQ(again->run.attempt, 2);
  (void)b;
}

TEST_F(RunStoreTest, AHandedBackRunKeepsItsAttempts) {
  RunRecord run = MustStart(common::NewUuid());
  auto c = Claim();
  ASSERT_TRUE(c);
  ASSERT_TRUE(
      store_->Requeue(c->lease, absl::ZeroDuration(), "retrying", /*refund_attempt=*/true).ok());
  auto again = Claim();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->run.attempt, 1) << "a replica's shutdown is not a failed attempt";
  (void)run;
}

TEST_F(RunStoreTest, CancelEndsQueuedRunsAndAsksRunningOnesToStop) {
  const std::string project = common::NewUuid();
  RunRecord a = MustStart(project), b = MustStart(project);
  auto c = Claim();
  ASSERT_TRUE(c);
  auto queued = store_->Cancel(b.id, "cancelled");
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->state, kCancelled);
  auto running = store_->Cancel(a.id, "cancelled");
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->state, kRunning);
  EXPECT_TRUE(running->cancel_requested);
  EXPECT_EQ(store_->Heartbeat(c->lease, absl::Seconds(30)).value_or(false), true);
  ASSERT_TRUE(store_->Finish(c->lease, {.state = kCancelled, .terminal_event = "cancelled"}).ok());
  auto finished = store_->Cancel(a.id, "cancelled");
  ASSERT_TRUE(finished.ok());
  EXPECT_EQ(finished->state, kCancelled);
  EXPECT_EQ(EventTexts(a.id).back(), "cancelled");
  EXPECT_EQ(EventTexts(a.id).size(), 3u) << "a finished run is left as it is";
  // CancelProject reaches every active run.
  const std::string other = common::NewUuid();
  RunRecord x = MustStart(other), y = MustStart(other);
  ASSERT_TRUE(store_->CancelProject(other, "cancelled").ok());
  EXPECT_EQ(store_->Get(x.id)->state, kCancelled);
  EXPECT_EQ(store_->Get(y.id)->state, kCancelled);
}

TEST_F(RunStoreTest, ConcurrentWorkersNeverRunTwoRunsOfAProjectAtOnce) {
  std::vector<std::string> projects;
  std::set<std::string> all;
  for (int p = 0; p < 5; ++p) {
    projects.push_back(common::NewUuid());
    for (int i = 0; i < 6; ++i) all.insert(MustStart(projects.back()).id);
  }
  std::mutex mu;
  std::set<std::string> running_projects, done;
  std::atomic<bool> overlap{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      for (int idle = 0; idle < 50;) {
        auto c = store_->Claim("w" + std::to_string(w), absl::Seconds(30), Started);
        if (!c.ok() || !c->has_value()) {
          ++idle;
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          continue;
        }
        idle = 0;
        {
          std::lock_guard lock(mu);
          if (!running_projects.insert((*c)->run.project_id).second) overlap = true;
          if (!done.insert((*c)->run.id).second) overlap = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        {
          std::lock_guard lock(mu);
          running_projects.erase((*c)->run.project_id);
        }
        EXPECT_TRUE(
            store_->Finish((*c)->lease, {.state = kSucceeded, .terminal_event = "ok"}).ok());
      }
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_FALSE(overlap);
  EXPECT_EQ(done, all);
}

// A burst of prompts queues many runs while the planner's statistics (none on a fresh table;
// "hardly anything queued" on a busy one) say the queue is nearly empty. A claim must still
// walk the queue in order and stop at the first run it may take: planned from those
// statistics, it compared every queued run with every other and sorted them all (about 0.2 s
// per claim with 1000 queued, where it takes well under a millisecond).
// Claims are fair between authors: the author with the fewest running runs first, then the
// earliest queued. Alice queues six prompts, then Bob one: with two workers Bob's run starts
// second, not seventh; Carol, arriving later still, goes ahead of Alice's queue too.
TEST_F(RunStoreTest, ClaimsAreFairBetweenAuthors) {
  std::vector<RunRecord> alice;
  for (int i = 0; i < 6; ++i) alice.push_back(MustStartBy("alice"));
  const RunRecord bob = MustStartBy("bob");
  auto claimed = [&] {
    std::optional<RunStore::Claimed> c = Claim();
    return c ? c->run.id : "nothing";
  };
  EXPECT_EQ(claimed(), alice[0].id);
  EXPECT_EQ(claimed(), bob.id) << "bob has nothing running";
  EXPECT_EQ(claimed(), alice[1].id) << "alice 1 running, bob 1, and only alice waits";
  const RunRecord carol1 = MustStartBy("carol"), carol2 = MustStartBy("carol");
  EXPECT_EQ(claimed(), carol1.id) << "carol has nothing running";
  EXPECT_EQ(claimed(), carol2.id) << "carol runs 1, alice 2";
  EXPECT_EQ(claimed(), alice[2].id) << "both run 2: the earliest";
}

TEST_F(RunStoreTest, AClaimStaysQuickWithADeepQueueTheStatisticsDoNotKnowAbout) {
  const std::string project = common::NewUuid();
  const RunRecord first = MustStart(project);
  MustStart(project);  // behind the first, in its project
  ASSERT_TRUE(
      pool_
          ->Run([](common::DbConnection& conn) -> absl::Status {
            conn.session()
                << "INSERT INTO orchestrator.runs (id, project_id, message_id, prompt, state,"
                   " max_iterations) SELECT gen_random_uuid(), gen_random_uuid(),"
                   " gen_random_uuid(), 'burst', 1, 5 FROM generate_series(1, 1000)";
            return absl::OkStatus();
          })
          .ok());
  absl::Duration fastest = absl::InfiniteDuration();
  std::set<std::string> claimed_projects;
  for (int i = 0; i < 3; ++i) {
    const absl::Time start = absl::Now();
    std::optional<RunStore::Claimed> c = Claim("w" + std::to_string(i));
    fastest = std::min(fastest, absl::Now() - start);
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(claimed_projects.insert(c->run.project_id).second) << "one running run per project";
    if (i == 0) {
      EXPECT_EQ(c->run.id, first.id) << "the earliest run first";
    }
  }
  EXPECT_LT(fastest, absl::Milliseconds(50)) << fastest;
}

}  // namespace
}  // namespace qai::orchestrator
