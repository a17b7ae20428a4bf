// Upgrading a deployment in place: a database from before qai-sandbox existed (the orchestrator
// kept snapshots and workspaces) is migrated, and every old preview keeps its URL and files,
// every project its last state.

#include <gtest/gtest.h>

#include "common/db_pool.h"
#include "common/ids.h"
#include "db/migrations.h"
#include "db/migrator.h"
#include "services/sandbox/store.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/support/pg_server.h"

namespace qai::sandbox {
namespace {

// BeforeTheSandbox: the migrations of the release before qai-sandbox.
std::vector<db::Migration> BeforeTheSandbox() {
  std::vector<db::Migration> out;
  for (const db::Migration& m : db::EmbeddedMigrations()) {
    if (m.service == "sandbox" || (m.service == "orchestrator" && m.version >= 7)) continue;
    out.push_back(m);
  }
  return out;
}

TEST(SandboxUpgradeTest, OldPreviewsAndWorkspacesMoveToTheSandboxWithTheirIds) {
  const std::string url = testing::PgServer::Shared().CreateDatabase(/*migrated=*/false);
  ASSERT_TRUE(db::ApplyMigrations(url, BeforeTheSandbox()).ok());
  const std::string project = common::NewUuid(), run = common::NewUuid(),
                    preview = common::NewUuid();
  const std::string message = common::NewUuid();
  {
    soci::session sql(soci::postgresql, url);
    sql << "INSERT INTO orchestrator.runs (id, project_id, message_id, prompt, state, "
           "max_iterations)"
           " VALUES (CAST(:r AS uuid), CAST(:p AS uuid), CAST(:m AS uuid), 'Build it', 3, 15)",
        soci::use(run), soci::use(project), soci::use(message);
    sql << "INSERT INTO orchestrator.snapshots (id, run_id, project_id, files)"
           " VALUES (CAST(:s AS uuid), CAST(:r AS uuid), CAST(:p AS uuid), '{\"index.html\": "
           "\"<h1>old</h1>\"}')",
        soci::use(preview), soci::use(run), soci::use(project);
    sql << "INSERT INTO orchestrator.workspaces (project_id, run_id, files)"
           " VALUES (CAST(:p AS uuid), CAST(:r AS uuid), '{\"index.html\": \"<h1>old</h1>\", "
           "\"notes.md\": \"x\"}')",
        soci::use(project), soci::use(run);
  }
  auto applied = db::ApplyMigrations(url, db::EmbeddedMigrations());
  ASSERT_TRUE(applied.ok()) << applied.status();

  auto pool = common::DbPool::Create({.url = url, .size = 2});
  ASSERT_TRUE(pool.ok());
  SandboxStore store(pool->get());
  // The old preview URL (<base>/<snapshot id>/) finds the same files.
  absl::StatusOr<SnapshotRecord> old = store.GetSnapshot(preview);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->project_id, project);
  EXPECT_EQ(old->run_id, run);
  EXPECT_EQ(*old->files, (Files{{"index.html", "<h1>old</h1>"}}));
  // The project's last state is a snapshot now, which the orchestrator names.
  soci::session sql(soci::postgresql, url);
  std::string state_id;
  sql << "SELECT snapshot_id::text FROM orchestrator.workspaces WHERE project_id = CAST(:p AS "
         "uuid)",
      soci::into(state_id), soci::use(project);
  absl::StatusOr<SnapshotRecord> state = store.GetSnapshot(state_id);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state->files, (Files{{"index.html", "<h1>old</h1>"}, {"notes.md", "x"}}));
  // Nothing is left behind in the orchestrator's schema.
  int tables = -1, columns = -1;
  sql << "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'orchestrator' AND "
         "table_name = 'snapshots'",
      soci::into(tables);
  sql << "SELECT count(*) FROM information_schema.columns"
         " WHERE table_schema = 'orchestrator' AND table_name = 'workspaces' AND column_name = "
         "'files'",
      soci::into(columns);
  EXPECT_EQ(tables, 0);
  EXPECT_EQ(columns, 0);
}

}  // namespace
}  // namespace qai::sandbox
