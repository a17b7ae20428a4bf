#include "tests/support/pg_server.h"

#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "db/migrations.h"
#include "db/migrator.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/support/child_process.h"
#include "tests/support/paths.h"

namespace qai::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kTemplateDatabase[] = "qai_template";
constexpr int kStartAttempts = 5;

// Settings for a server that only tests use: fast and disposable rather than durable.
//
// The cluster is made as tools/lib/pg.sh's qai_pg_start makes the scripts' one (the same initdb
// flags, 127.0.0.1 and a unix socket in the server's directory, trust as postgres); it differs on
// purpose in these settings (no fsync, more connections for the tests' parallel pools), which go
// into postgresql.conf rather than pg_ctl's -o so that Restart keeps them, and in retrying
// another port when the free one was taken before the server bound it.
constexpr char kTestSettings[] = R"(
# qai::testing::PgServer
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 32MB
max_wal_size = 256MB
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
)";

// The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl, or $QAI_PG_BIN.
absl::StatusOr<std::string> FindPgBin() {
  if (const char* bin = std::getenv("QAI_PG_BIN"); bin != nullptr && *bin != '\0') return bin;
  std::string best;
  std::vector<int> best_version;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator("/usr/lib/postgresql", error)) {
    fs::path bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb") || !fs::exists(bin / "pg_ctl")) continue;
    std::vector<int> version;
    for (absl::string_view part : absl::StrSplit(entry.path().filename().string(), '.')) {
      int number = 0;
      version.push_back(absl::SimpleAtoi(part, &number) ? number : -1);
    }
    if (best.empty() || version > best_version) {
      best = bin.string();
      best_version = version;
    }
  }
  if (best.empty()) {
    return absl::NotFoundError(
        "no PostgreSQL server under /usr/lib/postgresql/*/bin (install postgresql, or set "
        "QAI_PG_BIN)");
  }
  return best;
}

std::string FindRunuser() {
  for (const char* path :
       {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  return "runuser";
}

// Whether the `postgres` user can reach `dir` (every ancestor searchable by others).
bool ReachableByOthers(const fs::path& dir) {
  for (fs::path p = dir.parent_path(); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return false;
    if (p == p.root_path()) break;
  }
  return true;
}

std::string QuoteConf(std::string_view value) {
  return absl::StrCat("'", absl::StrReplaceAll(std::string(value), {{"'", "''"}, {"\\", "\\\\"}}),
                      "'");
}

std::string ReadFrom(const std::string& path, std::streamoff offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(offset);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::streamoff FileSize(const std::string& path) {
  std::error_code error;
  auto size = fs::file_size(path, error);
  return error ? 0 : static_cast<std::streamoff>(size);
}

// Stops the server and removes its directory if this process dies without doing so (a crash,
// a ctest timeout): a watcher process polls for our pid.
constexpr char kGuardScript[] = R"(
while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -n "$5" ]; then
  "$5" -u postgres -- "$4" -D "$2" -m immediate -w -t 30 stop >/dev/null 2>&1
else
  "$4" -D "$2" -m immediate -w -t 30 stop >/dev/null 2>&1
fi
rm -rf "$3"
out=$(readlink "/proc/$$/fd/1")
case "$out" in */qai-child-*/output.log) rm -rf "${out%/*}" ;; esac
)";

}  // namespace

PgServer::~PgServer() {
  if (running_) {
    if (absl::Status stopped = Stop(); !stopped.ok()) {
      std::fprintf(stderr, "PgServer: %s\n", std::string(stopped.message()).c_str());
      (void)RunTool("pg_ctl", {"-D", data_dir_, "-m", "immediate", "-w", "-t", "30", "stop"},
                    absl::Seconds(40));
    }
  }
  guard_.reset();
  if (!dir_.empty()) {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
}

PgServer& PgServer::Shared() {
  static PgServer* server = nullptr;
  static absl::Status* status = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    server = new PgServer();
    status = new absl::Status(server->Start());
    if (!status->ok()) std::fprintf(stderr, "PgServer::Shared: %s\n", status->ToString().c_str());
    std::atexit([] {
      delete server;  // stops it
      server = nullptr;
    });
  });
  if (!status->ok()) {
    throw std::runtime_error(
        absl::StrCat("shared PostgreSQL server failed to start: ", status->ToString()));
  }
  return *server;
}

std::string PgServer::Url(std::string_view database) const {
  // Keyword/value rather than a URI: SOCI 4.0 mangles URIs (see common/database_url.h).
  return absl::StrCat("host=127.0.0.1 port=", port_,
                      " user=postgres dbname=", std::string(database));
}

std::string PgServer::LogTail(int lines) const {
  std::string log = ReadFrom(log_path_, 0);
  std::vector<absl::string_view> all = absl::StrSplit(log, '\n');
  size_t first = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  return absl::StrJoin(all.begin() + first, all.end(), "\n");
}

absl::Status PgServer::RunTool(std::string_view tool, std::vector<std::string> args,
                               absl::Duration timeout) {
  std::string program = absl::StrCat(bin_dir_, "/", std::string(tool));
  if (run_as_postgres_) {
    args.insert(args.begin(), {"-u", "postgres", "--", program});
    program = FindRunuser();
  }
  std::string command = absl::StrCat(program, " ", absl::StrJoin(args, " "));
  // The server's own directory as working directory: the postgres user may not enter ours.
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Spawn(program, args, {{"LC_ALL", "C"}}, {.working_dir = dir_});
  if (!child.ok()) return child.status();
  absl::StatusOr<int> code = (*child)->Wait(timeout);
  if (!code.ok() || *code != 0) {
    return absl::InternalError(absl::StrCat(
        command, (code.ok() ? absl::StrCat(" exited with ", *code) : " timed out"), "\n",
        (*child)->Output(), "\n--- server log tail (", log_path_, ") ---\n", LogTail()));
  }
  return absl::OkStatus();
}

absl::Status PgServer::Init() {
  QAI_ASSIGN_OR_RETURN(std::string bin, FindPgBin());
  bin_dir_ = bin;
  run_as_postgres_ = ::geteuid() == 0;

  QAI_ASSIGN_OR_RETURN(std::string dir, MakeTempDir("qai-pg-"));
  // The unix socket path must fit in sockaddr_un, and as root the postgres user must be able to
  // reach the directory; /tmp satisfies both when $TMPDIR does not.
  constexpr size_t kSocketNameLength = sizeof("/.s.PGSQL.65535");
  if (dir.size() + kSocketNameLength > sizeof(sockaddr_un{}.sun_path) ||
      (run_as_postgres_ && !ReachableByOthers(dir))) {
    fs::remove_all(dir);
    char pattern[] = "/tmp/qai-pg-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return absl::InternalError("mkdtemp /tmp/qai-pg-XXXXXX");
    dir = pattern;
  }
  dir_ = dir;
  data_dir_ = dir_ + "/data";
  log_path_ = dir_ + "/server.log";

  if (run_as_postgres_) {
    struct passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) {
      return absl::FailedPreconditionError(
          "running as root, but there is no 'postgres' user to run the test server as");
    }
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return absl::InternalError(absl::StrCat("chown ", dir_, " to postgres failed"));
    }
  }

  std::string pg_ctl = absl::StrCat(bin_dir_, "/pg_ctl");
  absl::StatusOr<std::unique_ptr<ChildProcess>> guard =
      ChildProcess::Spawn("/bin/sh",
                          {"-c", kGuardScript, "qai-pg-guard", absl::StrCat(::getpid()), data_dir_,
                           dir_, pg_ctl, run_as_postgres_ ? FindRunuser() : ""},
                          {}, {.working_dir = "", .die_with_parent = false});
  if (guard.ok()) guard_ = std::move(*guard);  // best effort: only matters after a crash

  if (absl::Status status = RunTool("initdb",
                                    {"-D", data_dir_, "--auth=trust", "--no-sync", "-U", "postgres",
                                     "-E", "UTF8", "--locale=C"},
                                    absl::Minutes(3));
      !status.ok()) {
    return status;
  }
  std::ofstream conf(data_dir_ + "/postgresql.conf", std::ios::app);
  conf << kTestSettings << "unix_socket_directories = " << QuoteConf(dir_) << "\n";
  conf.close();
  if (!conf) return absl::InternalError("cannot write postgresql.conf");
  return absl::OkStatus();
}

absl::Status PgServer::StartOnce() {
  return RunTool("pg_ctl",
                 {"-D", data_dir_, "-l", log_path_, "-w", "-t", "120", "-o",
                  absl::StrCat("-p ", port_), "start"},
                 absl::Minutes(3));
}

absl::Status PgServer::Start() {
  if (running_) return absl::OkStatus();
  if (dir_.empty()) {
    if (absl::Status status = Init(); !status.ok()) {
      std::fprintf(stderr, "PgServer::Start: %s\n", std::string(status.message()).c_str());
      return status;
    }
  }
  const bool keep_port = port_ != 0;
  absl::Status status;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    if (!keep_port) port_ = FreePort();
    std::streamoff log_offset = FileSize(log_path_);
    status = StartOnce();
    if (status.ok()) {
      running_ = true;
      return absl::OkStatus();
    }
    // Someone took the port between FreePort and the server's bind: try another one.
    if (ReadFrom(log_path_, log_offset).find("already in use") == std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  std::fprintf(stderr, "PgServer::Start: %s\n", std::string(status.message()).c_str());
  return status;
}

absl::Status PgServer::Stop() {
  if (!running_) return absl::OkStatus();
  absl::Status status = RunTool(
      "pg_ctl", {"-D", data_dir_, "-m", "fast", "-w", "-t", "120", "stop"}, absl::Minutes(3));
  if (status.ok()) running_ = false;
  return status;
}

absl::Status PgServer::Restart() {
  QAI_RETURN_IF_ERROR(Stop());
  return Start();
}

absl::Status PgServer::Execute(std::string_view database, const std::string& statement) {
  try {
    soci::session sql(soci::postgresql, Url(database));
    sql << statement;
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(statement, " on ", std::string(database), ": ",
                                            e.what(), "\n--- server log tail ---\n", LogTail()));
  }
}

absl::Status PgServer::EnsureTemplate() {
  std::lock_guard lock(template_mutex_);
  if (template_ready_) return absl::OkStatus();
  // Names are ours, never input: identifiers cannot be bound parameters.
  QAI_RETURN_IF_ERROR(
      Execute("postgres", absl::StrCat("DROP DATABASE IF EXISTS ", kTemplateDatabase)));
  QAI_RETURN_IF_ERROR(Execute("postgres", absl::StrCat("CREATE DATABASE ", kTemplateDatabase)));
  absl::StatusOr<int> applied =
      db::ApplyMigrations(Url(kTemplateDatabase), db::EmbeddedMigrations());
  if (!applied.ok()) {
    return absl::Status(
        applied.status().code(),
        absl::StrCat("migrating the template database: ", applied.status().message(),
                     "\n--- server log tail ---\n", LogTail()));
  }
  template_ready_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::string> PgServer::TryCreateDatabase(bool migrated) {
  if (!running_) return absl::FailedPreconditionError("PgServer is not running");
  std::string name = absl::StrCat("qai_test_", next_database_.fetch_add(1));
  std::string statement = absl::StrCat("CREATE DATABASE ", name);
  if (migrated) {
    QAI_RETURN_IF_ERROR(EnsureTemplate());
    absl::StrAppend(&statement, " TEMPLATE ", kTemplateDatabase);
  }
  QAI_RETURN_IF_ERROR(Execute("postgres", statement));
  return Url(name);
}

std::string PgServer::CreateDatabase(bool migrated) {
  absl::StatusOr<std::string> url = TryCreateDatabase(migrated);
  if (!url.ok()) throw std::runtime_error(url.status().ToString());
  return *url;
}

}  // namespace qai::testing
