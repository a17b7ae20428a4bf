#pragma once
// PgServer: a private, throw-away PostgreSQL server for integration tests.
//
// Most tests share one server per test process and take a fresh database each:
//
//   std::string url = qai::testing::PgServer::Shared().CreateDatabase();  // migrated
//   soci::session sql(soci::postgresql, url);
//
// A test that restarts or stops the server makes its own:
//
//   qai::testing::PgServer pg;
//   ASSERT_TRUE(pg.Start().ok());
//   ...
//   ASSERT_TRUE(pg.Restart().ok());  // same port, same data
//
// The server lives in a temporary directory, listens on 127.0.0.1 on a free port (and on a
// unix socket in that directory), trusts every local connection as user `postgres`, and trades
// durability for speed (fsync off). Binaries come from the newest /usr/lib/postgresql/*/bin,
// or from $QAI_PG_BIN when set. Run as root, the server runs as the `postgres` user.

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/child_process.h"

namespace qai::testing {

class PgServer {
 public:
  PgServer() = default;
  // ~PgServer: stops the server (fast, then immediate) and removes its directory.
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // Shared: the server of this test process, started on first use and stopped at exit (also
  // when tests fail). If it cannot start, every call throws std::runtime_error with the reason
  // and the server log, which GoogleTest reports as the failure of the test that asked.
  static PgServer& Shared();

  // Start: creates the cluster on first call (initdb), then starts the server and waits until it
  // accepts connections. Later calls (after Stop) reuse the data directory and port. Errors
  // include the tail of the server log.
  [[nodiscard]] absl::Status Start();

  // Stop: fast shutdown (open sessions are disconnected), waiting until the server is down.
  [[nodiscard]] absl::Status Stop();

  // Restart: Stop, then Start on the same port with the same data, as a database outage seen
  // by the services under test.
  [[nodiscard]] absl::Status Restart();

  // port: the TCP port on 127.0.0.1 (0 before the first Start).
  int port() const { return port_; }

  // running: whether the server was started and not stopped since.
  bool running() const { return running_; }

  // Url: the connection string of `database` as the superuser,
  // `host=127.0.0.1 port=PORT user=postgres dbname=DB`: libpq's keyword form, because SOCI 4.0
  // cannot open URIs (common/database_url.h converts those).
  std::string Url(std::string_view database) const;

  // AdminUrl: Url("postgres"), the maintenance database.
  std::string AdminUrl() const { return Url("postgres"); }

  // TryCreateDatabase: a new, uniquely named database and its URL. With `migrated`, every
  // embedded migration (db/migrations) is applied: the migrations run once per server, into a
  // template that each new database copies.
  [[nodiscard]] absl::StatusOr<std::string> TryCreateDatabase(bool migrated = true);

  // CreateDatabase: TryCreateDatabase, throwing std::runtime_error on failure (reported by
  // GoogleTest as a failed test).
  std::string CreateDatabase(bool migrated = true);

  // LogTail: the last `lines` lines of the server log, for failure messages.
  std::string LogTail(int lines = 40) const;

  // dir: the server's temporary directory (data in `dir()/data`, log in `dir()/server.log`).
  const std::string& dir() const { return dir_; }

 private:
  [[nodiscard]] absl::Status Init();
  [[nodiscard]] absl::Status StartOnce();
  [[nodiscard]] absl::Status RunTool(std::string_view tool, std::vector<std::string> args,
                                     absl::Duration timeout);
  [[nodiscard]] absl::Status EnsureTemplate();
  [[nodiscard]] absl::Status Execute(std::string_view database, const std::string& statement);

  std::string bin_dir_;
  std::string dir_;
  std::string data_dir_;
  std::string log_path_;
  bool run_as_postgres_ = false;
  int port_ = 0;
  bool running_ = false;
  std::mutex template_mutex_;
  bool template_ready_ = false;  // guarded by template_mutex_
  std::atomic<int> next_database_{0};
  // Cleans up after a crashed test process; killed (harmlessly) by our destructor.
  std::unique_ptr<ChildProcess> guard_;
};

}  // namespace qai::testing
