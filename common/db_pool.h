#pragma once
// DbPool: a bounded pool of SOCI PostgreSQL sessions.
//
// A connection is opened on first need, handed out healthy (a broken one is reopened, so the
// pool recovers by itself after the server restarts), and waited for at most
// `acquire_timeout`. Each connection carries a cache of prepared statements, so hot queries
// are parsed once per connection instead of once per call. Database errors become
// absl::Status values here; SOCI's exceptions never leave a store.
//
//   auto pool = DbPool::Create({.url = url, .size = 16});
//   absl::Status s = (*pool)->Transaction([&](DbConnection& conn) -> absl::Status {
//     conn.session() << "UPDATE ... WHERE id = :id", soci::use(id);
//     return absl::OkStatus();
//   });

#include <libpq-fe.h>

#include <functional>
#include <memory>
#include <string>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "soci/soci.h"

namespace qai::common {

// DbConnection: one session of the pool, lent to one caller at a time.
class DbConnection {
 public:
  soci::session& session() { return *session_; }
  // pg: the libpq connection under the session (for LISTEN/NOTIFY and status checks).
  PGconn* pg();

  // Prepared<T>: this connection's instance of T, built on first use as T(session()).
  // T is a store's bundle of prepared soci::statements with the variables they bind, so a
  // statement is parsed once per connection and executed many times.
  template <typename T>
  T& Prepared() {
    auto& slot = prepared_[std::type_index(typeid(T))];
    if (!slot)
      slot = std::shared_ptr<void>(new T(*session_), [](void* p) { delete static_cast<T*>(p); });
    return *static_cast<T*>(slot.get());
  }

 private:
  friend class DbPool;
  std::unique_ptr<soci::session> session_;
  std::unordered_map<std::type_index, std::shared_ptr<void>> prepared_;
  absl::Time last_used_ = absl::InfinitePast();
};

// NativeConnection: the libpq connection under a SOCI PostgreSQL session (nullptr if none).
PGconn* NativeConnection(soci::session& session);

// MapDbError: the absl::Status for an exception thrown by SOCI or libpq. Lost connections
// and a server shutting down are UNAVAILABLE; unique violations ALREADY_EXISTS; serialization
// failures and deadlocks ABORTED; anything else INTERNAL (its text is logged, not returned).
absl::Status MapDbError(const std::exception& e);

// SqlState: the five-character SQLSTATE of a PostgreSQL error, or "" for other exceptions.
std::string SqlState(const std::exception& e);

class DbPool {
 public:
  struct Options {
    // A libpq URI (postgresql://...) or keyword/value string.
    std::string url;
    int size = 16;
    absl::Duration acquire_timeout = absl::Seconds(5);
    // A connection idle longer than this is pinged before it is lent out.
    absl::Duration idle_check = absl::Seconds(30);
  };
  // Stats: for metrics and health.
  struct Stats {
    int size = 0;
    int open = 0;
    int in_use = 0;
    int waiting = 0;
  };

  // Create: validates the options; connections are opened lazily, so a pool can be created
  // while the database is down (the service then reports NOT_SERVING until it is back).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DbPool>> Create(Options options);
  ~DbPool();

  // Lease: a connection on loan; it goes back to the pool when the lease ends.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    DbConnection& operator*() { return *conn_; }
    DbConnection* operator->() { return conn_.get(); }
    // Discard: the connection is closed instead of returned (after an error left it unusable).
    void Discard() { discard_ = true; }

   private:
    friend class DbPool;
    Lease(DbPool* pool, std::unique_ptr<DbConnection> conn) : pool_(pool), conn_(std::move(conn)) {}
    DbPool* pool_;
    std::unique_ptr<DbConnection> conn_;
    bool discard_ = false;
  };

  // Acquire: a healthy connection, waiting at most acquire_timeout (then UNAVAILABLE).
  [[nodiscard]] absl::StatusOr<Lease> Acquire();

  // Run: fn on a connection outside any transaction, for reads and single idempotent
  // statements. Exceptions are mapped; a connection that turns out to be dead is discarded
  // and fn runs once more on a fresh one.
  [[nodiscard]] absl::Status Run(const std::function<absl::Status(DbConnection&)>& fn);

  // Transaction: fn inside BEGIN ... COMMIT; any error or non-OK status rolls back. When the
  // connection proves dead before COMMIT was sent, the whole transaction is retried once on a
  // fresh connection (the server rolled it back, so nothing is done twice).
  [[nodiscard]] absl::Status Transaction(const std::function<absl::Status(DbConnection&)>& fn);

  // Ping: a round trip to the server (for health checks), on a connection of its own, so a
  // pool busy with slow calls does not make the service look down.
  [[nodiscard]] absl::Status Ping();

  Stats stats() const;

 private:
  explicit DbPool(Options options) : options_(std::move(options)) {}
  absl::Status Open(DbConnection& conn);
  void Release(std::unique_ptr<DbConnection> conn, bool discard);
  // DropIdle: closes every idle connection. After one connection was found dead the others
  // most likely are too (a server restart), and PQstatus cannot tell until they are used.
  void DropIdle();
  absl::Status Attempt(const std::function<absl::Status(DbConnection&)>& fn, bool transactional,
                       bool& connection_lost, bool& commit_sent);

  // ConnectionFree: whether Acquire can take an idle connection or open a new one.
  bool ConnectionFree() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !idle_.empty() || open_ < options_.size;
  }

  const Options options_;
  mutable absl::Mutex mu_;
  absl::CondVar available_;
  std::vector<std::unique_ptr<DbConnection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Mutex ping_mu_;
  std::unique_ptr<DbConnection> ping_conn_ ABSL_GUARDED_BY(ping_mu_);
};

}  // namespace qai::common
