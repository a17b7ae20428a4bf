#include "common/pg_pipeline.h"

#include <poll.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/database_url.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace qai::common {

absl::StatusCode CodeForSqlState(std::string_view state) {
  // Class 08: connection exceptions; 57P0x: the server is shutting down or starting up;
  // 57014 and 55P03: a statement or lock wait that ran out of time.
  if (absl::StartsWith(ToAbsl(state), "08") || absl::StartsWith(ToAbsl(state), "57P") ||
      state == "57014" || state == "55P03") {
    return absl::StatusCode::kUnavailable;
  }
  if (state == "23505") return absl::StatusCode::kAlreadyExists;
  if (state == "40001" || state == "40P01") return absl::StatusCode::kAborted;
  return absl::StatusCode::kInternal;
}

absl::Status StatusFromSqlState(std::string_view state, std::string_view message) {
  switch (CodeForSqlState(state)) {
    case absl::StatusCode::kUnavailable:
      return absl::UnavailableError("database unavailable or busy; retry");
    case absl::StatusCode::kAlreadyExists:
      return absl::AlreadyExistsError("already exists");
    case absl::StatusCode::kAborted:
      return absl::AbortedError("concurrent update; retry");
    default:
      Log(LogLevel::kError, "database error",
          {{"sqlstate", std::string(state)}, {"error", std::string(message)}});
      return absl::InternalError("database error");
  }
}

bool ConnectionAlive(PGconn* conn) {
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) return false;
  pollfd pfd{.fd = PQsocket(conn), .events = POLLIN, .revents = 0};
  if (pfd.fd < 0) return false;
  if (poll(&pfd, 1, 0) > 0) {
    // Readable while idle: EOF, the server's goodbye (its FATAL "terminating connection"),
    // or a notification. Only a notification leaves the connection usable.
    if (PQconsumeInput(conn) == 0) return false;
    bool notified = false;
    while (PGnotify* n = PQnotifies(conn)) {
      notified = true;
      PQfreemem(n);
    }
    if (!notified) return false;
  }
  return PQstatus(conn) == CONNECTION_OK;
}

namespace {

// Result: one PGresult, freed when it goes.
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

absl::StatusOr<PgRows> ToRows(PGresult* r) {
  switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK: {
      PgRows out;
      const int rows = PQntuples(r), fields = PQnfields(r);
      out.rows.resize(rows);
      for (int i = 0; i < rows; ++i) {
        out.rows[i].reserve(fields);
        for (int j = 0; j < fields; ++j) {
          if (PQgetisnull(r, i, j)) {
            out.rows[i].emplace_back(std::nullopt);
          } else {
            out.rows[i].emplace_back(std::string(PQgetvalue(r, i, j), PQgetlength(r, i, j)));
          }
        }
      }
      const char* affected = PQcmdTuples(r);
      out.affected = affected && *affected ? std::atoll(affected) : 0;
      return out;
    }
    case PGRES_PIPELINE_ABORTED:
      return absl::AbortedError("statement skipped after an earlier failure in its batch");
    default: {
      const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      return StatusFromSqlState(state ? state : "", PQresultErrorMessage(r));
    }
  }
}

}  // namespace

// Lane: one connection and the thread that drives it.
class PgPipeline::Lane {
 public:
  Lane(PgPipeline* pipeline, int index)
      : pipeline_(pipeline), index_(index), thread_([this] { Run(); }) {}
  ~Lane() {
    if (thread_.joinable()) thread_.join();
    if (conn_ != nullptr) PQfinish(conn_);
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    std::vector<Item> batch;
    bool ran = false;
    while (pipeline_->NextBatch(index_, batch, ran)) {
      ran = true;
      if (!EnsureConnected()) {
        for (Item& item : batch) item.done(absl::UnavailableError("database unavailable"));
      } else if (batch.size() == 1 || !RunGrouped(batch)) {
        RunEach(batch);
      }
      batch.clear();
    }
  }

  bool EnsureConnected() {
    if (ConnectionAlive(conn_)) return true;
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = PQconnectdb(pipeline_->options_.url.c_str());
    bool ok = PQstatus(conn_) == CONNECTION_OK;
    for (const char* setup_sql : kSessionSetup) {
      if (!ok) break;
      Result setup(PQexec(conn_, setup_sql));
      ok = PQresultStatus(setup.get()) == PGRES_COMMAND_OK;
    }
    for (size_t i = 0; ok && i < pipeline_->statements_.size(); ++i) {
      const PgStatement& st = pipeline_->statements_[i];
      Result r(PQprepare(conn_, st.name.c_str(), st.sql.c_str(), 0, nullptr));
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        // A statement that does not prepare is a bug in our SQL (or a missing migration), not
        // an outage: say which, once per failure streak.
        if (!warned_) {
          Log(LogLevel::kError, "cannot prepare statement",
              {{"statement", st.name}, {"error", std::string(PQresultErrorMessage(r.get()))}});
        }
        ok = false;
      }
    }
    ok = ok && PQenterPipelineMode(conn_) == 1;
    if (!ok) {
      if (!warned_) Log(LogLevel::kWarn, "database connect failed (pipeline)");
      warned_ = true;
      PQfinish(conn_);
      conn_ = nullptr;
      return false;
    }
    warned_ = false;
    return true;
  }

  bool Send(const Item& item) {
    const PgStatement& st = pipeline_->statements_[item.statement];
    std::vector<const char*> values;
    values.reserve(item.params.size());
    for (const PgValue& v : item.params) values.push_back(v ? v->c_str() : nullptr);
    return PQsendQueryPrepared(conn_, st.name.c_str(), static_cast<int>(values.size()),
                               values.data(), nullptr, nullptr, 0) == 1;
  }

  // NextResult: the next result of the current statement, and its terminating NULL consumed.
  Result NextResult() {
    Result r(PQgetResult(conn_));
    if (r && PQresultStatus(r.get()) != PGRES_PIPELINE_SYNC) {
      PGresult* end = PQgetResult(conn_);  // the NULL that ends this statement's results
      if (end != nullptr) PQclear(end);
    }
    return r;
  }

  bool Broken() const { return conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK; }

  void FailBroken(std::vector<Item>& batch, size_t from) {
    // Lost mid-batch: whether a commit happened is unknown, as with any lost connection;
    // callers retry with their request ids.
    for (size_t i = from; i < batch.size(); ++i)
      batch[i].done(absl::UnavailableError("database unavailable"));
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = nullptr;
  }

  // RunGrouped: the whole batch as one implicit transaction: statements up to a Sync commit
  // together at the Sync, or roll back together when one fails (the ones after it are then
  // skipped). False when it failed without losing the connection: nothing of it was committed,
  // and the caller runs the items one by one.
  bool RunGrouped(std::vector<Item>& batch) {
    bool sent = true;
    for (const Item& item : batch) sent = sent && Send(item);
    if (!sent || PQpipelineSync(conn_) != 1) {
      FailBroken(batch, 0);
      return true;
    }
    bool ok = true;
    std::vector<absl::StatusOr<PgRows>> results;
    results.reserve(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      Result r = NextResult();
      if (!r || Broken()) {
        FailBroken(batch, 0);
        return true;
      }
      results.push_back(ToRows(r.get()));
      ok = ok && results.back().ok();
    }
    Result sync = NextResult();
    if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC || Broken()) {
      FailBroken(batch, 0);
      return true;
    }
    if (!ok) return false;
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
    return true;
  }

  // RunEach: every item in its own implicit transaction (a Sync after each), still pipelined.
  void RunEach(std::vector<Item>& batch) {
    for (const Item& item : batch) {
      if (!Send(item) || PQpipelineSync(conn_) != 1) {
        FailBroken(batch, 0);
        return;
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      Result r = NextResult();
      Result sync = r ? NextResult() : nullptr;
      if (!r || !sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC || Broken()) {
        FailBroken(batch, i);
        return;
      }
      batch[i].done(ToRows(r.get()));
    }
  }

  PgPipeline* const pipeline_;
  const int index_;
  PGconn* conn_ = nullptr;
  bool warned_ = false;
  std::thread thread_;
};

PgPipeline::PgPipeline(Options options, std::vector<PgStatement> statements)
    : options_(std::move(options)), statements_(std::move(statements)) {}

absl::StatusOr<std::unique_ptr<PgPipeline>> PgPipeline::Start(Options options,
                                                              std::vector<PgStatement> statements) {
  if (options.url.empty()) return absl::InvalidArgumentError("database url is empty");
  QAI_ASSIGN_OR_RETURN(std::string connect, ConnectString(options.url));
  options.url = std::move(connect);
  if (options.connections < 1 || options.max_batch < 1 || options.max_queue < 1) {
    return absl::InvalidArgumentError("pipeline sizes must be positive");
  }
  if (options.spill_after < absl::ZeroDuration())
    return absl::InvalidArgumentError("spill_after is negative");
  std::unique_ptr<PgPipeline> pipeline(new PgPipeline(std::move(options), std::move(statements)));
  for (int i = 0; i < pipeline->options_.connections; ++i)
    pipeline->idle_.push_back(std::make_unique<Idle>());
  for (int i = 0; i < pipeline->options_.connections; ++i) {
    pipeline->lanes_.push_back(std::make_unique<Lane>(pipeline.get(), i));
  }
  // Every lane is idle before the first statement comes, so the first batch goes to the lowest
  // lane like every later one (not to whichever thread happened to start first).
  {
    absl::MutexLock lock(&pipeline->mu_);
    while (pipeline->lanes_started_ != pipeline->options_.connections)
      pipeline->lanes_started_cv_.Wait(&pipeline->mu_);
  }
  return pipeline;
}

PgPipeline::~PgPipeline() { Stop(); }

void PgPipeline::Execute(std::string_view statement, std::vector<PgValue> params, Done done) {
  int index = -1;
  for (size_t i = 0; i < statements_.size(); ++i) {
    if (statements_[i].name == statement) index = static_cast<int>(i);
  }
  if (index < 0) {
    done(absl::InternalError(absl::StrCat("unknown statement ", ToAbsl(statement))));
    return;
  }
  Idle* wake = nullptr;
  bool stopping = false, queued = false;
  {
    absl::MutexLock lock(&mu_);
    stopping = stopping_;
    if (!stopping_ && queue_.size() < options_.max_queue) {
      queued = true;
      queue_.push_back({index, std::move(params), std::move(done), Clock::now()});
      // An idle lane is woken to take the queue when it may start at once, or, while lanes
      // run, to watch the oldest statement's age when no lane does yet.
      Clock::time_point unused;
      if (MayStartLocked(queue_.back().queued, unused)) {
        wake = IdleLaneLocked(/*watching_too=*/true);
        if (wake != nullptr) {
          wake->granted = true;
          ++granted_;
          ++running_;
        }
      } else if (timed_waiters_ == 0 && running_ > granted_) {
        wake = IdleLaneLocked(/*watching_too=*/false);
        if (wake != nullptr) {  // it waits timed once awake: count it now
          wake->timed = true;
          ++timed_waiters_;
        }
      }
    }
  }
  if (wake != nullptr) wake->cv.Signal();  // lanes and their Idle outlive every caller
  if (queued) return;
  done(stopping ? absl::UnavailableError("shutting down")
                : absl::ResourceExhaustedError("database queue full, retry later"));
}

PgPipeline::Idle* PgPipeline::IdleLaneLocked(bool watching_too) {
  for (auto& idle : idle_) {
    if (idle->waiting && !idle->granted && (watching_too || !idle->timed)) return idle.get();
  }
  return nullptr;
}

bool PgPipeline::MayStartLocked(Clock::time_point now, Clock::time_point& wait_until) const {
  wait_until = Clock::time_point::max();
  if (queue_.empty()) return false;
  if (stopping_ || running_ == 0 || queue_.size() >= static_cast<size_t>(options_.max_batch))
    return true;
  wait_until = queue_.front().queued + absl::ToChronoNanoseconds(options_.spill_after);
  return now >= wait_until;
}

bool PgPipeline::NextBatch(int lane, std::vector<Item>& batch, bool ran_batch) {
  Idle& idle = *idle_[lane];
  absl::MutexLock lock(&mu_);
  if (ran_batch) {
    --running_;
  } else if (++lanes_started_ == options_.connections) {  // the lane's first call
    lanes_started_cv_.SignalAll();
  }
  Clock::time_point wait_until;
  idle.waiting = true;
  for (;;) {
    if (idle.granted) {  // the grant only kept others from waking a second lane: decide anew
      idle.granted = false;
      --granted_;
      --running_;
    }
    if (idle.timed) {
      idle.timed = false;
      --timed_waiters_;
    }
    if (MayStartLocked(Clock::now(), wait_until)) break;
    if (stopping_ && queue_.empty()) {
      idle.waiting = false;
      return false;
    }
    if (wait_until == Clock::time_point::max()) {
      idle.cv.Wait(&mu_);
    } else {
      idle.timed = true;
      ++timed_waiters_;
      idle.cv.WaitWithTimeout(&mu_, absl::FromChrono(wait_until - Clock::now()));
    }
  }
  idle.waiting = false;
  while (!queue_.empty() && batch.size() < static_cast<size_t>(options_.max_batch)) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  ++running_;
  return true;
}

void PgPipeline::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& idle : idle_) idle->cv.SignalAll();
  // Lanes finish what is queued before they return.
  for (auto& lane : lanes_) lane->Join();
}

}  // namespace qai::common
