#pragma once
// Transactional outbox: "tell another service" written in the same transaction as the change
// that makes it true, and delivered later by a relay, at least once.
//
// A service's handler writes its change and calls EnqueueOutbox on the same connection inside
// DbPool::Transaction; either both commit or neither does. OutboxRelay then claims due rows
// (FOR UPDATE SKIP LOCKED, so relays on many replicas never hand out the same row at once),
// calls the deliverer registered for the row's topic with the row id as the request id, and
// marks the row delivered, or schedules another attempt with exponential backoff and jitter.
// The receiver is idempotent on that request id, which turns at-least-once into exactly once.
// A failure that retrying cannot fix (the receiver says the request is invalid, not found,
// not allowed...) parks the row instead: next_attempt_time 'infinity', an error logged, and the
// reason kept in last_error, so an operator can look and requeue it.
//
// Between passes, at most once per maintenance_interval, the relay prunes delivered rows older
// than prune_after and reads the backlog (Stats): a line "outbox backlog" is logged while rows
// wait, and Healthy() turns false while one has waited longer than stale_after.
//
//   OutboxRelay relay(db, OutboxOptionsFrom(config, "projects.outbox"), deliverers);
//   relay.Start();
//   ... handlers call relay.Wake() after committing a row ...
//   relay.Stop();
//
// The outbox table (one per service schema) has the shape of db/migrations/projects/0001 and
// the index of 0002 (delivered rows by deliver_time, for pruning).

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/backoff.h"
#include "common/config.h"
#include "common/db_pool.h"
#include "common/executor.h"
#include "common/metrics.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"

namespace qai::common {

// OutboxMessage: what to deliver. payload is opaque bytes (a serialized request proto).
struct OutboxMessage {
  std::string topic;
  std::string payload;
  // Messages with the same key are delivered in the order they were enqueued, each only after
  // the one before it was delivered (or parked). Empty: no ordering.
  std::string ordering_key;
  // The principal the message acts for, kept in the table's `author` column so a service can
  // count a principal's undelivered rows (only tables with that column, such as
  // messages.outbox, take one). Empty: not recorded.
  std::string author;
};

// OutboxRow: a claimed message. `id` is the request id the receiver deduplicates on.
struct OutboxRow {
  std::string id;
  std::string topic;
  std::string payload;
  // The x-request-id of the call that enqueued the row, so the hop shows in its logs.
  std::string trace_request_id;
  int attempts = 0;
};

// EnqueueOutbox: inserts a message into `table` (e.g. "projects.outbox", a constant of the
// calling service, never caller input) on conn, inside the caller's transaction. Returns its id.
[[nodiscard]] absl::StatusOr<std::string> EnqueueOutbox(DbConnection& conn, std::string_view table,
                                                        const OutboxMessage& message);

// The same row for a statement of common/pg_pipeline.h that writes it with other rows in one
// round trip (e.g. a CTE that inserts a row only with the change it announces):
// OutboxInsertSelect is "INSERT INTO <table> (...) SELECT $<first>, ..., $<first + 4> <from>",
// whose parameters are OutboxValues(message, trace_request_id), in that order.
std::string OutboxInsertSelect(std::string_view table, int first_param, std::string_view from);
std::vector<std::optional<std::string>> OutboxValues(const OutboxMessage& message,
                                                     const std::string& trace_request_id);

// OutboxStats: the backlog of an outbox table. Pending rows are undelivered and not parked
// (due now or waiting for a retry); oldest_pending_age is the age of the oldest of them by
// create_time, zero when there is none.
struct OutboxStats {
  int64_t pending = 0;
  int64_t parked = 0;
  absl::Duration oldest_pending_age = absl::ZeroDuration();
};

class OutboxRelay {
 public:
  // A deliverer sends one row; OK means the receiver has it (then it is never sent again).
  using Deliverer = std::function<absl::Status(const OutboxRow& row)>;
  // A batch deliverer sends several rows of its topic in one call, all or none. The rows of a
  // pass whose ordering keys hold only that topic go together, so its receiver must not depend
  // on their order within a call (e.g. newest-wins news). When the call is refused (a
  // receiver without the batch call, or one row it will not take), the rows go one by one
  // through the topic's deliverer, each with its own outcome.
  using BatchDeliverer = std::function<absl::Status(const std::vector<OutboxRow>& rows)>;
  // A parked handler tells whoever is waiting for a row that it will never be delivered (e.g.
  // the author of a prompt that cannot run), on `conn` in the transaction that parks the row:
  // both happen or neither. `why` is the receiver's refusal.
  using ParkedHandler = std::function<absl::Status(DbConnection& conn, const OutboxRow& row,
                                                   const absl::Status& why)>;

  struct Options {
    std::string table;  // e.g. "projects.outbox"
    int batch_size = 64;
    // Deliveries of one batch in flight at once.
    int parallel_deliveries = 8;
    absl::Duration poll_interval = absl::Milliseconds(500);
    // After a pass that delivered nothing, wait at least this long before the next one, even
    // when woken: under a stream of writes, rows then go out in batches instead of one
    // transaction per row. (After deliveries the relay looks again at once.)
    absl::Duration linger = absl::Milliseconds(10);
    absl::Duration base_backoff = absl::Milliseconds(200);
    absl::Duration max_backoff = absl::Seconds(60);
    // How often the relay loop prunes and reads the backlog.
    absl::Duration maintenance_interval = absl::Seconds(30);
    // Delivered rows are deleted once delivered this long ago, prune_batch rows per statement.
    absl::Duration prune_after = absl::Hours(24);
    int prune_batch = 1000;
    // A pending row older than this makes the relay unhealthy and its backlog line a warning.
    absl::Duration stale_after = absl::Minutes(5);
    // Where the relay counts its deliveries and failures, and shows the backlog of its last
    // maintenance pass (all labelled table=<table>); nullptr: nowhere. Must outlive the relay.
    Metrics* metrics = nullptr;
    // Per topic: what to do, besides parking it, when a row is refused for good.
    std::map<std::string, ParkedHandler> on_parked;
  };

  OutboxRelay(DbPool* db, Options options, std::map<std::string, Deliverer> deliverers,
              std::map<std::string, BatchDeliverer> batch_deliverers = {});
  ~OutboxRelay();

  // Start: a background thread relays until Stop(). Wake() makes it look at once (after this
  // process enqueued a row); otherwise it polls every poll_interval.
  void Start();
  void Wake();
  void Stop();

  // RelayOnce: one pass over the due rows; returns how many were delivered.
  [[nodiscard]] absl::StatusOr<int> RelayOnce();
  // DeliverNow: one pass over the due rows of one ordering key only, on the calling thread,
  // exactly as a relay pass delivers them (in order, the same outcomes), for a writer that
  // waits for its row's delivery and need not wait for the relay's next pass. Nothing when
  // another pass holds the key right now: that one delivers them. Returns how many were
  // delivered.
  [[nodiscard]] absl::StatusOr<int> DeliverNow(const std::string& ordering_key);

  // PruneOnce: deletes at most prune_batch delivered rows whose deliver_time is older than
  // prune_after, and returns how many it deleted. Undelivered and parked rows are never
  // touched. A result of prune_batch means more may be left.
  [[nodiscard]] absl::StatusOr<int64_t> PruneOnce();

  // Stats: the backlog now, in one query over the undelivered rows' index.
  [[nodiscard]] absl::StatusOr<OutboxStats> Stats();

  // MaintainOnce: what the relay loop does every maintenance_interval: prunes until nothing
  // old is left (or a time budget is spent, so that deliveries do not wait long behind a big
  // first prune), reads Stats, logs the backlog and keeps the stats for Healthy(). Returns the
  // first error; stats that could not be read are forgotten.
  [[nodiscard]] absl::Status MaintainOnce();

  // Healthy: false while the last stats read show a pending row older than stale_after. True
  // before the first maintenance pass and when the stats could not be read: a database outage
  // is reported by the database's own health, not as a backlog.
  bool Healthy() const;

 private:
  // PassCounts: what one pass did: rows delivered, and deliveries that failed.
  struct PassCounts {
    int delivered = 0;
    int failed = 0;
  };

  void Loop();
  // Pass: RelayOnce, or with `only_key` DeliverNow.
  absl::StatusOr<int> Pass(const std::optional<std::string>& only_key);
  // RecordOutcomes: writes each claimed row's outcome (results[i] is row i's) on conn: marks
  // the delivered rows, parks those refused for good, schedules a retry for the others, and
  // leaves the rows that were not_attempted due.
  absl::StatusOr<PassCounts> RecordOutcomes(DbConnection& conn, const std::vector<OutboxRow>& batch,
                                            const std::vector<absl::Status>& results,
                                            const absl::Status& not_attempted);
  // Park: the row is never attempted again (`why` kept in last_error), its topic's on_parked
  // handler is told, and an error is logged.
  absl::Status Park(DbConnection& conn, const OutboxRow& row, const absl::Status& why);
  // ScheduleRetry: the row is due again after its backoff delay; a warning is logged.
  void ScheduleRetry(DbConnection& conn, const OutboxRow& row, const absl::Status& why);
  // Deliver: sends a claimed pass's rows (keys[i] is row i's ordering key) side by side, the
  // rows of one key in order (stopping at its first failure); each row's outcome, or
  // not_attempted when an earlier row of its key failed.
  std::vector<absl::Status> Deliver(const std::vector<OutboxRow>& batch,
                                    const std::vector<std::string>& keys,
                                    const absl::Status& not_attempted);
  // DeliverTogether: rows `indices` of `batch`, all of `topic`, in one batch call, or one by
  // one when it is refused; their outcomes go to `results`.
  void DeliverTogether(const std::string& topic, const std::vector<OutboxRow>& batch,
                       const std::vector<std::string>& keys, const std::vector<size_t>& indices,
                       std::vector<absl::Status>& results);
  // DeliverOne: one row through its topic's deliverer.
  absl::Status DeliverOne(const OutboxRow& row) const;
  // PruneBacklog: PruneOnce until a short batch, Stop(), or the time budget; rows deleted.
  absl::StatusOr<int64_t> PruneBacklog();
  void LogBacklog(const OutboxStats& stats) const;

  // Instruments: the relay's metrics (Options::metrics), all labelled with its table.
  struct Instruments {
    explicit Instruments(Metrics& metrics, const std::string& table);
    prometheus::Counter& delivered;
    prometheus::Counter& failures;
    prometheus::Gauge& pending;
    prometheus::Gauge& parked;
    prometheus::Gauge& oldest_pending_age;
  };

  DbPool* const db_;
  const Options options_;
  const std::map<std::string, Deliverer> deliverers_;
  const std::map<std::string, BatchDeliverer> batch_deliverers_;
  absl::BitGen rng_;
  Executor senders_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  mutable absl::Mutex stats_mu_;
  std::optional<OutboxStats> last_stats_ ABSL_GUARDED_BY(stats_mu_);
  std::optional<Instruments> instruments_;
};

// OutboxOptionsFrom: relay options for `table` from the service configuration
// (ServiceOptions' outbox-max-backoff, outbox-prune-after, outbox-stale-after) with its
// metrics in `metrics`; the rest keep their defaults.
OutboxRelay::Options OutboxOptionsFrom(const Config& config, std::string table,
                                       Metrics* metrics = nullptr);

}  // namespace qai::common
