#pragma once
// PgListener: PostgreSQL LISTEN/NOTIFY for a whole process, on one connection of its own.
//
// One thread holds a libpq connection that LISTENs on the given channels and hands every
// notification to `on_notify` (on that thread: keep it short). A lost connection is reopened
// with backoff; notifications sent while it was down are lost, so `on_reconnect` runs after
// every (re)connection for the owner to catch up from its tables. `setup` statements run on
// every new connection before its LISTEN, such as taking a session lock that says this process
// is alive (a statement that waits, as pg_advisory_lock does, is waited for; a stop cuts it
// short).
//
//   PgListener listener({.url = url, .channels = {"qai_runs"}},
//                       [](std::string_view channel, std::string_view payload) { ... },
//                       [] { ... re-read what may have been missed ... });
//   listener.Start();

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace qai::common {

class PgListener {
 public:
  // Statement: SQL with $1, $2... bound to params (as text).
  struct Statement {
    std::string sql;
    std::vector<std::string> params;
  };
  struct Options {
    std::string url;                    // libpq URI or keyword/value string
    std::vector<std::string> channels;  // plain identifiers ([a-z0-9_]+)
    std::vector<Statement> setup;       // run in order on every new connection, before LISTEN
    absl::Duration max_backoff = absl::Seconds(5);
  };
  using OnNotify = std::function<void(std::string_view channel, std::string_view payload)>;

  PgListener(Options options, OnNotify on_notify, std::function<void()> on_reconnect = nullptr);
  ~PgListener();  // Stop()s

  // Start: validates the options and starts the thread (the database may still be down).
  [[nodiscard]] absl::Status Start();
  // Stop: ends the thread within ~100 ms. Idempotent.
  void Stop();
  // connected: whether the LISTEN connection is up right now.
  bool connected() const { return connected_.load(); }

 private:
  void Loop();
  const Options options_;
  const OnNotify on_notify_;
  const std::function<void()> on_reconnect_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

}  // namespace qai::common
