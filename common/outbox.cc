#include "common/outbox.h"

#include <algorithm>
#include <cmath>
#include <latch>
#include <map>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace qai::common {
namespace {

// A maintenance pass prunes for at most this long, so that deliveries do not wait behind the
// first prune of a table that was never pruned; what is left goes in the next passes.
constexpr absl::Duration kPruneBudget = absl::Seconds(1);

// Table names come from code, but they are spliced into SQL, so they are checked anyway.
bool IsQualifiedIdentifier(std::string_view name) {
  if (name.empty() || name.size() > 127) return false;
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

// IsPermanent: a refusal of the request itself, which retrying cannot fix. A receiver that is
// down, shutting down (CANCELLED), broken (INTERNAL, UNKNOWN) or misconfigured
// (UNAUTHENTICATED) is retried; so is an unknown topic (UNIMPLEMENTED), which may be one a
// newer replica wrote during a rolling update.
bool IsPermanent(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kNotFound ||
         code == absl::StatusCode::kPermissionDenied ||
         code == absl::StatusCode::kFailedPrecondition || code == absl::StatusCode::kOutOfRange;
}

// ClaimedRows: the rows a pass claimed, and keys[i], row i's ordering key.
struct ClaimedRows {
  std::vector<OutboxRow> rows;
  std::vector<std::string> keys;
};

// TextArrayLiteral: a PostgreSQL text[] literal of `values`, each quoted ("{\"a\",\"b\"}").
std::string TextArrayLiteral(const std::vector<std::string>& values) {
  std::string literal = "{";
  bool first = true;
  for (const std::string& value : values) {
    std::string quoted;
    for (char c : value) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    absl::StrAppend(&literal, first ? "" : ",", "\"", quoted, "\"");
    first = false;
  }
  return literal + "}";
}

// DueOrderingKeys: the ordering keys of the first batch_size due rows, as a text[] literal.
std::string DueOrderingKeys(DbConnection& conn, const std::string& table, int batch_size) {
  soci::rowset<std::string> keys =
      (conn.session().prepare << absl::StrCat(
           "SELECT DISTINCT ordering_key FROM (SELECT ordering_key FROM ", table,
           " WHERE deliver_time IS NULL AND next_attempt_time <= now() AND ordering_key <> ''"
           " ORDER BY seq LIMIT :n) due"),
       soci::use(batch_size));
  // Keys are our own ids (UUIDs), but they are quoted for the array literal anyway.
  return TextArrayLiteral(std::vector<std::string>(keys.begin(), keys.end()));
}

// LockKeys: those of `candidates` (a text[] literal) whose transaction-scoped advisory lock
// (per table and key) this transaction got, as a text[] literal.
std::string LockKeys(DbConnection& conn, const std::string& table, const std::string& candidates) {
  std::string locked = "{}";
  soci::indicator ind = soci::i_null;
  conn.session() << absl::StrCat(
      "SELECT CAST(array_agg(k) AS text) FROM unnest(CAST(:keys AS text[])) k"
      " WHERE pg_try_advisory_xact_lock(hashtextextended('",
      table, ":' || k, 0))"),
      soci::into(locked, ind), soci::use(candidates);
  if (ind != soci::i_ok) locked = "{}";
  return locked;
}

// ClaimDueRows: locks (FOR UPDATE SKIP LOCKED) and reads up to batch_size due rows.
// A row with an ordering key goes only after every earlier undelivered row of its key: it
// waits while one of them backs off, and otherwise comes in this batch behind them. One
// relay at a time works on a key: first a bounded set of keys with due rows is locked
// (transaction-scoped advisory locks, per table); then a second statement, whose snapshot
// is taken after the locks (so it sees what a relay that held a key before committed),
// reads the rows of the locked keys and of no key. With `only_key`, that key is the one
// candidate, and rows of no key are left to the relay.
ClaimedRows ClaimDueRows(DbConnection& conn, const std::string& table, int batch_size,
                         const std::optional<std::string>& only_key) {
  const std::string candidates =
      only_key ? TextArrayLiteral({*only_key}) : DueOrderingKeys(conn, table, batch_size);
  const std::string locked_keys = LockKeys(conn, table, candidates);
  const int keyless = only_key ? 0 : 1;
  soci::rowset<soci::row> rows =
      (conn.session().prepare << absl::StrCat(
           "SELECT o.id::text, o.topic, encode(o.payload, 'base64'), o.trace_request_id, "
           "o.attempts, o.ordering_key FROM ",
           table,
           " o WHERE o.deliver_time IS NULL AND o.next_attempt_time <= now()"
           " AND ((o.ordering_key = '' AND :keyless = 1) OR (o.ordering_key = ANY(CAST(:keys AS "
           "text[])) AND NOT EXISTS (SELECT 1 FROM ",
           table,
           " e WHERE e.ordering_key = o.ordering_key AND e.seq < o.seq AND e.deliver_time IS NULL"
           "   AND e.next_attempt_time > now() AND e.next_attempt_time <> 'infinity')))"
           " ORDER BY o.seq LIMIT :n FOR UPDATE OF o SKIP LOCKED"),
       soci::use(keyless), soci::use(locked_keys), soci::use(batch_size));
  ClaimedRows claimed;
  for (const soci::row& r : rows) {
    OutboxRow row;
    row.id = r.get<std::string>(0);
    row.topic = r.get<std::string>(1);
    std::string payload_b64 = r.get<std::string>(2);
    // PostgreSQL wraps base64 output at 76 characters; the unescape skips the newlines.
    absl::Base64Unescape(payload_b64, &row.payload);
    row.trace_request_id = r.get<std::string>(3);
    row.attempts = r.get<int>(4);
    claimed.keys.push_back(r.get<std::string>(5));
    claimed.rows.push_back(std::move(row));
  }
  return claimed;
}

// MarkDelivered: the rows `ids` (our own UUIDs from the rows just read) delivered, in one
// statement with the ids bound as one array parameter.
void MarkDelivered(DbConnection& conn, const std::string& table,
                   const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  const std::string id_array = absl::StrCat("{", absl::StrJoin(ids, ","), "}");
  conn.session() << absl::StrCat(
      "UPDATE ", table,
      " SET deliver_time = now(), attempts = attempts + 1, last_error = ''"
      " WHERE id = ANY(CAST(:ids AS uuid[]))"),
      soci::use(id_array);
}

}  // namespace

// The columns every outbox row is written with (and `author` where there is one).
constexpr char kOutboxColumns[] = "id, topic, payload, trace_request_id, ordering_key";

absl::StatusOr<std::string> EnqueueOutbox(DbConnection& conn, std::string_view table,
                                          const OutboxMessage& message) {
  if (!IsQualifiedIdentifier(table)) return absl::InternalError("bad outbox table name");
  std::string id = NewUuid();
  std::string payload = absl::Base64Escape(message.payload);
  std::string trace = CurrentRequestId();
  if (message.author.empty()) {
    conn.session() << absl::StrCat(
        "INSERT INTO ", ToAbsl(table), " (", kOutboxColumns, ")",
        " VALUES (CAST(:id AS uuid), :topic, decode(:payload, 'base64'), :trace, :okey)"),
        soci::use(id), soci::use(message.topic), soci::use(payload), soci::use(trace),
        soci::use(message.ordering_key);
  } else {
    conn.session() << absl::StrCat(
        "INSERT INTO ", ToAbsl(table), " (", kOutboxColumns, ", author)",
        " VALUES (CAST(:id AS uuid), :topic, decode(:payload, 'base64'), :trace, :okey, :author)"),
        soci::use(id), soci::use(message.topic), soci::use(payload), soci::use(trace),
        soci::use(message.ordering_key), soci::use(message.author);
  }
  return id;
}

std::string OutboxInsertSelect(std::string_view table, int first_param, std::string_view from) {
  const auto param = [first_param](int i) { return absl::StrCat("$", first_param + i); };
  return absl::StrCat("INSERT INTO ", ToAbsl(table), " (", kOutboxColumns, ") SELECT CAST(",
                      param(0), " AS uuid), CAST(", param(1), " AS text), decode(CAST(", param(2),
                      " AS text), 'base64'), CAST(", param(3), " AS text), CAST(", param(4),
                      " AS text) ", ToAbsl(from));
}

std::vector<std::optional<std::string>> OutboxValues(const OutboxMessage& message,
                                                     const std::string& trace_request_id) {
  return {NewUuid(), message.topic, absl::Base64Escape(message.payload), trace_request_id,
          message.ordering_key};
}

OutboxRelay::OutboxRelay(DbPool* db, Options options, std::map<std::string, Deliverer> deliverers,
                         std::map<std::string, BatchDeliverer> batch_deliverers)
    : db_(db),
      options_(std::move(options)),
      deliverers_(std::move(deliverers)),
      batch_deliverers_(std::move(batch_deliverers)),
      senders_("outbox", options_.parallel_deliveries, static_cast<size_t>(options_.batch_size)) {
  if (options_.metrics != nullptr) instruments_.emplace(*options_.metrics, options_.table);
}

OutboxRelay::Instruments::Instruments(Metrics& metrics, const std::string& table)
    : delivered(prometheus::BuildCounter()
                    .Name("qai_outbox_delivered_total")
                    .Help("Outbox rows delivered (and marked so) by this replica.")
                    .Register(metrics.registry())
                    .Add({{"table", table}})),
      failures(
          prometheus::BuildCounter()
              .Name("qai_outbox_delivery_failures_total")
              .Help("Failed outbox delivery attempts by this replica (retried later, or parked).")
              .Register(metrics.registry())
              .Add({{"table", table}})),
      pending(prometheus::BuildGauge()
                  .Name("qai_outbox_pending")
                  .Help("Undelivered, unparked outbox rows at the last maintenance pass.")
                  .Register(metrics.registry())
                  .Add({{"table", table}})),
      parked(
          prometheus::BuildGauge()
              .Name("qai_outbox_parked")
              .Help("Outbox rows parked after a permanent failure, at the last maintenance pass.")
              .Register(metrics.registry())
              .Add({{"table", table}})),
      oldest_pending_age(
          prometheus::BuildGauge()
              .Name("qai_outbox_oldest_pending_age_seconds")
              .Help("Age of the oldest pending outbox row at the last maintenance pass (0: none).")
              .Register(metrics.registry())
              .Add({{"table", table}})) {}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void OutboxRelay::Wake() {
  {
    absl::MutexLock lock(&mu_);
    woken_ = true;
  }
  cv_.SignalAll();
}

void OutboxRelay::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void OutboxRelay::Loop() {
  absl::Time next_maintenance = absl::InfinitePast();
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      woken_ = false;
    }
    absl::StatusOr<int> delivered = RelayOnce();
    if (!delivered.ok()) {
      Log(LogLevel::kWarn, "outbox relay pass failed",
          {{"table", options_.table}, {"error", std::string(delivered.status().message())}});
    }
    if (absl::Now() >= next_maintenance) {
      absl::Status maintained = MaintainOnce();
      if (!maintained.ok()) {
        Log(LogLevel::kWarn, "outbox maintenance failed",
            {{"table", options_.table}, {"error", std::string(maintained.message())}});
      }
      next_maintenance = absl::Now() + options_.maintenance_interval;
    }
    // After deliveries more may be due: the rest of a full batch, or the next row of an
    // ordering key (a project's second prompt waits for its first). Look again at once; rows
    // written meanwhile make up the next batch.
    if (delivered.ok() && *delivered > 0) continue;
    absl::MutexLock lock(&mu_);
    const absl::Time linger_end = absl::Now() + options_.linger;
    while (!stop_ && !cv_.WaitWithDeadline(&mu_, linger_end)) {
    }
    if (stop_) return;
    const absl::Duration until_maintenance =
        std::max(next_maintenance - absl::Now(), absl::ZeroDuration());
    const absl::Time poll_end = absl::Now() + std::min(options_.poll_interval, until_maintenance);
    while (!stop_ && !woken_ && !cv_.WaitWithDeadline(&mu_, poll_end)) {
    }
  }
}

absl::StatusOr<int> OutboxRelay::RelayOnce() { return Pass(std::nullopt); }

absl::StatusOr<int> OutboxRelay::DeliverNow(const std::string& ordering_key) {
  return Pass(ordering_key);
}

absl::StatusOr<int> OutboxRelay::Pass(const std::optional<std::string>& only_key) {
  if (!IsQualifiedIdentifier(options_.table)) return absl::InternalError("bad outbox table name");
  PassCounts counts;
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    counts = PassCounts();
    // Losing this transaction's commit in a crash only means its rows are delivered again,
    // which receivers absorb (they are idempotent on the row id), so it need not wait for its
    // WAL flush, and the service's own commits don't queue behind it.
    conn.session() << "SET LOCAL synchronous_commit = off";
    // Rows stay locked while they are delivered: a relay that dies mid-delivery releases them
    // with its transaction, and they are delivered again (at least once).
    const ClaimedRows claimed = ClaimDueRows(conn, options_.table, options_.batch_size, only_key);
    const absl::Status not_attempted =
        absl::CancelledError("not attempted: an earlier row of its key failed");
    const std::vector<absl::Status> results = Deliver(claimed.rows, claimed.keys, not_attempted);
    QAI_ASSIGN_OR_RETURN(counts, RecordOutcomes(conn, claimed.rows, results, not_attempted));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (instruments_) {
    instruments_->delivered.Increment(counts.delivered);
    instruments_->failures.Increment(counts.failed);
  }
  return counts.delivered;
}

absl::StatusOr<OutboxRelay::PassCounts> OutboxRelay::RecordOutcomes(
    DbConnection& conn, const std::vector<OutboxRow>& batch,
    const std::vector<absl::Status>& results, const absl::Status& not_attempted) {
  PassCounts counts;
  std::vector<std::string> delivered_ids;
  for (size_t i = 0; i < batch.size(); ++i) {
    const OutboxRow& row = batch[i];
    if (results[i] == not_attempted) continue;  // still due: it goes after its key's failed row
    if (results[i].ok()) {
      delivered_ids.push_back(row.id);
      ++counts.delivered;
      continue;
    }
    ++counts.failed;
    if (IsPermanent(results[i].code())) {
      QAI_RETURN_IF_ERROR(Park(conn, row, results[i]));
    } else {
      ScheduleRetry(conn, row, results[i]);
    }
  }
  MarkDelivered(conn, options_.table, delivered_ids);
  return counts;
}

absl::Status OutboxRelay::Park(DbConnection& conn, const OutboxRow& row, const absl::Status& why) {
  std::string error(why.message());
  conn.session() << absl::StrCat(
      "UPDATE ", options_.table,
      " SET attempts = attempts + 1, last_error = :err, next_attempt_time = 'infinity'"
      " WHERE id = CAST(:id AS uuid)"),
      soci::use(error), soci::use(row.id);
  if (auto handler = options_.on_parked.find(row.topic); handler != options_.on_parked.end()) {
    QAI_RETURN_IF_ERROR(handler->second(conn, row, why));
  }
  Log(LogLevel::kError, "outbox delivery failed for good; row parked",
      {{"table", options_.table},
       {"topic", row.topic},
       {"outbox_id", row.id},
       {"code", absl::StatusCodeToString(why.code())},
       {"error", error}});
  return absl::OkStatus();
}

void OutboxRelay::ScheduleRetry(DbConnection& conn, const OutboxRow& row, const absl::Status& why) {
  std::string error(why.message());
  const absl::Duration delay =
      BackoffDelay(row.attempts, options_.base_backoff, options_.max_backoff, rng_);
  const int64_t delay_us = absl::ToInt64Microseconds(delay);
  conn.session() << absl::StrCat("UPDATE ", options_.table,
                                 " SET attempts = attempts + 1, last_error = :err,"
                                 " next_attempt_time = now() + :us * interval '1 microsecond'"
                                 " WHERE id = CAST(:id AS uuid)"),
      soci::use(error), soci::use(delay_us), soci::use(row.id);
  Log(LogLevel::kWarn, "outbox delivery failed; will retry",
      {{"table", options_.table},
       {"topic", row.topic},
       {"outbox_id", row.id},
       {"attempt", row.attempts + 1},
       {"retry_in_ms", absl::ToInt64Milliseconds(delay)},
       {"error", error}});
}

std::vector<absl::Status> OutboxRelay::Deliver(const std::vector<OutboxRow>& batch,
                                               const std::vector<std::string>& keys,
                                               const absl::Status& not_attempted) {
  // Deliveries go out side by side, except that the rows of one ordering key go one after
  // another, in order, and stop at the first failure (the rest wait for it). One slow receiver
  // costs the pass one call time, not one call time per row.
  std::vector<std::vector<size_t>> groups;
  {
    std::map<std::string, size_t> group_of_key;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (keys[i].empty()) {
        groups.push_back({i});
        continue;
      }
      auto [it, fresh] = group_of_key.try_emplace(keys[i], groups.size());
      if (fresh) groups.emplace_back();
      groups[it->second].push_back(i);
    }
  }
  // Groups of one topic that has a batch deliverer go together, one call per topic.
  std::map<std::string, std::vector<size_t>> together;
  std::vector<const std::vector<size_t>*> apart;
  for (const std::vector<size_t>& group : groups) {
    const std::string& topic = batch[group[0]].topic;
    const bool one_topic =
        std::all_of(group.begin(), group.end(), [&](size_t i) { return batch[i].topic == topic; });
    if (one_topic && batch_deliverers_.contains(topic)) {
      std::vector<size_t>& rows = together[topic];
      rows.insert(rows.end(), group.begin(), group.end());
    } else {
      apart.push_back(&group);
    }
  }
  std::vector<absl::Status> results(batch.size(), not_attempted);
  std::latch finished(static_cast<std::ptrdiff_t>(apart.size() + together.size()));
  auto submit = [&](std::function<void()> task) {
    auto run = [&finished, task = std::move(task)] {
      task();
      finished.count_down();
    };
    if (!senders_.TrySubmit(run)) run();
  };
  for (const std::vector<size_t>* group : apart) {
    submit([&, group] {
      for (size_t i : *group) {
        results[i] = DeliverOne(batch[i]);
        if (!results[i].ok()) break;
      }
    });
  }
  for (const auto& [topic, indices] : together) {
    submit([&, topic = topic, indices = indices] {
      DeliverTogether(topic, batch, keys, indices, results);
    });
  }
  finished.wait();
  return results;
}

void OutboxRelay::DeliverTogether(const std::string& topic, const std::vector<OutboxRow>& batch,
                                  const std::vector<std::string>& keys,
                                  const std::vector<size_t>& indices,
                                  std::vector<absl::Status>& results) {
  std::vector<OutboxRow> rows;
  for (size_t i : indices) rows.push_back(batch[i]);
  absl::Status together;
  {
    RequestScope scope(rows.front().trace_request_id);
    together = batch_deliverers_.at(topic)(rows);
  }
  const bool refused =
      IsPermanent(together.code()) || together.code() == absl::StatusCode::kUnimplemented;
  if (!refused || !deliverers_.contains(topic)) {
    for (size_t i : indices) results[i] = together;
    return;
  }
  // One by one, each row with its own outcome; a key's rows stop at its first failure.
  std::set<std::string> failed_keys;
  for (size_t i : indices) {
    if (!keys[i].empty() && failed_keys.contains(keys[i])) continue;
    results[i] = DeliverOne(batch[i]);
    if (!results[i].ok() && !keys[i].empty()) failed_keys.insert(keys[i]);
  }
}

absl::Status OutboxRelay::DeliverOne(const OutboxRow& row) const {
  RequestScope scope(row.trace_request_id);
  auto it = deliverers_.find(row.topic);
  if (it == deliverers_.end())
    return absl::UnimplementedError(absl::StrCat("no deliverer for topic ", row.topic));
  return it->second(row);
}

absl::StatusOr<int64_t> OutboxRelay::PruneOnce() {
  if (!IsQualifiedIdentifier(options_.table)) return absl::InternalError("bad outbox table name");
  if (options_.prune_batch < 1) return absl::InternalError("outbox prune_batch must be positive");
  const int64_t after_us = absl::ToInt64Microseconds(options_.prune_after);
  int64_t deleted = 0;
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    // A lost commit only means the rows are deleted by the next pass.
    conn.session() << "SET LOCAL synchronous_commit = off";
    // `deliver_time < ...` also excludes undelivered and parked rows (deliver_time NULL), and
    // lets the subquery read the delivered rows' index (0002). SKIP LOCKED: relays of other
    // replicas pruning at the same moment take other rows instead of waiting for these.
    soci::statement statement =
        (conn.session().prepare << absl::StrCat(
             "DELETE FROM ", options_.table, " WHERE id IN (SELECT id FROM ", options_.table,
             " WHERE deliver_time < now() - :us * interval '1 microsecond'"
             " LIMIT :n FOR UPDATE SKIP LOCKED)"),
         soci::use(after_us), soci::use(options_.prune_batch));
    statement.execute(true);
    deleted = statement.get_affected_rows();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return deleted;
}

absl::StatusOr<int64_t> OutboxRelay::PruneBacklog() {
  const absl::Time until = absl::Now() + kPruneBudget;
  int64_t total = 0;
  for (;;) {
    QAI_ASSIGN_OR_RETURN(int64_t deleted, PruneOnce());
    total += deleted;
    if (deleted < options_.prune_batch || absl::Now() >= until) return total;
    absl::MutexLock lock(&mu_);
    if (stop_) return total;
  }
}

absl::StatusOr<OutboxStats> OutboxRelay::Stats() {
  if (!IsQualifiedIdentifier(options_.table)) return absl::InternalError("bad outbox table name");
  OutboxStats stats;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    // `deliver_time IS NULL` is the predicate of the outbox_pending index: the query reads the
    // undelivered rows only, however many delivered ones wait to be pruned.
    double oldest_s = 0;
    conn.session() << absl::StrCat(
        "SELECT count(*) FILTER (WHERE next_attempt_time <> 'infinity'),"
        " count(*) FILTER (WHERE next_attempt_time = 'infinity'),"
        " COALESCE(EXTRACT(EPOCH FROM GREATEST(now() - min(create_time)"
        "   FILTER (WHERE next_attempt_time <> 'infinity'), interval '0')), 0)::float8"
        " FROM ",
        options_.table, " WHERE deliver_time IS NULL"),
        soci::into(stats.pending), soci::into(stats.parked), soci::into(oldest_s);
    stats.oldest_pending_age = absl::Seconds(oldest_s);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return stats;
}

absl::Status OutboxRelay::MaintainOnce() {
  absl::Status first_error;
  absl::StatusOr<int64_t> pruned = PruneBacklog();
  if (!pruned.ok()) {
    first_error = pruned.status();
  } else if (*pruned > 0) {
    Log(LogLevel::kDebug, "outbox pruned", {{"table", options_.table}, {"rows", *pruned}});
  }
  absl::StatusOr<OutboxStats> stats = Stats();
  {
    absl::MutexLock lock(&stats_mu_);
    last_stats_ = stats.ok() ? std::optional<OutboxStats>(*stats) : std::nullopt;
  }
  if (!stats.ok()) return first_error.ok() ? stats.status() : first_error;
  if (instruments_) {
    instruments_->pending.Set(static_cast<double>(stats->pending));
    instruments_->parked.Set(static_cast<double>(stats->parked));
    instruments_->oldest_pending_age.Set(absl::ToDoubleSeconds(stats->oldest_pending_age));
  }
  LogBacklog(*stats);
  return first_error;
}

void OutboxRelay::LogBacklog(const OutboxStats& stats) const {
  if (stats.pending == 0 && stats.parked == 0) return;
  const bool stale = stats.oldest_pending_age > options_.stale_after;
  Log(stale || stats.parked > 0 ? LogLevel::kWarn : LogLevel::kInfo, "outbox backlog",
      {{"table", options_.table},
       {"pending", stats.pending},
       {"parked", stats.parked},
       {"oldest_pending_age_s",
        std::round(absl::ToDoubleSeconds(stats.oldest_pending_age) * 1000) / 1000}});
}

bool OutboxRelay::Healthy() const {
  absl::MutexLock lock(&stats_mu_);
  return !last_stats_.has_value() || last_stats_->oldest_pending_age <= options_.stale_after;
}

OutboxRelay::Options OutboxOptionsFrom(const Config& config, std::string table, Metrics* metrics) {
  OutboxRelay::Options options;
  options.table = std::move(table);
  options.metrics = metrics;
  options.max_backoff = config.GetDuration("outbox-max-backoff");
  options.prune_after = config.GetDuration("outbox-prune-after");
  options.stale_after = config.GetDuration("outbox-stale-after");
  return options;
}

}  // namespace qai::common
