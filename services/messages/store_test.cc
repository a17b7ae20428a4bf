#include "services/messages/store.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "common/ids.h"
#include "db/migrations.h"
#include "db/migrator.h"
#include "soci/postgresql/soci-postgresql.h"
#include "tests/support/pg_server.h"

namespace qai::messages {
namespace {

class MessageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pool =
        common::DbPool::Create({.url = testing::PgServer::Shared().CreateDatabase(), .size = 8});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    store_ = std::make_unique<MessageStore>(pool_.get());
  }

  absl::StatusOr<MessageRecord> Create(const std::string& project, const std::string& content,
                                       const std::string& request_id = "",
                                       const std::string& principal = "alice") {
    return store_->Create({.principal = principal,
                           .request_id = request_id,
                           .id = common::NewUuid(),
                           .project_id = project,
                           .owner = "alice",
                           .author = "alice",
                           .content = content,
                           .start_run_payload = "start " + content});
  }

  int64_t Count(const std::string& sql) {
    int64_t n = -1;
    EXPECT_TRUE(pool_
                    ->Run([&](common::DbConnection& c) {
                      c.session() << sql, soci::into(n);
                      return absl::OkStatus();
                    })
                    .ok());
    return n;
  }

  ResultParams Result(const std::string& project, const std::string& run,
                      const std::string& content) {
    return {.id = common::NewUuid(),
            .run_id = run,
            .project_id = project,
            .owner = "alice",
            .content = content,
            .type = kTypeResult,
            .fragment = FragmentRecord{
                .id = common::NewUuid(),
                .sandbox_url = "http://preview/x",
                .title = "Todo",
                .files = {{"app/page.tsx", "export default () => «ü»;\n"}, {"README.md", "# hi"}},
                .summary = "made a page"}};
  }

  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<MessageStore> store_;
};

TEST_F(MessageStoreTest, CreateWritesTheMessageAndItsStartRunRowTogether) {
  const std::string project = common::NewUuid();
  auto m = Create(project, "Build a todo app");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->project_id, project);
  EXPECT_EQ(m->role, kRoleUser);
  EXPECT_EQ(m->type, kTypeResult);
  EXPECT_EQ(m->author, "alice");
  EXPECT_EQ(m->run_id, "");
  EXPECT_FALSE(m->fragment.has_value());
  EXPECT_EQ(Count("SELECT count(*) FROM messages.outbox WHERE topic = 'orchestrator.StartRun' AND "
                  "ordering_key = '" +
                  project + "' AND payload = 'start Build a todo app'::bytea"),
            1);
  auto got = store_->Get(m->id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->content, "Build a todo app");
  EXPECT_EQ(got->create_time, m->create_time);
  EXPECT_EQ(store_->Get(common::NewUuid()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MessageStoreTest, RepeatedRequestIdReturnsTheFirstMessageEvenConcurrently) {
  const std::string project = common::NewUuid(), request = common::NewUuid();
  std::vector<std::thread> threads;
  std::vector<absl::StatusOr<MessageRecord>> results(8, absl::UnknownError("unset"));
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] { results[i] = Create(project, "hello", request); });
  for (auto& t : threads) t.join();
  std::set<std::string> ids;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    ids.insert(r->id);
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.messages"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.outbox"), 1);
  // The same request id from another principal is another request.
  auto other = Create(project, "hello", request, "bob");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE(other->id, *ids.begin());
}

TEST_F(MessageStoreTest, ListPagesOldestFirstAndStayExactUnderInserts) {
  const std::string project = common::NewUuid();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Create(project, "m" + std::to_string(i))->id);
  ASSERT_TRUE(Create(common::NewUuid(), "another project").ok());
  auto page1 = store_->List({.project_id = project, .limit = 3});
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*page1)[i].id, ids[i]);
  // A message written between pages comes after everything already listed.
  ids.push_back(Create(project, "late")->id);
  const MessageRecord& last = page1->back();
  auto page2 =
      store_->List({.project_id = project,
                    .limit = 10,
                    .after = std::make_pair(absl::ToUnixMicros(last.create_time), last.id)});
  ASSERT_TRUE(page2.ok()) << page2.status();
  ASSERT_EQ(page2->size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*page2)[i].id, ids[3 + i]);
}

TEST_F(MessageStoreTest, RecordResultIsIdempotentOnTheRunAndKeepsItsFragment) {
  const std::string project = common::NewUuid(), run = common::NewUuid();
  ASSERT_TRUE(Create(project, "Build a todo app").ok());
  auto first = store_->RecordResult(Result(project, run, "Here is your app"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->role, kRoleAssistant);
  EXPECT_EQ(first->run_id, run);
  EXPECT_EQ(first->author, "");
  ASSERT_TRUE(first->fragment.has_value());
  EXPECT_EQ(first->fragment->files.at("app/page.tsx"), "export default () => «ü»;\n");
  EXPECT_EQ(first->fragment->message_id, first->id);

  // Repeats, sequential and concurrent, return the first message unchanged.
  std::vector<std::thread> threads;
  std::vector<absl::StatusOr<MessageRecord>> repeats(6, absl::UnknownError("unset"));
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back(
        [&, i] { repeats[i] = store_->RecordResult(Result(project, run, "another text")); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : repeats) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->id, first->id);
    EXPECT_EQ(r->content, "Here is your app");
    EXPECT_EQ(r->fragment->id, first->fragment->id);
  }
  EXPECT_EQ(Count("SELECT count(*) FROM messages.messages WHERE role = 2"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.fragments"), 1);
  // The same run in another project is refused, not silently answered with the first.
  EXPECT_EQ(store_->RecordResult(Result(common::NewUuid(), run, "x")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MessageStoreTest, PurgeRemovesEverythingAndBlocksLaterWrites) {
  const std::string project = common::NewUuid(), keep = common::NewUuid();
  ASSERT_TRUE(Create(project, "one").ok());
  ASSERT_TRUE(store_->RecordResult(Result(project, common::NewUuid(), "done")).ok());
  ASSERT_TRUE(Create(keep, "other project").ok());
  ASSERT_TRUE(store_->Purge(project).ok());
  ASSERT_TRUE(store_->Purge(project).ok()) << "purge is idempotent";
  EXPECT_EQ(Count("SELECT count(*) FROM messages.messages WHERE project_id = '" + project + "'"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.fragments"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.outbox WHERE ordering_key = '" + project + "'"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM messages.messages WHERE project_id = '" + keep + "'"), 1);
  EXPECT_EQ(Create(project, "too late").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->RecordResult(Result(project, common::NewUuid(), "late")).status().code(),
            absl::StatusCode::kNotFound);
}

// Fragments stored before contents had a table of their own keep their files.
TEST(MessageStoreMigrationTest, FragmentsWrittenBeforeFileContentsMoveOver) {
  const std::string url = testing::PgServer::Shared().CreateDatabase(/*migrated=*/false);
  std::vector<db::Migration> before;
  for (const db::Migration& m : db::EmbeddedMigrations()) {
    if (m.service != "messages" || m.version < 4) before.push_back(m);
  }
  ASSERT_TRUE(db::ApplyMigrations(url, before).ok());
  const std::string project = common::NewUuid(), message = common::NewUuid(),
                    fragment = common::NewUuid();
  {
    soci::session s(soci::postgresql, url);
    s << "INSERT INTO messages.messages (id, project_id, owner, content, role, type) VALUES"
         " (CAST(:m AS uuid), CAST(:p AS uuid), 'alice', 'done', 2, 1)",
        soci::use(message), soci::use(project);
    s << "INSERT INTO messages.fragments (id, message_id, files) VALUES (CAST(:f AS uuid), CAST(:m "
         "AS uuid),"
         " '{\"index.html\": \"<h1>«hi»</h1>\", \"a.css\": \"x\", \"b.css\": \"x\"}')",
        soci::use(fragment), soci::use(message);
  }
  ASSERT_TRUE(db::ApplyMigrations(url, db::EmbeddedMigrations()).ok());
  auto pool = common::DbPool::Create({.url = url, .size = 1});
  ASSERT_TRUE(pool.ok()) << pool.status();
  MessageStore store(pool->get());
  auto listed = store.List({.project_id = project});
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->at(0).fragment->files_count, 3);
  EXPECT_EQ(listed->at(0).fragment->files_bytes,
            10 + 15 + 5 + 1 + 5 + 1);  // "«" and "»" are two bytes each
  ASSERT_TRUE(store.LoadFiles(*listed).ok());
  EXPECT_EQ(listed->at(0).fragment->files,
            (std::map<std::string, std::string>{
                {"index.html", "<h1>«hi»</h1>"}, {"a.css", "x"}, {"b.css", "x"}}));
}

TEST_F(MessageStoreTest, OwnerAndRunIdAreRecorded) {
  const std::string project = common::NewUuid(), run = common::NewUuid();
  EXPECT_EQ(store_->ProjectOwner(project).value(), std::nullopt);
  auto m = Create(project, "hi");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(store_->ProjectOwner(project).value(), "alice");
  ASSERT_TRUE(store_->SetRunId(m->id, run).ok());
  EXPECT_EQ(store_->Get(m->id)->run_id, run);
}

TEST_F(MessageStoreTest, DatabaseDownIsUnavailableAndWritesNothing) {
  auto pool =
      common::DbPool::Create({.url = "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2",
                              .size = 1,
                              .acquire_timeout = absl::Seconds(2)});
  ASSERT_TRUE(pool.ok());
  MessageStore down(pool->get());
  auto r = down.Create({.principal = "alice",
                        .id = common::NewUuid(),
                        .project_id = common::NewUuid(),
                        .owner = "alice",
                        .content = "x"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

}  // namespace
}  // namespace qai::messages
