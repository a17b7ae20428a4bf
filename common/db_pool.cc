#include "common/db_pool.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/database_url.h"
#include "common/log.h"
#include "common/pg_pipeline.h"
#include "common/status_macros.h"
#include "soci/postgresql/soci-postgresql.h"

namespace qai::common {

PGconn* NativeConnection(soci::session& session) {
  auto* backend = static_cast<soci::postgresql_session_backend*>(session.get_backend());
  return backend == nullptr ? nullptr : backend->conn_;
}

PGconn* DbConnection::pg() { return NativeConnection(*session_); }

std::string SqlState(const std::exception& e) {
  if (const auto* pg = dynamic_cast<const soci::postgresql_soci_error*>(&e)) return pg->sqlstate();
  return "";
}

absl::Status MapDbError(const std::exception& e) {
  if (const auto* soci_error = dynamic_cast<const soci::soci_error*>(&e);
      soci_error != nullptr &&
      soci_error->get_error_category() == soci::soci_error::connection_error) {
    return absl::UnavailableError("database unavailable");
  }
  return StatusFromSqlState(SqlState(e), e.what());
}

absl::StatusOr<std::unique_ptr<DbPool>> DbPool::Create(Options options) {
  if (options.url.empty()) return absl::InvalidArgumentError("database url is empty");
  if (options.size < 1) return absl::InvalidArgumentError("database pool size must be at least 1");
  // SOCI cannot parse libpq URIs itself; the converted form is what every connection uses.
  QAI_ASSIGN_OR_RETURN(std::string connect, ConnectString(options.url));
  options.url = std::move(connect);
  return std::unique_ptr<DbPool>(new DbPool(std::move(options)));
}

DbPool::~DbPool() = default;

DbPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)), discard_(other.discard_) {}

DbPool::Lease::~Lease() {
  if (conn_) pool_->Release(std::move(conn_), discard_);
}

absl::Status DbPool::Open(DbConnection& conn) {
  conn.prepared_.clear();
  conn.session_.reset();
  try {
    conn.session_ = std::make_unique<soci::session>(soci::postgresql, options_.url);
    for (const char* setup_sql : kSessionSetup) *conn.session_ << setup_sql;
  } catch (const std::exception& e) {
    // The message may quote the connection string; only its category is logged.
    Log(LogLevel::kWarn, "database connect failed", {{"sqlstate", SqlState(e)}});
    return absl::UnavailableError("database unavailable");
  }
  return absl::OkStatus();
}

absl::StatusOr<DbPool::Lease> DbPool::Acquire() {
  std::unique_ptr<DbConnection> conn;
  {
    absl::MutexLock lock(&mu_);
    ++waiting_;
    const absl::Time deadline = absl::Now() + options_.acquire_timeout;
    while (!ConnectionFree() && !available_.WaitWithDeadline(&mu_, deadline)) {
    }
    const bool got = ConnectionFree();
    --waiting_;
    if (!got) return absl::UnavailableError("database busy: no connection free in time");
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    } else {
      conn = std::make_unique<DbConnection>();
      ++open_;
    }
    ++in_use_;
  }
  Lease lease(this, std::move(conn));
  DbConnection& c = *lease;
  bool healthy = c.session_ != nullptr && ConnectionAlive(c.pg());
  if (healthy && absl::Now() - c.last_used_ > options_.idle_check) {
    try {
      c.session() << "SELECT 1";
    } catch (const std::exception&) {
      healthy = false;
    }
  }
  if (!healthy) {
    if (absl::Status s = Open(c); !s.ok()) {
      lease.Discard();
      return s;
    }
  }
  return lease;
}

void DbPool::Release(std::unique_ptr<DbConnection> conn, bool discard) {
  if (!discard && conn->session_ && conn->pg() && PQstatus(conn->pg()) == CONNECTION_OK) {
    conn->last_used_ = absl::Now();
  } else {
    discard = true;
  }
  std::unique_ptr<DbConnection> closing;
  {
    absl::MutexLock lock(&mu_);
    --in_use_;
    if (discard) {
      --open_;
      closing = std::move(conn);
    } else {
      idle_.push_back(std::move(conn));
    }
  }
  available_.Signal();
}

absl::Status DbPool::Attempt(const std::function<absl::Status(DbConnection&)>& fn,
                             bool transactional, bool& connection_lost, bool& commit_sent) {
  connection_lost = false;
  commit_sent = false;
  QAI_ASSIGN_OR_RETURN(Lease lease, Acquire());
  DbConnection& conn = *lease;
  try {
    if (!transactional) {
      absl::Status s = fn(conn);
      return s;
    }
    conn.session().begin();
    absl::Status s = fn(conn);
    if (!s.ok()) {
      conn.session().rollback();
      return s;
    }
    commit_sent = true;
    conn.session().commit();
    return absl::OkStatus();
  } catch (const std::exception& e) {
    if (conn.pg() == nullptr || PQstatus(conn.pg()) != CONNECTION_OK) {
      connection_lost = true;
      lease.Discard();
      return absl::UnavailableError("database unavailable");
    }
    absl::Status mapped = MapDbError(e);
    try {
      if (transactional) conn.session().rollback();
    } catch (const std::exception&) {
      lease.Discard();
    }
    return mapped;
  }
}

void DbPool::DropIdle() {
  std::vector<std::unique_ptr<DbConnection>> closing;
  {
    absl::MutexLock lock(&mu_);
    open_ -= static_cast<int>(idle_.size());
    closing.swap(idle_);
  }
  available_.SignalAll();
}

absl::Status DbPool::Run(const std::function<absl::Status(DbConnection&)>& fn) {
  bool lost = false, commit_sent = false;
  absl::Status s = Attempt(fn, /*transactional=*/false, lost, commit_sent);
  if (lost) {
    DropIdle();
    s = Attempt(fn, false, lost, commit_sent);
  }
  return s;
}

absl::Status DbPool::Transaction(const std::function<absl::Status(DbConnection&)>& fn) {
  bool lost = false, commit_sent = false;
  absl::Status s = Attempt(fn, /*transactional=*/true, lost, commit_sent);
  if (lost) DropIdle();
  if (lost && !commit_sent) s = Attempt(fn, true, lost, commit_sent);
  return s;
}

absl::Status DbPool::Ping() {
  absl::MutexLock lock(&ping_mu_);
  if (!ping_conn_ || !ConnectionAlive(ping_conn_->pg())) {
    ping_conn_ = std::make_unique<DbConnection>();
    if (absl::Status s = Open(*ping_conn_); !s.ok()) {
      ping_conn_.reset();
      return s;
    }
  }
  try {
    int one = 0;
    ping_conn_->session() << "SELECT 1", soci::into(one);
    return one == 1 ? absl::OkStatus() : absl::InternalError("unexpected ping result");
  } catch (const std::exception& e) {
    ping_conn_.reset();
    return absl::UnavailableError("database unavailable");
  }
}

DbPool::Stats DbPool::stats() const {
  absl::MutexLock lock(&mu_);
  return {options_.size, open_, in_use_, waiting_};
}

}  // namespace qai::common
