#include "common/pg_listener.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/database_url.h"
#include "common/log.h"
#include "common/outbox.h"
#include "common/strings.h"

namespace qai::common {
namespace {

// Every wait of the listener thread is cut into slices this long, so Stop() is seen promptly.
constexpr int kSliceMs = 100;
// The first retry after a failure; doubled (with jitter) up to Options::max_backoff.
constexpr absl::Duration kFirstBackoff = absl::Milliseconds(100);
// PQconnectPoll ignores connect_timeout, so the listener enforces it; this when the URL has none.
constexpr absl::Duration kDefaultConnectTimeout = absl::Seconds(10);
// PostgreSQL truncates identifiers at NAMEDATALEN - 1 bytes; a longer channel would silently
// listen on another name.
constexpr size_t kMaxChannelLength = 63;

struct ConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

bool IsPlainIdentifier(std::string_view name) {
  if (name.empty() || name.size() > kMaxChannelLength) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// WaitSocket: polls the connection's socket for `events` at most `timeout_ms`. 1 when ready,
// 0 on timeout or EINTR, -1 when the socket is gone or failed.
int WaitSocket(PGconn* conn, short events, int timeout_ms) {
  pollfd pfd{.fd = PQsocket(conn), .events = events, .revents = 0};
  if (pfd.fd < 0) return -1;
  int n = poll(&pfd, 1, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -1;
  return n > 0 ? 1 : 0;
}

// ConnectTimeout: the connection's connect_timeout (libpq enforces it only in PQconnectdb).
absl::Duration ConnectTimeout(PGconn* conn) {
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconninfo(conn),
                                                                       &PQconninfoFree);
  for (PQconninfoOption* o = options.get(); o != nullptr && o->keyword != nullptr; ++o) {
    int seconds = 0;
    if (std::string_view(o->keyword) == "connect_timeout" && o->val != nullptr &&
        absl::SimpleAtoi(o->val, &seconds) && seconds > 0) {
      // libpq treats values below 2 seconds as 2.
      return absl::Seconds(std::max(seconds, 2));
    }
  }
  return kDefaultConnectTimeout;
}

// Logs the server's notices (such as the FATAL it sends when it shuts down, which arrives while
// the connection is idle) as log lines instead of libpq's default of raw text on stderr.
void LogNotice(void*, const char* message) {
  std::string text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  Log(LogLevel::kInfo, "listener: database notice", {{"notice", text}});
}

std::string ErrorOf(PGconn* conn) {
  return conn != nullptr ? PQerrorMessage(conn) : "out of memory";
}

// Connect: a new connection, opened without blocking: a stop is seen within a slice, and
// connect_timeout holds even for a server that never answers. nullptr (and `error`) on failure.
Conn Connect(const std::string& conninfo, const std::atomic<bool>& stop, std::string& error) {
  Conn conn(PQconnectStart(conninfo.c_str()));
  if (conn == nullptr || PQstatus(conn.get()) == CONNECTION_BAD) {
    error = ErrorOf(conn.get());
    return nullptr;
  }
  const absl::Time deadline = absl::Now() + ConnectTimeout(conn.get());
  // Before the first PQconnectPoll, libpq wants the socket to be writable.
  PostgresPollingStatusType polling = PGRES_POLLING_WRITING;
  for (;;) {
    if (polling == PGRES_POLLING_OK) break;
    if (polling == PGRES_POLLING_FAILED) {
      error = ErrorOf(conn.get());
      return nullptr;
    }
    if (stop.load()) return nullptr;
    if (absl::Now() > deadline) {
      error = "timeout expired while connecting";
      return nullptr;
    }
    // The socket can change between polls (libpq tries the next host or address).
    const int ready =
        WaitSocket(conn.get(), polling == PGRES_POLLING_READING ? POLLIN : POLLOUT, kSliceMs);
    if (ready < 0) {
      error = "connection socket failed";
      return nullptr;
    }
    if (ready > 0) polling = PQconnectPoll(conn.get());
  }
  PQsetNoticeProcessor(conn.get(), LogNotice, nullptr);
  return conn;
}

// AwaitResults: waits (in slices, so a stop is seen) for every result of what was sent; false
// (and `error`) when one failed, the connection did, or a stop came.
bool AwaitResults(PGconn* conn, const std::atomic<bool>& stop, std::string& error) {
  bool ok = true;
  for (;;) {
    while (PQisBusy(conn) == 0) {
      Result result(PQgetResult(conn));
      if (result == nullptr) return ok;  // every statement answered
      const ExecStatusType status = PQresultStatus(result.get());
      if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        ok = false;
        error = PQresultErrorMessage(result.get());
      }
    }
    if (stop.load()) return false;
    const int ready = WaitSocket(conn, POLLIN, kSliceMs);
    if (ready < 0 || (ready > 0 && PQconsumeInput(conn) == 0)) {
      error = ErrorOf(conn);
      return false;
    }
  }
}

// Setup: runs the statements in order, each with its parameters.
bool Setup(PGconn* conn, const std::vector<PgListener::Statement>& statements,
           const std::atomic<bool>& stop, std::string& error) {
  for (const PgListener::Statement& st : statements) {
    std::vector<const char*> values;
    for (const std::string& p : st.params) values.push_back(p.c_str());
    if (PQsendQueryParams(conn, st.sql.c_str(), static_cast<int>(values.size()), nullptr,
                          values.data(), nullptr, nullptr, 0) == 0) {
      error = ErrorOf(conn);
      return false;
    }
    if (!AwaitResults(conn, stop, error)) return false;
  }
  return true;
}

// Listen: LISTENs on every channel in one round trip. The names were validated by Start();
// they are quoted here all the same.
bool Listen(PGconn* conn, const std::vector<std::string>& channels, const std::atomic<bool>& stop,
            std::string& error) {
  std::string sql;
  for (const std::string& channel : channels) {
    char* quoted = PQescapeIdentifier(conn, channel.data(), channel.size());
    if (quoted == nullptr) {
      error = ErrorOf(conn);
      return false;
    }
    absl::StrAppend(&sql, "LISTEN ", quoted, ";");
    PQfreemem(quoted);
  }
  if (PQsendQuery(conn, sql.c_str()) == 0) {
    error = ErrorOf(conn);
    return false;
  }
  return AwaitResults(conn, stop, error);
}

struct NotifyDeleter {
  void operator()(PGnotify* n) const { PQfreemem(n); }
};

// Serve: hands every notification to on_notify until the connection fails (returns why) or
// a stop (returns "").
std::string Serve(PGconn* conn, const PgListener::OnNotify& on_notify,
                  const std::atomic<bool>& stop) {
  for (;;) {
    while (std::unique_ptr<PGnotify, NotifyDeleter> n{PQnotifies(conn)}) {
      on_notify(n->relname != nullptr ? n->relname : "", n->extra != nullptr ? n->extra : "");
    }
    if (stop.load()) return "";
    const int ready = WaitSocket(conn, POLLIN, kSliceMs);
    if (ready < 0) return "connection socket failed";
    if (ready == 0) continue;
    // A server going away sends its FATAL (passed to LogNotice) and closes: consuming fails.
    if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK) return ErrorOf(conn);
  }
}

}  // namespace

PgListener::PgListener(Options options, OnNotify on_notify, std::function<void()> on_reconnect)
    : options_(std::move(options)),
      on_notify_(std::move(on_notify)),
      on_reconnect_(std::move(on_reconnect)) {}

PgListener::~PgListener() { Stop(); }

absl::Status PgListener::Start() {
  if (thread_.joinable() || stop_.load())
    return absl::FailedPreconditionError("listener already started");
  if (options_.url.empty()) return absl::InvalidArgumentError("listener: database url is empty");
  if (absl::StatusOr<std::string> connect = ConnectString(options_.url); !connect.ok())
    return connect.status();
  if (options_.channels.empty()) return absl::InvalidArgumentError("listener: no channels");
  for (const std::string& channel : options_.channels) {
    if (!IsPlainIdentifier(channel)) {
      return absl::InvalidArgumentError(
          absl::StrCat("listener: channel \"", absl::CHexEscape(ToAbsl(channel).substr(0, 80)),
                       "\" is not a plain identifier ([a-z0-9_], at most 63 characters)"));
    }
  }
  if (options_.max_backoff <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("listener: max_backoff must be positive");
  }
  if (!on_notify_) return absl::InvalidArgumentError("listener: on_notify is empty");
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void PgListener::Stop() {
  stop_.store(true);
  // From a callback (on the listener's own thread) the loop simply ends after it returns.
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void PgListener::Loop() {
  // Validated by Start().
  const std::string conninfo = ConnectString(options_.url).value_or("");
  absl::BitGen rng;
  int failures = 0;  // connection attempts failed in a row; the first of a streak is logged

  // Sleep: `d`, cut short by Stop().
  auto sleep = [&](absl::Duration d) {
    const absl::Time until = absl::Now() + d;
    for (absl::Duration left = d; left > absl::ZeroDuration() && !stop_.load();
         left = until - absl::Now()) {
      std::this_thread::sleep_for(
          absl::ToChronoMicroseconds(std::min(left, absl::Milliseconds(kSliceMs))));
    }
  };

  while (!stop_.load()) {
    std::string error;
    Conn conn = Connect(conninfo, stop_, error);
    if (stop_.load()) break;
    if (conn != nullptr && Setup(conn.get(), options_.setup, stop_, error) &&
        Listen(conn.get(), options_.channels, stop_, error)) {
      if (failures > 0)
        Log(LogLevel::kInfo, "listener: connected again", {{"failed_attempts", failures}});
      failures = 0;
      connected_.store(true);
      if (on_reconnect_) on_reconnect_();
      error = Serve(conn.get(), on_notify_, stop_);
      connected_.store(false);
      if (stop_.load()) break;
      Log(LogLevel::kWarn, "listener: connection lost",
          {{"error", RedactSecrets(error, options_.url)}});
    } else {
      if (stop_.load()) break;  // Listen gave up because of the stop
      if (failures == 0) {
        Log(LogLevel::kWarn, "listener: cannot connect; retrying with backoff",
            {{"error", RedactSecrets(error, options_.url)}});
      }
      ++failures;
    }
    conn.reset();
    sleep(BackoffDelay(failures, kFirstBackoff, options_.max_backoff, rng));
  }
  connected_.store(false);
}

}  // namespace qai::common
