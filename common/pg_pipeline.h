#pragma once
// PgPipeline: hot statements sent to PostgreSQL in batches over libpq's pipeline mode.
//
// SOCI sends one statement per round trip from a thread that waits for it. For the calls a
// service makes most (one self-contained statement per RPC) that wait costs more than the
// statement: two thread wake-ups and a network round trip per call. A pipeline keeps a few
// connections ("lanes"), each with its own thread; callers queue statements without blocking,
// and a lane sends every statement waiting at once, as one implicit transaction (one Sync: one
// commit, one WAL flush, for the whole batch), then hands each caller its rows. If anything in
// a batch fails, the batch is rolled back and its statements are run again one by one, each
// with its own Sync, so one bad statement never fails another caller's.
//
// Lanes are used sparingly: while one lane has a batch at the server, what arrives waits for
// it and goes as the next batch, so batches grow with the load and each one costs a single
// round trip, wake-up and commit. A further lane starts only when the queue holds a whole
// batch (max_batch) or its oldest statement has waited spill_after (a slow statement or a
// burst), so extra connections add parallelism only when waiting would cost more.
//
// Statements are prepared once per connection under a name. Every statement must be a
// complete unit of work on its own (data-modifying CTEs make that easy), since batching puts
// unrelated statements in one transaction.
//
//   auto pipeline = PgPipeline::Start({.url = url},
//       {{"get", "SELECT name FROM t WHERE id = CAST($1 AS uuid)"}});
//   (*pipeline)->Execute("get", {id}, [](absl::StatusOr<PgRows> rows) { ... });

#include <libpq-fe.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace qai::common {

// PgValue: one text-format value; nullopt is SQL NULL.
using PgValue = std::optional<std::string>;

// PgRows: what a statement returned.
struct PgRows {
  std::vector<std::vector<PgValue>> rows;
  int64_t affected = 0;  // rows inserted/updated/deleted (PQcmdTuples)
};

// PgStatement: a named statement, prepared on every connection.
struct PgStatement {
  std::string name;
  std::string sql;
};

// kSessionSetup: run on every long-lived service connection (pool and pipeline) before it
// prepares anything.
// - No statement or lock wait outlives a call by much: a stuck one fails (UNAVAILABLE, safe
//   to retry) instead of holding a handler, and shutdown's drain stays bounded.
// - A statement prepared while its table is nearly empty is planned as a sequential scan, and
//   PostgreSQL keeps that cached plan until the table is next analyzed, so a key lookup would
//   turn into a full scan as the table grows. Service statements are key and index lookups, so
//   sequential scans are priced out on these connections.
// - No JIT: a statement that must still scan (a system view such as pg_locks, a table of a
//   few rows) carries that price, which is far past jit_above_cost, and compiling it took
//   ~130 ms of a 1 ms statement. These statements are all short.
inline constexpr const char* kSessionSetup[] = {
    "SET statement_timeout = '15s'",
    "SET lock_timeout = '5s'",
    "SET enable_seqscan = off",
    "SET jit = off",
};

// ConnectionAlive: whether an idle libpq connection is usable. PQstatus alone says OK until
// the connection is next used; a server that restarted has already closed the socket (after a
// goodbye message), which a zero-timeout poll sees, so no statement is sent into a dead one.
bool ConnectionAlive(PGconn* conn);

// CodeForSqlState: the status code a PostgreSQL error means for a caller. Lost connections,
// a server shutting down, and statements or lock waits that timed out (all rolled back, safe to
// retry) are UNAVAILABLE; unique violations ALREADY_EXISTS; serialization failures and
// deadlocks ABORTED; anything else INTERNAL.
absl::StatusCode CodeForSqlState(std::string_view sqlstate);

// StatusFromSqlState: that code with a message fit for callers; INTERNAL errors are logged
// with the server's message, which callers never see (see MapDbError in db_pool.h).
absl::Status StatusFromSqlState(std::string_view sqlstate, std::string_view message);

class PgPipeline {
 public:
  struct Options {
    std::string url;  // libpq URI or keyword/value string
    int connections = 4;
    int max_batch = 64;
    size_t max_queue = 4096;
    // How long the oldest queued statement waits for a busy lane before an idle one starts.
    absl::Duration spill_after = absl::Milliseconds(20);
  };
  using Done = std::function<void(absl::StatusOr<PgRows>)>;

  // Start: validates the options and starts the connection threads. Connections open on
  // first need, so the database may still be down.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PgPipeline>> Start(
      Options options, std::vector<PgStatement> statements);
  // The destructor stops the threads; queued statements fail with UNAVAILABLE.
  ~PgPipeline();

  // Execute: queues a statement. `done` runs exactly once, on a pipeline thread (keep it
  // short). When the queue is full, done runs at once with RESOURCE_EXHAUSTED.
  void Execute(std::string_view statement, std::vector<PgValue> params, Done done);

  // Stop: refuses new work (UNAVAILABLE), lets the lanes finish what is queued, then joins the
  // threads. Idempotent.
  void Stop();

 private:
  using Clock = std::chrono::steady_clock;
  struct Item {
    int statement = 0;
    std::vector<PgValue> params;
    Done done;
    Clock::time_point queued;
  };
  class Lane;

  // Idle: how an idle lane waits. A lane woken to take the queue is `granted` and counts as
  // running until it does, so one arrival never wakes two lanes. The flags are guarded by the
  // pipeline's mu_ (which the analysis cannot name from a nested struct).
  struct Idle {
    absl::CondVar cv;
    bool waiting = false;
    bool granted = false;
    bool timed = false;  // watching the age of the queue's oldest statement
  };

  explicit PgPipeline(Options options, std::vector<PgStatement> statements);
  // NextBatch: called by lane `lane` when idle (after its batch, if it ran one); blocks until
  // it should take work (see the top of this file) and moves up to max_batch items into
  // batch. False when stopping and nothing is left.
  bool NextBatch(int lane, std::vector<Item>& batch, bool ran_batch) ABSL_LOCKS_EXCLUDED(mu_);
  // MayStartLocked: whether an idle lane should take the queue now, and if not, until when
  // to wait (Clock::time_point::max(): until woken).
  bool MayStartLocked(Clock::time_point now, Clock::time_point& wait_until) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // IdleLaneLocked: the idle lane with the lowest index that nobody has woken yet (nor asked
  // to watch, unless watching_too), or null. Preferring low indexes keeps the work on as few
  // connections as the load needs.
  Idle* IdleLaneLocked(bool watching_too) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const std::vector<PgStatement> statements_;
  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // lanes running a batch, or granted the queue
  int granted_ ABSL_GUARDED_BY(mu_) = 0;  // lanes granted the queue, not yet awake
  // Idle lanes watching the age of the queue's oldest statement.
  int timed_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  // Lanes that reached NextBatch (Start waits for all of them).
  int lanes_started_ ABSL_GUARDED_BY(mu_) = 0;
  absl::CondVar lanes_started_cv_;
  std::vector<std::unique_ptr<Idle>> idle_;  // by lane
  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace qai::common
