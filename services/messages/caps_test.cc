// The caps on runs queued or running at once, as MessageStore::Create checks them: the
// orchestrator's count (given) plus the project's and the author's StartRun rows still in the
// outbox; a prompt past a cap writes nothing.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "services/messages/store.h"
#include "tests/support/pg_server.h"

namespace qai::messages {
namespace {

class MessageCapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pool =
        common::DbPool::Create({.url = testing::PgServer::Shared().CreateDatabase(), .size = 8});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    store_ = std::make_unique<MessageStore>(pool_.get());
  }

  absl::StatusOr<MessageRecord> Create(const std::string& project, const std::string& author,
                                       orchestrator::RunCaps caps,
                                       orchestrator::ActiveRuns active = {},
                                       const std::string& request_id = "") {
    return store_->Create({.principal = author,
                           .request_id = request_id,
                           .id = common::NewUuid(),
                           .project_id = project,
                           .owner = author,
                           .author = author,
                           .content = "a prompt",
                           .start_run_payload = "start",
                           .cap_check = CreateParams::CapCheck{.caps = caps, .active = active}});
  }

  int64_t Count(const std::string& sql) {
    long long n = -1;
    EXPECT_TRUE(pool_
                    ->Run([&](common::DbConnection& c) {
                      c.session() << sql, soci::into(n);
                      return absl::OkStatus();
                    })
                    .ok());
    return n;
  }

  void Exec(const std::string& sql) {
    ASSERT_TRUE(pool_
                    ->Run([&](common::DbConnection& c) {
                      c.session() << sql;
                      return absl::OkStatus();
                    })
                    .ok());
  }

  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<MessageStore> store_;
};

std::vector<std::string> Subjects(const absl::Status& status) {
  std::vector<std::string> out;
  for (const common::QuotaViolation& v : common::GetQuotaViolations(status))
    out.push_back(v.subject);
  return out;
}

TEST_F(MessageCapsTest, APromptPastTheProjectCapIsRefusedAndWritesNothing) {
  const orchestrator::RunCaps caps{.per_project = 2, .per_principal = 0};
  const std::string project = common::NewUuid();
  // The orchestrator has one run of the project; one more fits.
  ASSERT_TRUE(Create(project, "alice", caps, {.project = 1}).ok());
  const std::string request = common::NewUuid();
  absl::StatusOr<MessageRecord> refused = Create(project, "alice", caps, {.project = 1}, request);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_NE(refused.status().message().find("QAI_RUN_MAX_ACTIVE_PER_PROJECT"), std::string::npos);
  EXPECT_EQ(Subjects(refused.status()), std::vector<std::string>{"project:" + project});
  EXPECT_EQ(Count("SELECT count(*) FROM messages.messages"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.outbox"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.idempotency WHERE request_id = '" + request + "'"),
            0)
      << "the refused request id stays unused, so a retry later can succeed";
  // The orchestrator's runs alone can fill the cap.
  EXPECT_EQ(Create(common::NewUuid(), "alice", caps, {.project = 2}).status().code(),
            absl::StatusCode::kResourceExhausted);
  // The same request succeeds once there is room (the orchestrator's run ended).
  EXPECT_TRUE(Create(project, "alice", caps, {.project = 0}, request).ok());
}

TEST_F(MessageCapsTest, UndeliveredStartRunRowsCountDeliveredAndParkedOnesDoNot) {
  const orchestrator::RunCaps caps{.per_project = 3, .per_principal = 0};
  const std::string project = common::NewUuid();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Create(project, "alice", caps).ok()) << i;
  ASSERT_EQ(Create(project, "alice", caps).status().code(), absl::StatusCode::kResourceExhausted);
  // Rows of other projects do not count.
  ASSERT_TRUE(Create(common::NewUuid(), "alice", caps).ok());

  // One StartRun was delivered: it is the orchestrator's to count now, not the outbox's.
  Exec(
      "UPDATE messages.outbox SET deliver_time = now() WHERE seq = (SELECT min(seq) FROM "
      "messages.outbox"
      " WHERE ordering_key = '" +
      project + "')");
  ASSERT_TRUE(Create(project, "alice", caps).ok());
  ASSERT_EQ(Create(project, "alice", caps).status().code(), absl::StatusCode::kResourceExhausted);
  // A parked one will not become a run by itself.
  Exec(
      "UPDATE messages.outbox SET next_attempt_time = 'infinity' WHERE seq = (SELECT min(seq) FROM "
      "messages.outbox"
      " WHERE ordering_key = '" +
      project + "' AND deliver_time IS NULL)");
  ASSERT_TRUE(Create(project, "alice", caps).ok());
  EXPECT_EQ(Create(project, "alice", caps).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(MessageCapsTest, TheAuthorsRowsCountInEveryProject) {
  const orchestrator::RunCaps caps{.per_project = 0, .per_principal = 3};
  ASSERT_TRUE(Create(common::NewUuid(), "alice", caps).ok());
  ASSERT_TRUE(Create(common::NewUuid(), "alice", caps).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM messages.outbox WHERE author = 'alice'"), 2)
      << "the rows name their author";
  // With the orchestrator's one run of alice's, she is at her cap.
  absl::StatusOr<MessageRecord> refused =
      Create(common::NewUuid(), "alice", caps, {.principal = 1});
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_NE(refused.status().message().find("QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL"), std::string::npos);
  EXPECT_EQ(Subjects(refused.status()), std::vector<std::string>{"principal:alice"});
  EXPECT_TRUE(Create(common::NewUuid(), "bob", caps).ok()) << "bob has his own";
  EXPECT_TRUE(Create(common::NewUuid(), "alice", caps).ok())
      << "without the orchestrator's run there is room";
  EXPECT_EQ(Create(common::NewUuid(), "alice", caps).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.messages WHERE author = 'alice'"), 3);
}

TEST_F(MessageCapsTest, ARepeatedRequestIdGetsItsMessageEvenAtTheCap) {
  const orchestrator::RunCaps caps{.per_project = 1, .per_principal = 1};
  const std::string project = common::NewUuid(), request = common::NewUuid();
  absl::StatusOr<MessageRecord> first = Create(project, "alice", caps, {}, request);
  ASSERT_TRUE(first.ok()) << first.status();
  // Its own row fills both caps; the repeat is answered with it all the same, even when the
  // orchestrator's count says the run has started meanwhile.
  for (orchestrator::ActiveRuns active :
       {orchestrator::ActiveRuns{}, orchestrator::ActiveRuns{.project = 1, .principal = 1}}) {
    absl::StatusOr<MessageRecord> again = Create(project, "alice", caps, active, request);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->id, first->id);
  }
  EXPECT_EQ(Create(project, "alice", caps).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.messages"), 1);
}

TEST_F(MessageCapsTest, ConcurrentPromptsNeverBothTakeTheLastPlace) {
  const orchestrator::RunCaps caps{.per_project = 3, .per_principal = 5};
  const std::string project = common::NewUuid();
  std::atomic<int> in_project = 0, accepted = 0, refused = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      const bool same_project = i % 2 == 0;
      absl::StatusOr<MessageRecord> m =
          Create(same_project ? project : common::NewUuid(), "alice", caps);
      if (m.ok()) {
        ++accepted;
        if (same_project) ++in_project;
      } else {
        EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted) << m.status();
        ++refused;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(accepted, 5);
  EXPECT_EQ(refused, 11);
  EXPECT_LE(in_project, 3);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.outbox WHERE author = 'alice'"), 5);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.messages"), 5);
}

TEST_F(MessageCapsTest, WithoutACapCheckNothingIsCounted) {
  const std::string project = common::NewUuid();
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(store_
                    ->Create({.principal = "svc",
                              .id = common::NewUuid(),
                              .project_id = project,
                              .owner = "alice",
                              .author = "alice",
                              .content = "x",
                              .start_run_payload = "start"})
                    .ok());
  }
  EXPECT_EQ(Count("SELECT count(*) FROM messages.outbox WHERE ordering_key = '" + project + "'"),
            8);
}

}  // namespace
}  // namespace qai::messages
