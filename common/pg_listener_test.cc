#include "common/pg_listener.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/pg_server.h"

namespace qai::common {
namespace {

using qai::testing::PgServer;
using Clock = std::chrono::steady_clock;

// Received: what the listener handed over, for the test thread to wait on.
class Received {
 public:
  void Add(std::string_view channel, std::string_view payload) {
    std::lock_guard lock(mu_);
    items_.emplace_back(std::string(channel), std::string(payload));
    cv_.notify_all();
  }
  // WaitFor: the items once there are at least n (fewer after the timeout).
  std::vector<std::pair<std::string, std::string>> WaitFor(
      size_t n, absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return items_.size() >= n; });
    return items_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, std::string>> items_;
};

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout = absl::Seconds(15)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// Notify: pg_notify on a connection of its own (the payload is a bound parameter).
void Notify(const std::string& url, const std::string& channel, const std::string& payload) {
  PGconn* conn = PQconnectdb(url.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  const char* params[] = {channel.c_str(), payload.c_str()};
  PGresult* r =
      PQexecParams(conn, "SELECT pg_notify($1, $2)", 2, nullptr, params, nullptr, nullptr, 0);
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  PQclear(r);
  PQfinish(conn);
}

// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(PgListenerTest, DeliversNotificationsOfEveryChannelWithTheirPayloads) {
  const std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  Received received;
  std::atomic<int> connections{0};
  PgListener listener(
      {.url = url, .channels = {"qai_alpha", "qai_beta"}},
      [&](std::string_view channel, std::string_view payload) { received.Add(channel, payload); },
      [&] { ++connections; });
  ASSERT_TRUE(listener.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return listener.connected(); }));
  EXPECT_EQ(connections.load(), 1) << "on_reconnect runs after the first connection too";

  Notify(url, "qai_alpha", "run-1:7");
  Notify(url, "qai_other", "not listened to");
  Notify(url, "qai_beta", "it's \"quoted\"; LISTEN x");
  Notify(url, "qai_alpha", "");
  auto items = received.WaitFor(3);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0], std::make_pair(std::string("qai_alpha"), std::string("run-1:7")));
  EXPECT_EQ(items[1],
            std::make_pair(std::string("qai_beta"), std::string("it's \"quoted\"; LISTEN x")));
  EXPECT_EQ(items[2], std::make_pair(std::string("qai_alpha"), std::string()));
}

// Count: one integer a query returns, on a connection of its own.
int Count(const std::string& url, const std::string& sql, const std::string& param) {
  PGconn* conn = PQconnectdb(url.c_str());
  EXPECT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  const char* params[] = {param.c_str()};
  PGresult* r = PQexecParams(conn, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0);
  const int n = PQresultStatus(r) == PGRES_TUPLES_OK ? std::atoi(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  PQfinish(conn);
  return n;
}

TEST(PgListenerTest, SetupStatementsRunWithTheirParametersOnTheListeningSession) {
  const std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  Received received;
  auto listener = std::make_unique<PgListener>(
      PgListener::Options{.url = url,
                          .channels = {"qai_alpha"},
                          .setup = {{.sql = "SELECT set_config('application_name', $1, false)",
                                     .params = {"qai-setup-test"}},
                                    {.sql = "SELECT pg_advisory_lock($1::integer, $2::integer)",
                                     .params = {"7", "9"}}}},
      [&](std::string_view channel, std::string_view payload) { received.Add(channel, payload); });
  ASSERT_TRUE(listener->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return listener->connected(); }));
  const std::string listening =
      "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'";
  EXPECT_EQ(Count(url, listening, "qai-setup-test"), 1) << "the session that listens ran the setup";
  const std::string locked =
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 7 AND objid = 9 AND "
      "granted"
      " AND $1 <> ''";
  EXPECT_EQ(Count(url, locked, "x"), 1);
  Notify(url, "qai_alpha", "heard");
  EXPECT_EQ(received.WaitFor(1).size(), 1u);
  listener.reset();
  EXPECT_TRUE(WaitUntil([&] { return Count(url, locked, "x") == 0; }))
      << "the session's lock went with it";
}

TEST(PgListenerTest, AFailingSetupStatementCountsAsAFailedConnection) {
  const std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  PgListener listener({.url = url,
                       .channels = {"qai_alpha"},
                       .setup = {{.sql = "SELECT no_such_function()"}},
                       .max_backoff = absl::Milliseconds(100)},
                      [](std::string_view, std::string_view) {});
  ASSERT_TRUE(listener.Start().ok());
  absl::SleepFor(absl::Seconds(1));
  EXPECT_FALSE(listener.connected());
}

TEST(PgListenerTest, StartRefusesBadOptions) {
  auto on_notify = [](std::string_view, std::string_view) {};
  const std::string url = "host=127.0.0.1 port=1 dbname=x";
  for (const std::string& bad :
       {std::string(), std::string("Qai_runs"), std::string("qai-runs"), std::string("qai runs"),
        std::string("x; DROP TABLE t"), std::string("\"q\""), std::string(64, 'a')}) {
    PgListener listener({.url = url, .channels = {"qai_ok", bad}}, on_notify);
    absl::Status s = listener.Start();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << "channel " << bad;
    EXPECT_FALSE(listener.connected());
  }
  PgListener no_channels({.url = url, .channels = {}}, on_notify);
  EXPECT_EQ(no_channels.Start().code(), absl::StatusCode::kInvalidArgument);
  PgListener no_url({.url = "", .channels = {"qai_ok"}}, on_notify);
  EXPECT_EQ(no_url.Start().code(), absl::StatusCode::kInvalidArgument);
  PgListener bad_url(
      {.url = "postgresql://u:secret@host/db?bogus_option=1", .channels = {"qai_ok"}}, on_notify);
  absl::Status s = bad_url.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().find("secret"), absl::string_view::npos) << s;
  PgListener no_callback({.url = url, .channels = {"qai_ok"}}, nullptr);
  EXPECT_EQ(no_callback.Start().code(), absl::StatusCode::kInvalidArgument);
  PgListener longest({.url = url, .channels = {std::string(63, 'a')}}, on_notify);
  EXPECT_TRUE(longest.Start().ok());
  EXPECT_EQ(longest.Start().code(), absl::StatusCode::kFailedPrecondition) << "started once";
}

TEST(PgListenerTest, StopIsPromptWhileConnected) {
  const std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  PgListener listener({.url = url, .channels = {"qai_runs"}},
                      [](std::string_view, std::string_view) {});
  ASSERT_TRUE(listener.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return listener.connected(); }));
  const auto start = Clock::now();
  listener.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(500));
  EXPECT_FALSE(listener.connected());
  listener.Stop();  // idempotent
}

TEST(PgListenerTest, StopIsPromptWhileBackingOffOrWaitingForAServerThatNeverAnswers) {
  // Nothing listens: connect fails at once, and the listener backs off (up to 5 s).
  {
    PgListener listener({.url = absl::StrCat("host=127.0.0.1 port=", UnusedPort(), " dbname=x")
                                    .append(" connect_timeout=30"),
                         .channels = {"qai_runs"}},
                        [](std::string_view, std::string_view) {});
    ASSERT_TRUE(listener.Start().ok());
    absl::SleepFor(absl::Milliseconds(700));
    EXPECT_FALSE(listener.connected());
    const auto start = Clock::now();
    listener.Stop();
    EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(500));
  }
  // The port accepts TCP connections, but no server ever answers the startup packet.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  {
    PgListener listener({.url = absl::StrCat("host=127.0.0.1 port=", ntohs(addr.sin_port),
                                             " dbname=x connect_timeout=30 sslmode=disable"),
                         .channels = {"qai_runs"}},
                        [](std::string_view, std::string_view) {});
    ASSERT_TRUE(listener.Start().ok());
    absl::SleepFor(absl::Milliseconds(300));
    const auto start = Clock::now();
    listener.Stop();
    EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(500));
  }
  close(fd);
}

TEST(PgListenerTest, LogsAFailureStreakOnceAndWithoutThePassword) {
  const int port = UnusedPort();
  ::testing::internal::CaptureStderr();
  {
    PgListener listener(
        {.url = absl::StrCat("postgresql://postgres:pa55word@127.0.0.1:", port, "/x"),
         .channels = {"qai_runs"},
         .max_backoff = absl::Milliseconds(40)},
        [](std::string_view, std::string_view) {});
    ASSERT_TRUE(listener.Start().ok());
    absl::SleepFor(absl::Milliseconds(600));  // several attempts
  }
  const std::string log = ::testing::internal::GetCapturedStderr();
  size_t lines = 0;
  for (size_t at = log.find("cannot connect"); at != std::string::npos;
       at = log.find("cannot connect", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << log;
  EXPECT_EQ(log.find("pa55word"), std::string::npos) << log;
}

// Restores the shared server if a test below leaves it stopped: later tests need it.
class ServerRunningGuard {
 public:
  ~ServerRunningGuard() {
    PgServer& server = PgServer::Shared();
    if (!server.running()) {
      absl::Status started = server.Start();
      EXPECT_TRUE(started.ok()) << started;
    }
  }
};

// These stop the shared server, so they come last in this file.
TEST(PgListenerRestartTest, ReconnectsAfterTheServerCameBackAndCatchesUp) {
  ServerRunningGuard guard;
  const std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  Received received;
  std::atomic<int> connections{0};
  PgListener listener(
      {.url = url, .channels = {"qai_runs"}, .max_backoff = absl::Milliseconds(200)},
      [&](std::string_view channel, std::string_view payload) { received.Add(channel, payload); },
      [&] { ++connections; });
  ASSERT_TRUE(listener.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return listener.connected(); }));
  Notify(url, "qai_runs", "before");
  ASSERT_EQ(received.WaitFor(1).size(), 1u);

  ASSERT_TRUE(PgServer::Shared().Stop().ok());
  EXPECT_TRUE(WaitUntil([&] { return !listener.connected(); }, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(500));  // a few failed attempts
  EXPECT_EQ(connections.load(), 1);
  ASSERT_TRUE(PgServer::Shared().Start().ok());

  ASSERT_TRUE(WaitUntil([&] { return listener.connected(); })) << "reconnected";
  EXPECT_EQ(connections.load(), 2) << "on_reconnect ran once more";
  Notify(url, "qai_runs", "after");
  auto items = received.WaitFor(2);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[1].second, "after");
}

TEST(PgListenerRestartTest, ReconnectsAfterAFastRestart) {
  ServerRunningGuard guard;
  const std::string url = PgServer::Shared().CreateDatabase(/*migrated=*/false);
  Received received;
  std::atomic<int> connections{0};
  PgListener listener(
      {.url = url, .channels = {"qai_runs"}, .max_backoff = absl::Milliseconds(200)},
      [&](std::string_view channel, std::string_view payload) { received.Add(channel, payload); },
      [&] { ++connections; });
  ASSERT_TRUE(listener.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return listener.connected(); }));
  ASSERT_TRUE(PgServer::Shared().Restart().ok());
  ASSERT_TRUE(WaitUntil([&] { return connections.load() == 2 && listener.connected(); }));
  Notify(url, "qai_runs", "after restart");
  auto items = received.WaitFor(1);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].second, "after restart");
}

}  // namespace
}  // namespace qai::common
