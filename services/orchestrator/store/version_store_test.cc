// Versions made before versions existed: an upgraded deployment lists its projects' earlier
// successful runs as their first versions.

#include "services/orchestrator/store/version_store.h"

#include <gtest/gtest.h>

#include "common/db_pool.h"
#include "common/ids.h"
#include "db/migrations.h"
#include "db/migrator.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/support/pg_server.h"

namespace qai::orchestrator {
namespace {

// BeforeVersions: the migrations of the release before versions.
std::vector<db::Migration> BeforeVersions() {
  std::vector<db::Migration> out;
  for (const db::Migration& m : db::EmbeddedMigrations()) {
    if (m.service == "orchestrator" && m.version >= 10) continue;
    out.push_back(m);
  }
  return out;
}

TEST(VersionUpgradeTest, EarlierSuccessfulRunsBecomeTheFirstVersionsInTheOrderTheyEnded) {
  const std::string url = testing::PgServer::Shared().CreateDatabase(/*migrated=*/false);
  ASSERT_TRUE(db::ApplyMigrations(url, BeforeVersions()).ok());
  const std::string project = common::NewUuid(), other = common::NewUuid();
  const std::string early = common::NewUuid(), late = common::NewUuid(), failed = common::NewUuid();
  const std::string early_snapshot = common::NewUuid(), late_snapshot = common::NewUuid();
  {
    soci::session sql(soci::postgresql, url);
    auto run = [&](const std::string& id, const std::string& p, int state, const std::string& url,
                   const std::string& ended) {
      const std::string message = common::NewUuid();
      sql << "INSERT INTO orchestrator.runs (id, project_id, message_id, prompt, state,"
             " max_iterations, sandbox_url, end_time, author)"
             " VALUES (CAST(:r AS uuid), CAST(:p AS uuid), CAST(:m AS uuid), 'Build it', :s, 15,"
             " :u, CAST(:e AS timestamptz), 'alice')",
          soci::use(id), soci::use(p), soci::use(message), soci::use(state), soci::use(url),
          soci::use(ended);
    };
    run(late, project, 3, "http://preview.test/" + late_snapshot + "/", "2026-02-01T00:00:00Z");
    run(early, project, 3, "http://preview.test/" + early_snapshot + "/", "2026-01-01T00:00:00Z");
    run(failed, project, 4, "", "2026-03-01T00:00:00Z");
    run(common::NewUuid(), other, 3, "http://preview.test/" + common::NewUuid() + "/",
        "2026-01-15T00:00:00Z");
  }
  ASSERT_TRUE(db::ApplyMigrations(url, db::EmbeddedMigrations()).ok());

  auto pool = common::DbPool::Create({.url = url, .size = 2});
  ASSERT_TRUE(pool.ok());
  VersionStore versions(pool->get());
  absl::StatusOr<std::vector<VersionRecord>> listed = versions.List(project, 10, std::nullopt);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u) << "the failed run made none";
  EXPECT_EQ((*listed)[0].number, 2);
  EXPECT_EQ((*listed)[0].run_id, late);
  EXPECT_EQ((*listed)[0].snapshot_id, late_snapshot);
  EXPECT_EQ((*listed)[1].number, 1);
  EXPECT_EQ((*listed)[1].run_id, early);
  EXPECT_EQ((*listed)[1].snapshot_id, early_snapshot);
  EXPECT_EQ((*listed)[1].author, "alice");
  EXPECT_EQ(versions.List(other, 10, std::nullopt)->size(), 1u) << "numbered per project";
}

}  // namespace
}  // namespace qai::orchestrator
