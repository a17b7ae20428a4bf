#include "services/projects/store.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "common/ids.h"
#include "soci/postgresql/soci-postgresql.h"
#include "tests/support/pg_server.h"

namespace qai::projects {
namespace {

class ProjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::PgServer::Shared().CreateDatabase();
    auto pool = common::DbPool::Create({.url = url_, .size = 8});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    auto store = ProjectStore::Open(pool_.get(), {.url = url_, .connections = 2});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  ProjectRecord MustCreate(const std::string& owner, const std::string& request_id = "") {
    auto r = store_->Create({.actor = {owner},
                             .id = common::NewUuid(),
                             .display_name = "site",
                             .request_id = request_id,
                             .initial_message_payload = "payload"});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(ProjectRecord{});
  }

  int64_t CountRows(const std::string& sql) {
    int64_t n = -1;
    EXPECT_TRUE(pool_
                    ->Run([&](common::DbConnection& c) {
                      c.session() << sql, soci::into(n);
                      return absl::OkStatus();
                    })
                    .ok());
    return n;
  }

  std::string url_;
  std::unique_ptr<common::DbPool> pool_;
  std::unique_ptr<ProjectStore> store_;
};

TEST_F(ProjectStoreTest, CreateGetUpdateDelete) {
  ProjectRecord p = MustCreate("alice");
  EXPECT_EQ(p.owner, "alice");
  EXPECT_EQ(p.display_name, "site");
  EXPECT_EQ(p.version, 1);
  EXPECT_EQ(
      CountRows("SELECT count(*) FROM projects.outbox WHERE topic = 'messages.CreateMessage'"), 1);

  auto got = store_->Get({"alice"}, p.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, p.name);
  EXPECT_EQ(got->create_time, p.create_time);

  auto updated = store_->Update(
      {.actor = {"alice"}, .id = p.id, .display_name = "renamed", .expected_version = 1});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->display_name, "renamed");
  EXPECT_EQ(updated->version, 2);
  EXPECT_GT(updated->update_time, p.update_time);

  ASSERT_TRUE(store_->Delete({.actor = {"alice"}, .id = p.id}).ok());
  EXPECT_EQ(store_->Get({"alice"}, p.id).status().code(), absl::StatusCode::kNotFound);
  // Soft delete: the row stays, and the downstream hops are queued with it.
  EXPECT_EQ(CountRows("SELECT count(*) FROM projects.projects WHERE delete_time IS NOT NULL"), 1);
  EXPECT_EQ(
      CountRows("SELECT count(*) FROM projects.outbox WHERE topic <> 'messages.CreateMessage'"), 2);
  EXPECT_EQ(store_->Delete({.actor = {"alice"}, .id = p.id}).code(), absl::StatusCode::kNotFound);
}

TEST_F(ProjectStoreTest, OwnersSeeOnlyTheirOwn) {
  ProjectRecord p = MustCreate("alice");
  EXPECT_EQ(store_->Get({"bob"}, p.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Get({"admin", /*owner_scoped=*/false}, p.id).ok());
  EXPECT_EQ(store_->Update({.actor = {"bob"}, .id = p.id, .display_name = "x"}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete({.actor = {"bob"}, .id = p.id}).code(), absl::StatusCode::kNotFound);
  auto bobs = store_->List({.actor = {"bob"}, .page_size = 10});
  ASSERT_TRUE(bobs.ok());
  EXPECT_TRUE(bobs->projects.empty());
}

TEST_F(ProjectStoreTest, EtagConflictIsAborted) {
  ProjectRecord p = MustCreate("alice");
  ASSERT_TRUE(
      store_->Update({.actor = {"alice"}, .id = p.id, .display_name = "one", .expected_version = 1})
          .ok());
  auto stale = store_->Update(
      {.actor = {"alice"}, .id = p.id, .display_name = "two", .expected_version = 1});
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store_->Delete({.actor = {"alice"}, .id = p.id, .expected_version = 1}).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(store_->Get({"alice"}, p.id)->display_name, "one");
}

TEST_F(ProjectStoreTest, KeysetPagesStayExactWhileRowsAreInserted) {
  std::set<std::string> before;
  for (int i = 0; i < 25; ++i) before.insert(MustCreate("alice").id);
  std::set<std::string> seen;
  std::optional<std::pair<int64_t, std::string>> after;
  absl::Time last_time = absl::InfiniteFuture();
  int pages = 0;
  for (;;) {
    auto page = store_->List({.actor = {"alice"}, .page_size = 7, .after = after});
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (const ProjectRecord& r : page->projects) {
      EXPECT_TRUE(seen.insert(r.id).second) << "duplicate " << r.id;
      EXPECT_LE(r.update_time, last_time);
      last_time = r.update_time;
    }
    // New rows arrive between pages; they sort before the cursor and must not disturb it.
    MustCreate("alice");
    if (!page->more) break;
    const ProjectRecord& last = page->projects.back();
    after.emplace(absl::ToUnixMicros(last.update_time), last.id);
  }
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(seen, before);
}

TEST_F(ProjectStoreTest, RepeatedRequestIdReturnsFirstResult) {
  const std::string rid = common::NewUuid();
  ProjectRecord first = MustCreate("alice", rid);
  ProjectRecord again = MustCreate("alice", rid);
  EXPECT_EQ(first.id, again.id);
  EXPECT_EQ(CountRows("SELECT count(*) FROM projects.projects"), 1);
  EXPECT_EQ(CountRows("SELECT count(*) FROM projects.outbox"), 1);
  // The same id from another principal is another request.
  EXPECT_NE(MustCreate("bob", rid).id, first.id);
  // Reusing it for a different call is refused.
  auto wrong =
      store_->Update({.actor = {"alice"}, .id = first.id, .display_name = "x", .request_id = rid});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ProjectStoreTest, ConcurrentDuplicateCreatesMakeOneProject) {
  const std::string rid = common::NewUuid();
  std::vector<std::thread> threads;
  std::vector<std::string> ids(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = store_->Create({.actor = {"alice"},
                               .id = common::NewUuid(),
                               .request_id = rid,
                               .initial_message_payload = "p"});
      ids[i] = r.ok() ? r->id : "error: " + std::string(r.status().message());
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(CountRows("SELECT count(*) FROM projects.projects"), 1);
  EXPECT_EQ(CountRows("SELECT count(*) FROM projects.outbox"), 1);
}

TEST_F(ProjectStoreTest, DeleteWithRequestIdIsIdempotent) {
  ProjectRecord p = MustCreate("alice");
  const std::string rid = common::NewUuid();
  ASSERT_TRUE(store_->Delete({.actor = {"alice"}, .id = p.id, .request_id = rid}).ok());
  EXPECT_TRUE(store_->Delete({.actor = {"alice"}, .id = p.id, .request_id = rid}).ok());
  EXPECT_EQ(
      CountRows("SELECT count(*) FROM projects.outbox WHERE topic <> 'messages.CreateMessage'"), 2);
}

// A connection keeps a statement's plan from when the table was small. GetProject's must still
// be a primary-key lookup once the table has grown (a partial list index scanned whole for the
// id made GetProject 15x slower in the benchmark).
TEST_F(ProjectStoreTest, GetPlanStaysOnThePrimaryKeyAsTheTableGrows) {
  std::string get_sql;
  for (const auto& st : ProjectStore::PipelineStatements()) {
    if (st.name == "projects.get") get_sql = st.sql;
  }
  ASSERT_FALSE(get_sql.empty());
  soci::session sql(soci::postgresql, url_);
  for (const char* setup_sql : common::kSessionSetup) sql << setup_sql;
  sql << "PREPARE get_project(text) AS " + get_sql;
  const std::string id = MustCreate("alice").id;
  for (int i = 0; i < 8; ++i)
    sql << "EXECUTE get_project('" + id + "')";  // past the custom-plan phase
  sql << "INSERT INTO projects.projects (id, name, owner)"
         " SELECT gen_random_uuid(), 'bulk-' || g, 'owner-' || (g % 50) FROM generate_series(1, "
         "20000) g";
  soci::rowset<std::string> plan = (sql.prepare << "EXPLAIN EXECUTE get_project('" + id + "')");
  std::string text;
  for (const std::string& line : plan) text += line + "\n";
  EXPECT_NE(text.find("projects_pkey"), std::string::npos) << text;
  EXPECT_EQ(text.find("projects_page"), std::string::npos) << text;
  EXPECT_EQ(text.find("Seq Scan"), std::string::npos) << text;
}

TEST_F(ProjectStoreTest, LatestRunKeepsTheNewestNewsWhateverOrderItArrivesIn) {
  ProjectRecord p = MustCreate("alice");
  const std::string first = common::NewUuid(), second = common::NewUuid();
  auto record = [&](const std::string& run, const std::string& state, int64_t created_us,
                    int64_t sequence) {
    auto changed = store_->RecordLatestRuns({{.project_id = p.id,
                                              .run_id = run,
                                              .state = state,
                                              .run_create_time_us = created_us,
                                              .sequence = sequence}});
    EXPECT_TRUE(changed.ok()) << changed.status();
    return changed.value_or(0) == 1;
  };
  auto latest = [&] {
    auto got = store_->Get({"alice"}, p.id);
    EXPECT_TRUE(got.ok()) << got.status();
    return std::pair{got->latest_run_id, got->latest_run_state};
  };
  EXPECT_EQ(latest(), (std::pair<std::string, std::string>{"", ""}));

  EXPECT_TRUE(record(first, "STATE_QUEUED", 1000, 1));
  EXPECT_TRUE(record(first, "STATE_RUNNING", 1000, 2));
  EXPECT_FALSE(record(first, "STATE_QUEUED", 1000, 1));   // late: older news of the same run
  EXPECT_FALSE(record(first, "STATE_RUNNING", 1000, 2));  // a repeat
  EXPECT_EQ(latest(), (std::pair{first, std::string("STATE_RUNNING")}));

  EXPECT_TRUE(record(second, "STATE_QUEUED", 2000, 1));     // a later run replaces it
  EXPECT_FALSE(record(first, "STATE_SUCCEEDED", 1000, 9));  // the earlier run's end, arriving late
  EXPECT_EQ(latest(), (std::pair{second, std::string("STATE_QUEUED")}));
  EXPECT_TRUE(record(second, "STATE_RUNNING", 2000, 2));
  EXPECT_TRUE(record(second, "STATE_QUEUED", 2000, 5));  // retried after a lost worker
  EXPECT_EQ(latest(), (std::pair{second, std::string("STATE_QUEUED")}));

  // The news is not an edit: the etag and the update time stay.
  auto got = store_->Get({"alice"}, p.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, p.version);
  EXPECT_EQ(got->update_time, p.update_time);

  // A deleted or unknown project takes no news, without an error.
  ASSERT_TRUE(store_->Delete({.actor = {"alice"}, .id = p.id}).ok());
  EXPECT_FALSE(record(common::NewUuid(), "STATE_QUEUED", 3000, 1));
  auto unknown = store_->RecordLatestRuns({{.project_id = common::NewUuid(),
                                            .run_id = first,
                                            .state = "STATE_QUEUED",
                                            .run_create_time_us = 1,
                                            .sequence = 1}});
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_EQ(*unknown, 0);
}

TEST_F(ProjectStoreTest, NewsOfManyRunsAtOnceKeepsEachProjectsNewestInAnyOrder) {
  ProjectRecord a = MustCreate("alice"), b = MustCreate("alice");
  const std::string early = common::NewUuid(), late = common::NewUuid(), other = common::NewUuid();
  // Two runs of a, the later one created later but reported first; one run of b, at two states.
  auto changed = store_->RecordLatestRuns({{.project_id = a.id,
                                            .run_id = late,
                                            .state = "STATE_RUNNING",
                                            .run_create_time_us = 2000,
                                            .sequence = 2},
                                           {.project_id = b.id,
                                            .run_id = other,
                                            .state = "STATE_SUCCEEDED",
                                            .run_create_time_us = 1500,
                                            .sequence = 7},
                                           {.project_id = a.id,
                                            .run_id = early,
                                            .state = "STATE_SUCCEEDED",
                                            .run_create_time_us = 1000,
                                            .sequence = 9},
                                           {.project_id = b.id,
                                            .run_id = other,
                                            .state = "STATE_RUNNING",
                                            .run_create_time_us = 1500,
                                            .sequence = 2},
                                           {.project_id = common::NewUuid(),
                                            .run_id = early,
                                            .state = "STATE_QUEUED",
                                            .run_create_time_us = 1,
                                            .sequence = 1}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 2) << "two projects changed; the unknown one is left alone";
  EXPECT_EQ(store_->Get({"alice"}, a.id)->latest_run_id, late);
  EXPECT_EQ(store_->Get({"alice"}, a.id)->latest_run_state, "STATE_RUNNING");
  EXPECT_EQ(store_->Get({"alice"}, b.id)->latest_run_state, "STATE_SUCCEEDED");
  EXPECT_EQ(store_->RecordLatestRuns({}).value_or(-1), 0) << "no news is fine";
}

TEST_F(ProjectStoreTest, UnknownIdIsNotFound) {
  EXPECT_EQ(store_->Get({"alice"}, common::NewUuid()).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace qai::projects
