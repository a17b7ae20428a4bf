#include "db/migrator.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/database_url.h"
#include "db/migrations.h"
#include "gtest/gtest.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/support/child_process.h"
#include "tests/support/paths.h"
#include "tests/support/pg_server.h"

namespace qai::db {
using common::ConnectString;
using common::RedactSecrets;
namespace {

using ::qai::testing::PgServer;

int Count(const std::string& url, const std::string& query) {
  soci::session sql(soci::postgresql, url);
  int count = -1;
  sql << query, soci::into(count);
  return count;
}

int TableCount(const std::string& url, const std::string& schema, const std::string& table) {
  soci::session sql(soci::postgresql, url);
  int count = -1;
  sql << "SELECT count(*) FROM information_schema.tables"
         " WHERE table_schema = :schema AND table_name = :table",
      soci::use(schema), soci::use(table), soci::into(count);
  return count;
}

Migration Make(std::string service, int version, std::string sql) {
  return Migration{.service = std::move(service),
                   .version = version,
                   .name = "m" + std::to_string(version),
                   .sql = sql,
                   .checksum = "sum-of-" + sql};
}

TEST(EmbeddedMigrationsTest, HoldsTheFilesInOrderWithChecksums) {
  const std::vector<Migration>& all = EmbeddedMigrations();
  ASSERT_FALSE(all.empty());
  bool found_projects = false;
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].checksum.size(), 64u);
    EXPECT_FALSE(all[i].sql.empty());
    if (i > 0) {
      EXPECT_TRUE(std::tie(all[i - 1].service, all[i - 1].version) <
                  std::tie(all[i].service, all[i].version));
    }
    found_projects = found_projects || (all[i].service == "projects" && all[i].version == 1 &&
                                        all[i].name == "projects");
  }
  EXPECT_TRUE(found_projects);
}

TEST(MigratorTest, FreshDatabaseGetsEverythingOnce) {
  std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  std::vector<std::string> reported;
  absl::StatusOr<int> applied = ApplyMigrations(
      url, EmbeddedMigrations(), {},
      [&](const Migration& m) { reported.push_back(m.service + "/" + std::to_string(m.version)); });
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, static_cast<int>(EmbeddedMigrations().size()));
  EXPECT_EQ(reported.size(), EmbeddedMigrations().size());
  EXPECT_EQ(TableCount(url, "projects", "projects"), 1);
  EXPECT_EQ(Count(url, "SELECT count(*) FROM public.qai_schema_migrations"), *applied);

  absl::StatusOr<int> again = ApplyMigrations(url, EmbeddedMigrations());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0);
}

TEST(MigratorTest, AcceptsUris) {
  PgServer& pg = PgServer::Shared();
  std::string url = pg.CreateDatabase(/*migrated=*/false);
  std::string name = url.substr(url.find("dbname=") + 7);
  std::string uri = "postgresql://postgres@127.0.0.1:" + std::to_string(pg.port()) + "/" + name +
                    "?application_name=qai-test";
  absl::StatusOr<int> applied = ApplyMigrations(uri, EmbeddedMigrations());
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_GT(*applied, 0);
}

TEST(ConnectStringTest, OddValuesSurviveSoci) {
  PgServer& pg = PgServer::Shared();
  std::string uri = "postgresql://postgres@127.0.0.1:" + std::to_string(pg.port()) +
                    "/postgres?application_name=a%3Db%27c%5Cd";
  absl::StatusOr<std::string> converted = ConnectString(uri);
  ASSERT_TRUE(converted.ok()) << converted.status();
  soci::session sql(soci::postgresql, *converted);
  std::string name;
  sql << "SELECT current_setting('application_name')", soci::into(name);
  EXPECT_EQ(name, "a=b'c\\d");
}

TEST(MigratorTest, ConcurrentRunsApplyEachMigrationOnce) {
  std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  constexpr int kRunners = 4;
  std::atomic<int> total = 0;
  std::atomic<int> errors = 0;
  std::vector<std::thread> runners;
  for (int i = 0; i < kRunners; ++i) {
    runners.emplace_back([&] {
      absl::StatusOr<int> applied = ApplyMigrations(url, EmbeddedMigrations());
      if (applied.ok()) {
        total += *applied;
      } else {
        ADD_FAILURE() << applied.status();
        ++errors;
      }
    });
  }
  for (std::thread& t : runners) t.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(total, static_cast<int>(EmbeddedMigrations().size()));
}

TEST(MigratorTest, ChangedChecksumIsRefusedAndNothingApplied) {
  std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  std::vector<Migration> first = {Make("alpha", 1, "CREATE TABLE public.a1 (id int)")};
  ASSERT_EQ(ApplyMigrations(url, first).value_or(-1), 1);

  std::vector<Migration> edited = {Make("alpha", 1, "CREATE TABLE public.a1 (id bigint)"),
                                   Make("alpha", 2, "CREATE TABLE public.a2 (id int)")};
  absl::StatusOr<int> applied = ApplyMigrations(url, edited);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(applied.status().message().find("alpha/1"), std::string::npos) << applied.status();
  EXPECT_EQ(TableCount(url, "public", "a2"), 0);
  EXPECT_EQ(Count(url, "SELECT count(*) FROM public.qai_schema_migrations"), 1);
}

TEST(MigratorTest, BrokenMigrationRollsBackTheWholeRun) {
  std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  std::vector<Migration> migrations = {
      Make("alpha", 1, "CREATE TABLE public.b1 (id int); INSERT INTO public.b1 VALUES (1);"),
      Make("beta", 1, "CREATE TABLE public.b2 (id int)"),
      Make("beta", 2, "CREATE TABLE public.b3 (id int); THIS IS NOT SQL;"),
  };
  absl::StatusOr<int> applied = ApplyMigrations(url, migrations);
  ASSERT_FALSE(applied.ok());
  EXPECT_NE(applied.status().message().find("beta/2"), std::string::npos) << applied.status();
  EXPECT_NE(applied.status().message().find("42601"), std::string::npos) << applied.status();
  EXPECT_EQ(TableCount(url, "public", "b1"), 0);
  EXPECT_EQ(TableCount(url, "public", "b2"), 0);
  EXPECT_EQ(TableCount(url, "public", "b3"), 0);

  // Fixed, the same run goes through.
  migrations[2] = Make("beta", 2, "CREATE TABLE public.b3 (id int)");
  EXPECT_EQ(ApplyMigrations(url, migrations).value_or(-1), 3);
}

TEST(MigratorTest, ScriptsRunVerbatim) {
  std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  // ":name" in comments and dollar-quoted bodies must not be taken for placeholders.
  std::vector<Migration> migrations = {Make("alpha", 1, R"(
-- note:this is not a placeholder
CREATE FUNCTION public.f() RETURNS text LANGUAGE plpgsql AS $$
BEGIN RETURN 'x:y' || ':z'::text; END $$;
CREATE TABLE public.v (s text DEFAULT public.f());
)")};
  ASSERT_EQ(ApplyMigrations(url, migrations).value_or(-1), 1);
}

TEST(MigratorTest, OnlyServicesLimitsTheRun) {
  std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  std::vector<Migration> migrations = {Make("alpha", 1, "CREATE TABLE public.o1 (id int)"),
                                       Make("beta", 1, "CREATE TABLE public.o2 (id int)")};
  std::vector<std::string> only = {"beta"};
  ASSERT_EQ(ApplyMigrations(url, migrations, only).value_or(-1), 1);
  EXPECT_EQ(TableCount(url, "public", "o1"), 0);
  EXPECT_EQ(TableCount(url, "public", "o2"), 1);
  std::vector<std::string> unknown = {"gamma"};
  EXPECT_EQ(ApplyMigrations(url, migrations, unknown).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<Migration> duplicate = {migrations[0], migrations[0]};
  EXPECT_EQ(ApplyMigrations(url, duplicate).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MigratorTest, UnreachableDatabaseIsUnavailableWithoutPassword) {
  int port = qai::testing::FreePort();
  std::string url = "postgresql://qai:s3cret-pw@127.0.0.1:" + std::to_string(port) + "/x";
  absl::StatusOr<int> applied = ApplyMigrations(url, EmbeddedMigrations());
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(applied.status().message().find("s3cret-pw"), std::string::npos) << applied.status();
}

TEST(ConnectStringTest, ConvertsUrisAndRedacts) {
  absl::StatusOr<std::string> converted =
      ConnectString("postgresql://u:p%40ss@db.example:6543/app?sslmode=disable");
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_NE(converted->find("host='db.example'"), std::string::npos) << *converted;
  EXPECT_NE(converted->find("port='6543'"), std::string::npos) << *converted;
  EXPECT_NE(converted->find("password='p@ss'"), std::string::npos) << *converted;
  EXPECT_NE(converted->find("dbname='app'"), std::string::npos) << *converted;
  EXPECT_FALSE(ConnectString("postgresql://u:pw@h/db?nonsense=1").ok());
  EXPECT_EQ(RedactSecrets("auth failed for p@ss and p%40ss\n", "postgresql://u:p%40ss@h/db"),
            "auth failed for *** and ***");
  EXPECT_EQ(RedactSecrets("bad 'x y'", "host=h password='x y'"), "bad ***");
}

TEST(QaiMigrateTest, AppliesAndReports) {
  std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  auto run = [&](std::vector<std::string> args, qai::testing::EnvVars env) {
    auto child = qai::testing::ChildProcess::Spawn(qai::testing::BinaryPath("db/qai-migrate"),
                                                   std::move(args), std::move(env));
    EXPECT_TRUE(child.ok()) << child.status();
    int code = (*child)->Wait(absl::Seconds(60)).value_or(-999);
    return std::make_pair(code, (*child)->Output());
  };
  auto [code, output] = run({}, {{"QAI_DATABASE_URL", url}});
  EXPECT_EQ(code, 0) << output;
  EXPECT_NE(output.find("applied projects/0001_projects"), std::string::npos) << output;
  EXPECT_EQ(output.find("dbname="), std::string::npos) << "secret leaked:\n" << output;
  EXPECT_NE(output.find("\"database-url\":\"***\""), std::string::npos) << output;

  std::tie(code, output) = run({"--database-url=" + url}, {});
  EXPECT_EQ(code, 0) << output;
  EXPECT_EQ(output.find("applied projects/"), std::string::npos) << output;

  std::tie(code, output) = run({}, {{"QAI_DATABASE_URL", ""}});
  EXPECT_EQ(code, 2) << output;
  std::tie(code, output) = run({"--database-url=" + url, "--services=nosuch"}, {});
  EXPECT_EQ(code, 1) << output;
}

}  // namespace
}  // namespace qai::db
