#include <signal.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/support/child_process.h"
#include "tests/support/paths.h"
#include "tests/support/pg_server.h"

namespace qai::testing {
namespace {

int CountTables(soci::session& sql, const std::string& schema) {
  int count = -1;
  sql << "SELECT count(*) FROM information_schema.tables WHERE table_schema = :schema",
      soci::use(schema), soci::into(count);
  return count;
}

TEST(PgServerTest, SharedServerAcceptsConnections) {
  PgServer& pg = PgServer::Shared();
  EXPECT_GT(pg.port(), 0);
  soci::session sql(soci::postgresql, pg.AdminUrl());
  int one = 0;
  sql << "SELECT 1", soci::into(one);
  EXPECT_EQ(one, 1);
  std::string fsync;
  sql << "SHOW fsync", soci::into(fsync);
  EXPECT_EQ(fsync, "off");
}

TEST(PgServerTest, RestartKeepsDataAndPort) {
  PgServer pg;
  ASSERT_TRUE(pg.Start().ok());
  const int port = pg.port();
  std::string url = pg.CreateDatabase(/*migrated=*/false);
  {
    soci::session sql(soci::postgresql, url);
    sql << "CREATE TABLE kept (value text)";
    sql << "INSERT INTO kept VALUES ('survives')";
  }
  absl::Status restarted = pg.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_EQ(pg.port(), port);
  soci::session sql(soci::postgresql, url);
  std::string value;
  sql << "SELECT value FROM kept", soci::into(value);
  EXPECT_EQ(value, "survives");
}

TEST(PgServerTest, StopMakesTheServerUnreachable) {
  PgServer pg;
  ASSERT_TRUE(pg.Start().ok());
  std::string url = pg.AdminUrl();
  ASSERT_TRUE(pg.Stop().ok());
  EXPECT_FALSE(pg.running());
  EXPECT_THROW(soci::session(soci::postgresql, url + " connect_timeout=5"), soci::soci_error);
}

TEST(PgServerTest, CreateDatabaseGivesIndependentMigratedDatabases) {
  PgServer& pg = PgServer::Shared();
  std::string first = pg.CreateDatabase();
  std::string second = pg.CreateDatabase();
  ASSERT_NE(first, second);
  soci::session a(soci::postgresql, first);
  soci::session b(soci::postgresql, second);
  EXPECT_GT(CountTables(a, "projects"), 0);
  EXPECT_EQ(CountTables(a, "projects"), CountTables(b, "projects"));
  int recorded = 0;
  a << "SELECT count(*) FROM public.qai_schema_migrations", soci::into(recorded);
  EXPECT_GT(recorded, 0);

  a << "CREATE TABLE only_in_first (id int)";
  EXPECT_EQ(CountTables(a, "public"), CountTables(b, "public") + 1);
}

TEST(PgServerTest, UnmigratedDatabaseIsEmpty) {
  std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  soci::session sql(soci::postgresql, url);
  EXPECT_EQ(CountTables(sql, "projects"), 0);
  EXPECT_EQ(CountTables(sql, "public"), 0);
}

TEST(ChildProcessTest, WaitForLineThenSignal) {
  auto child = ChildProcess::Spawn(
      "/bin/sh", {"-c", "echo starting; echo hello $GREETING; sleep 30"}, {{"GREETING", "world"}});
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<std::string> line = (*child)->WaitForLine("hello", absl::Seconds(10));
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, "hello world");
  EXPECT_TRUE((*child)->Running());
  ASSERT_TRUE((*child)->Signal(SIGTERM).ok());
  absl::StatusOr<int> code = (*child)->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, -SIGTERM);
  EXPECT_FALSE((*child)->Signal(SIGTERM).ok());
  EXPECT_EQ((*child)->Output(), "starting\nhello world\n");
}

TEST(ChildProcessTest, ExitCodeAndStderr) {
  auto child = ChildProcess::Spawn("sh", {"-c", "echo oops >&2; exit 3"});
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<int> code = (*child)->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 3);
  EXPECT_EQ((*child)->Output(), "oops\n");
}

TEST(ChildProcessTest, WaitForLineFailsEarlyWhenTheProcessExits) {
  auto child = ChildProcess::Spawn("/bin/sh", {"-c", "echo bye"});
  ASSERT_TRUE(child.ok()) << child.status();
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> line = (*child)->WaitForLine("never", absl::Seconds(30));
  EXPECT_EQ(line.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_NE(line.status().message().find("bye"), std::string::npos);
}

TEST(ChildProcessTest, WaitTimesOutAndKillReaps) {
  auto child = ChildProcess::Spawn("/bin/sh", {"-c", "sleep 30"});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ((*child)->Wait(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ((*child)->WaitForLine("x", absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE((*child)->Kill().ok());
  EXPECT_EQ((*child)->Wait(absl::Seconds(10)).value_or(0), -SIGKILL);
}

TEST(ChildProcessTest, AWrapperStartsTheProgramInItsOwnProcess) {
  // `env` sets a variable and execs the program: the pid is the program's.
  auto child = ChildProcess::Spawn("/bin/sh", {"-c", "echo $WRAPPED $$"}, {},
                                   {.wrapper = {"env", "WRAPPED=yes"}});
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_EQ((*child)->Wait(absl::Seconds(10)).value_or(-1), 0);
  EXPECT_EQ((*child)->Output(), absl::StrCat("yes ", (*child)->pid(), "\n"));
  EXPECT_FALSE(ChildProcess::Spawn("/bin/sh", {}, {}, {.wrapper = {"/nonexistent/wrapper"}}).ok());
}

TEST(ChildProcessTest, MissingProgramIsAnError) {
  auto child = ChildProcess::Spawn("/nonexistent/program", {});
  EXPECT_FALSE(child.ok());
}

TEST(PathsTest, FreePortAndDirectories) {
  int port = FreePort();
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
  EXPECT_EQ(SourcePath("db/migrations").substr(SourcePath("").size()), "db/migrations");
  EXPECT_FALSE(BinaryPath("x").empty());
}

}  // namespace
}  // namespace qai::testing
