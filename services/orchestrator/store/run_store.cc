#include "services/orchestrator/store/run_store.h"

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/outbox.h"
#include "common/pg_arrays.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "services/orchestrator/store/version_store.h"

namespace qai::orchestrator {
namespace {

using common::DbConnection;
using soci::into;
using soci::use;

#define US(col) "(EXTRACT(EPOCH FROM " col ") * 1000000)::bigint"
// A µs count as a timestamptz, exactly.
#define TS(param) "(timestamptz 'epoch' + " param " * interval '1 microsecond')"

// The columns of a RunRecord, in ReadRun's order.
constexpr char kRunColumns[] =
    "id::text, project_id::text, COALESCE(message_id::text, ''), prompt, state::int, attempt, iteration, max_iterations, "
    US("create_time") ", COALESCE(" US("start_time") ", 0), COALESCE(" US("end_time") ", 0), error, "
    "COALESCE(result_message_id::text, ''), sandbox_url, last_sequence, cancel_requested::int, prompt_tokens, "
    "completion_tokens, model, timeout_us, steps, author, draft_url,"
    " COALESCE((SELECT v.number FROM orchestrator.versions v WHERE v.run_id = runs.id), 0),"
    " COALESCE(restore_version, 0), COALESCE(draft_snapshot_id::text, ''),"
    " COALESCE(restore_project_id::text, '')";

RunRecord ReadRun(const soci::row& r) {
  RunRecord run;
  run.id = r.get<std::string>(0);
  run.project_id = r.get<std::string>(1);
  run.message_id = r.get<std::string>(2);
  run.prompt = r.get<std::string>(3);
  run.state = r.get<int>(4);
  run.attempt = r.get<int>(5);
  run.iteration = r.get<int>(6);
  run.max_iterations = r.get<int>(7);
  run.create_time = absl::FromUnixMicros(r.get<long long>(8));
  // 0 stands for "not yet": no run starts or ends at the epoch.
  if (long long us = r.get<long long>(9); us != 0) run.start_time = absl::FromUnixMicros(us);
  if (long long us = r.get<long long>(10); us != 0) run.end_time = absl::FromUnixMicros(us);
  run.error = r.get<std::string>(11);
  run.result_message_id = r.get<std::string>(12);
  run.sandbox_url = r.get<std::string>(13);
  run.last_sequence = r.get<long long>(14);
  run.cancel_requested = r.get<int>(15) != 0;
  run.prompt_tokens = r.get<long long>(16);
  run.completion_tokens = r.get<long long>(17);
  run.model = r.get<std::string>(18);
  run.timeout = absl::Microseconds(r.get<long long>(19));
  run.steps = r.get<int>(20);
  run.author = r.get<std::string>(21);
  run.draft_url = r.get<std::string>(22);
  run.version = r.get<int>(23);
  run.restore_version = r.get<int>(24);
  run.draft_snapshot_id = r.get<std::string>(25);
  run.restore_project_id = r.get<std::string>(26);
  return run;
}

std::optional<RunRecord> SelectRun(DbConnection& conn, const char* where,
                                   const std::string& value) {
  soci::rowset<soci::row> rows = (conn.session().prepare << absl::StrCat(
                                      "SELECT ", kRunColumns, " FROM orchestrator.runs ", where),
                                  use(value));
  for (const soci::row& r : rows) return ReadRun(r);
  return std::nullopt;
}

// ExistingRun: the run a Start repeats: the one of its message, or of its request key.
std::optional<RunRecord> ExistingRun(DbConnection& conn, const StartParams& p) {
  if (!p.message_id.empty())
    return SelectRun(conn, "WHERE message_id = CAST(:m AS uuid)", p.message_id);
  if (!p.request_key.empty()) return SelectRun(conn, "WHERE request_key = :k", p.request_key);
  return std::nullopt;
}

// CountActiveRuns: the runs queued or running of the project and of the author (none when
// empty), each counted through its partial index of active runs (runs_project_active,
// runs_author_active).
orchestrator::ActiveRuns CountActiveRuns(DbConnection& conn, const std::string& project_id,
                                         const std::string& author) {
  orchestrator::ActiveRuns active;
  long long n = 0;
  conn.session() << "SELECT count(*) FROM orchestrator.runs WHERE project_id = CAST(:p AS uuid) "
                    "AND state IN (1, 2)",
      into(n), use(project_id);
  active.project = n;
  if (!author.empty()) {
    conn.session()
        << "SELECT count(*) FROM orchestrator.runs WHERE author = :a AND state IN (1, 2)",
        into(n), use(author);
    active.principal = n;
  }
  return active;
}

absl::Status LeaseLost(const Lease& lease) {
  // Not ABORTED: that is what a deadlock or serialization failure maps to, which is retried;
  // a lost lease must stop the worker instead.
  return absl::FailedPreconditionError(absl::StrCat("lease on run ", lease.run_id, " lost"));
}

// AppendEvents: numbers `events` after the run's last sequence and stores them, under the run
// row's lock; with a lease, only while that lease holds (else LeaseLost). Adds `steps` to the
// run's journal, numbered by the run's count of steps. Announces the events at commit. One
// statement, so one round trip. Returns the new last sequence, and what an announcement of
// the run's state needs.
absl::StatusOr<RunStore::Appended> AppendEvents(DbConnection& conn, const std::string& run_id,
                                                const Lease* lease,
                                                const std::vector<std::string>& events,
                                                std::optional<int> iteration,
                                                const std::vector<std::string>& steps = {}) {
  const int n = static_cast<int>(events.size()), j = static_cast<int>(steps.size());
  const int it = iteration.value_or(0);
  soci::indicator it_ind = iteration ? soci::i_ok : soci::i_null;
  const long long token = lease ? lease->token : 0;
  const int fenced = lease ? 1 : 0;
  const std::string payloads = common::PgBase64Array(events),
                    documents = common::PgBase64Array(steps), channel = kEventsChannel;
  long long last = 0, create_us = 0;
  std::string project_id, announced;
  soci::indicator announced_ind = soci::i_null;
  conn.session()
      << "WITH r AS ("
         "  UPDATE orchestrator.runs SET last_sequence = last_sequence + :n,"
         "    iteration = COALESCE(CAST(:it AS integer), iteration), steps = steps + :j"
         "  WHERE id = CAST(:id AS uuid) AND (:fenced = 0 OR (lease_token = :tok AND state = 2))"
         "  RETURNING id, project_id, create_time, last_sequence, steps),"
         " e AS (INSERT INTO orchestrator.run_events (run_id, sequence, event)"
         "  SELECT r.id, r.last_sequence - :n + o, decode(p, 'base64')"
         "  FROM r, unnest(CAST(:payloads AS text[])) WITH ORDINALITY AS t(p, o)),"
         " s AS (INSERT INTO orchestrator.run_steps (run_id, step, data)"
         "  SELECT r.id, r.steps - :j + o, CAST(convert_from(decode(d, 'base64'), 'UTF8') AS jsonb)"
         "  FROM r, unnest(CAST(:documents AS text[])) WITH ORDINALITY AS t(d, o))"
         " SELECT r.last_sequence, r.project_id::text, (extract(epoch FROM r.create_time) * "
         "1000000)::bigint,"
         "  CAST(CASE WHEN :n > 0 THEN pg_notify(:ch, concat(CAST(:id AS text), ':', "
         "r.last_sequence)) END AS text)"
         " FROM r",
      into(last), into(project_id), into(create_us), into(announced, announced_ind), use(n),
      use(it, it_ind), use(j), use(run_id), use(fenced), use(token), use(n), use(payloads), use(j),
      use(documents), use(n), use(channel), use(run_id);
  if (!conn.session().got_data()) {
    return lease ? LeaseLost(*lease)
                 : absl::NotFoundError(absl::StrCat("run ", run_id, " not found"));
  }
  return RunStore::Appended{.last = static_cast<int64_t>(last),
                            .project_id = project_id,
                            .run_create_time = absl::FromUnixMicros(create_us)};
}

// DropSteps: a run's journal, once the run has ended.
void DropSteps(DbConnection& conn, const std::string& run_id) {
  conn.session() << "DELETE FROM orchestrator.run_steps WHERE run_id = CAST(:id AS uuid)",
      use(run_id);
}

void Notify(DbConnection& conn, const char* channel, const std::string& payload) {
  const std::string name = channel;  // SOCI binds by reference: no temporaries
  conn.session() << "SELECT pg_notify(:ch, :p)", use(name), use(payload);
}

// SaveWorkspace: the project's state is now the snapshot the run left.
void SaveWorkspace(DbConnection& conn, const std::string& project_id, const std::string& run_id,
                   const std::string& snapshot_id) {
  conn.session() << "INSERT INTO orchestrator.workspaces (project_id, run_id, snapshot_id)"
                    " VALUES (CAST(:p AS uuid), CAST(:r AS uuid), CAST(:s AS uuid))"
                    " ON CONFLICT (project_id) DO UPDATE SET run_id = EXCLUDED.run_id,"
                    " snapshot_id = EXCLUDED.snapshot_id, update_time = now()",
      use(project_id), use(run_id), use(snapshot_id);
}

// EnqueueResult: a run's result or ERROR message for MessageService, in the project's order.
absl::Status EnqueueResult(DbConnection& conn, const std::string& project_id,
                           const std::string& payload) {
  return common::EnqueueOutbox(conn, kOutboxTable,
                               {.topic = kTopicRecordResult,
                                .payload = payload,
                                .ordering_key = ResultKey(project_id)})
      .status();
}

// PendingRun: a run waiting for its result (PostResult).
struct PendingRun {
  std::string project_id;
  std::string author;
  int restore_version = 0;
  std::string restore_project_id;
};

// LockPending: locks the run's row; the run, when it is waiting for its result.
std::optional<PendingRun> LockPending(DbConnection& conn, const std::string& run_id) {
  int pending = 0;
  PendingRun run;
  conn.session() << "SELECT result_pending::int, project_id::text, author,"
                    " COALESCE(restore_version, 0), COALESCE(restore_project_id::text, '')"
                    " FROM orchestrator.runs WHERE id = CAST(:id AS uuid) AND state = 2 FOR UPDATE",
      use(run_id), into(pending), into(run.project_id), into(run.author), into(run.restore_version),
      into(run.restore_project_id);
  if (!conn.session().got_data() || pending == 0) return std::nullopt;
  return run;
}

}  // namespace

absl::Status RunStore::Announce(DbConnection& conn, const std::string& run_id, int state,
                                const Appended& appended) {
  if (!news_) return absl::OkStatus();
  const RunStateChange change{.run_id = run_id,
                              .project_id = appended.project_id,
                              .state = state,
                              .run_create_time = appended.run_create_time,
                              .sequence = appended.last};
  return common::EnqueueOutbox(conn, kOutboxTable,
                               {.topic = kTopicRecordLatestRun,
                                .payload = news_(change),
                                .ordering_key = absl::StrCat("latest_run:", change.project_id)})
      .status();
}

absl::StatusOr<RunRecord> RunStore::Start(const StartParams& p) {
  std::optional<RunRecord> out;
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    out.reset();
    // Serialises StartRuns of a project, so "is a run active?" and the insert agree.
    conn.session() << "SELECT 1 FROM pg_advisory_xact_lock(hashtextextended(:p, 11))",
        use(p.project_id);
    // A message, or a restore's request, that already has a run gets that run back.
    if (std::optional<RunRecord> existing = ExistingRun(conn, p)) {
      if (existing->restore_version != p.restore_version || existing->project_id != p.project_id) {
        return absl::InvalidArgumentError(
            "request_id: already used for another request (each request needs its own)");
      }
      out = std::move(existing);
      return absl::OkStatus();
    }
    // The author's runs may be started in other projects at the same time: their count and the
    // insert are serialised per author too. Always project lock first, then author lock, so two
    // Starts never wait for each other's second lock.
    const bool author_capped = !p.author.empty() && p.caps.per_principal > 0;
    if (author_capped) {
      conn.session() << "SELECT 1 FROM pg_advisory_xact_lock(hashtextextended(:a, 12))",
          use(p.author);
    }
    const orchestrator::ActiveRuns active =
        CountActiveRuns(conn, p.project_id, author_capped ? p.author : "");
    if (p.reject_if_active && active.project > 0) {
      return absl::FailedPreconditionError(
          "the project has an active run (multitask is MULTITASK_REJECT)");
    }
    QAI_RETURN_IF_ERROR(orchestrator::CheckActiveRuns(p.caps, p.project_id, p.author, active));
    const long long timeout_us = absl::ToInt64Microseconds(p.timeout);
    soci::indicator message_ind = p.message_id.empty() ? soci::i_null : soci::i_ok;
    soci::indicator restore_ind = p.restore_version == 0 ? soci::i_null : soci::i_ok;
    soci::indicator key_ind = p.request_key.empty() ? soci::i_null : soci::i_ok;
    soci::indicator source_ind = p.restore_project_id.empty() ? soci::i_null : soci::i_ok;
    conn.session() << "INSERT INTO orchestrator.runs (id, project_id, message_id, prompt, state,"
                      " max_iterations, model, timeout_us, author, restore_version, request_key,"
                      " restore_project_id)"
                      " VALUES (CAST(:id AS uuid), CAST(:p AS uuid), CAST(:m AS uuid), :prompt, 1,"
                      " :max, :model, :tmo, :author, :restore, :key, CAST(:source AS uuid))",
        use(p.id), use(p.project_id), use(p.message_id, message_ind), use(p.prompt),
        use(p.max_iterations), use(p.model), use(timeout_us), use(p.author),
        use(p.restore_version, restore_ind), use(p.request_key, key_ind),
        use(p.restore_project_id, source_ind);
    absl::StatusOr<Appended> appended =
        AppendEvents(conn, p.id, nullptr, {p.queued_event}, std::nullopt);
    if (!appended.ok()) return appended.status();
    QAI_RETURN_IF_ERROR(Announce(conn, p.id, kQueued, *appended));
    Notify(conn, kRunsChannel, p.id);
    out = SelectRun(conn, "WHERE id = CAST(:id AS uuid)", p.id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return *std::move(out);
}

absl::StatusOr<orchestrator::ActiveRuns> RunStore::CountActive(const std::string& project_id,
                                                               const std::string& author) {
  orchestrator::ActiveRuns out;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    out = CountActiveRuns(conn, project_id, author);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<RunRecord> RunStore::Get(const std::string& id) {
  std::optional<RunRecord> out;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    out = SelectRun(conn, "WHERE id = CAST(:id AS uuid)", id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!out) return absl::NotFoundError(absl::StrCat("run ", id, " not found"));
  return *std::move(out);
}

absl::StatusOr<std::vector<RunRecord>> RunStore::List(
    const std::string& project_id, int limit,
    std::optional<std::pair<int64_t, std::string>> before) {
  std::vector<RunRecord> out;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    out.clear();
    // The first page starts above every real row (year 2100).
    long long before_us = before ? before->first : 4102444800000000LL;
    std::string before_id = before ? before->second : "ffffffff-ffff-ffff-ffff-ffffffffffff";
    soci::rowset<soci::row> rows =
        (conn.session().prepare << absl::StrCat(
             "SELECT ", kRunColumns,
             " FROM orchestrator.runs WHERE project_id = CAST(:p AS uuid)"
             " AND (create_time, id) < (timestamptz 'epoch' + :us * interval '1 microsecond', "
             "CAST(:bid AS uuid))"
             " ORDER BY project_id, create_time DESC, id DESC LIMIT :n"),
         use(project_id), use(before_us), use(before_id), use(limit));
    for (const soci::row& r : rows) out.push_back(ReadRun(r));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status RunStore::Ping() {
  return db_->Run([](DbConnection& conn) -> absl::Status {
    int one = 0;
    conn.session() << "SELECT 1", into(one);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<RunStore::Claimed>> RunStore::Claim(
    const std::string& worker, absl::Duration lease_for,
    const std::function<std::string(int)>& started_event) {
  std::optional<Claimed> out;
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    out.reset();
    const long long lease_us = absl::ToInt64Microseconds(lease_for);
    std::string id;
    int attempt = 0;
    long long token = 0;
    // The claim must walk the queue (runs_queued) in order and stop at the first run it may
    // take. The planner picks that plan only while its statistics know the queue is deep; after
    // a burst of prompts, or on a fresh table, they say it is nearly empty, and then it takes
    // every queued run, checks each against all the others and sorts them: quadratic, 0.1 s a
    // claim with a thousand queued. Without sorts and bitmap scans, for this transaction only,
    // the ordered walk is the plan left. (The fair pick below must still sort; its cost, made
    // huge by enable_sort off, would otherwise have it JIT-compiled: 0.8 s instead of 10 ms.)
    conn.session() << "SELECT set_config('enable_sort', 'off', true), "
                      "set_config('enable_bitmapscan', 'off', true),"
                      " set_config('jit', 'off', true)";
    // Fair between authors: first the queue's earliest run of an author with nothing running
    // (an ordered walk of the queue that stops at the first it may take), else the one of the
    // author with the fewest running runs, earliest first (only authors that hold some of the
    // fleet are left then). Either way the earliest queued run of a project with nothing running,
    // skipping runs another worker is claiming right now: a later run of the same project waits
    // for the earlier one, even one that is backing off, so a project's prompts run in order.
    constexpr char kAuthorRunning[] =
        "SELECT 1 FROM orchestrator.runs w WHERE w.author = r.author AND w.state = 2";
    for (const std::string& pick :
         {absl::StrCat("AND NOT EXISTS (", kAuthorRunning, ") ORDER BY r.queue_seq"),
          absl::StrCat("ORDER BY (SELECT count(*) FROM (", kAuthorRunning,
                       ") running), r.queue_seq")}) {
      conn.session() << absl::StrCat(
          "WITH next AS ("
          "  SELECT r.id FROM orchestrator.runs r"
          "  WHERE r.state = 1 AND r.next_attempt_time <= now()"
          "    AND NOT EXISTS (SELECT 1 FROM orchestrator.runs a WHERE a.project_id = r.project_id"
          "                    AND a.state = 2)"
          "    AND NOT EXISTS (SELECT 1 FROM orchestrator.runs e WHERE e.project_id = r.project_id"
          "                    AND e.state = 1 AND e.queue_seq < r.queue_seq) ",
          pick,
          "  LIMIT 1 FOR UPDATE SKIP LOCKED)"
          " UPDATE orchestrator.runs r SET state = 2, attempt = r.attempt + 1,"
          "   start_time = COALESCE(r.start_time, now()), lease_owner = :w,"
          "   lease_token = nextval('orchestrator.lease_tokens'),"
          "   lease_expire_time = now() + :us * interval '1 microsecond'"
          " FROM next WHERE r.id = next.id RETURNING r.id::text, r.attempt, r.lease_token"),
          into(id), into(attempt), into(token), use(worker), use(lease_us);
      if (conn.session().got_data()) break;
    }
    if (!conn.session().got_data()) return absl::OkStatus();
    Lease lease{id, token};
    absl::StatusOr<Appended> appended =
        AppendEvents(conn, id, &lease, {started_event(attempt)}, std::nullopt);
    if (!appended.ok()) return appended.status();
    QAI_RETURN_IF_ERROR(Announce(conn, id, kRunning, *appended));
    std::optional<RunRecord> run = SelectRun(conn, "WHERE id = CAST(:id AS uuid)", id);
    out = Claimed{*std::move(run), lease};
    return absl::OkStatus();
  });
  // Another worker started a run of the same project at the same moment (the one-running-run
  // index said no): nothing to claim right now.
  if (s.code() == absl::StatusCode::kAlreadyExists) return std::optional<Claimed>();
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<bool> RunStore::Heartbeat(const Lease& lease, absl::Duration lease_for) {
  int cancel = 0;
  bool found = false;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    const long long lease_us = absl::ToInt64Microseconds(lease_for);
    const long long token = lease.token;
    conn.session()
        << "UPDATE orchestrator.runs SET lease_expire_time = now() + :us * interval '1 microsecond'"
           " WHERE id = CAST(:id AS uuid) AND lease_token = :tok AND state = 2 RETURNING "
           "cancel_requested::int",
        into(cancel), use(lease_us), use(lease.run_id), use(token);
    found = conn.session().got_data();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!found) return LeaseLost(lease);
  return cancel != 0;
}

absl::StatusOr<int64_t> RunStore::Append(const Lease& lease, const std::vector<std::string>& events,
                                         std::optional<int> iteration,
                                         const std::vector<std::string>& steps) {
  int64_t last = 0;
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    QAI_ASSIGN_OR_RETURN(Appended appended,
                         AppendEvents(conn, lease.run_id, &lease, events, iteration, steps));
    last = appended.last;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return last;
}

absl::Status RunStore::AddUsage(const Lease& lease, int64_t prompt_tokens,
                                int64_t completion_tokens) {
  bool held = false;
  // In a transaction, not Run(): an addition must not be repeated after a lost connection.
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    const long long token = lease.token, prompt = prompt_tokens, completion = completion_tokens;
    int one = 0;
    conn.session()
        << "UPDATE orchestrator.runs SET prompt_tokens = prompt_tokens + :p,"
           " completion_tokens = completion_tokens + :c"
           " WHERE id = CAST(:id AS uuid) AND lease_token = :tok AND state = 2 RETURNING 1",
        into(one), use(prompt), use(completion), use(lease.run_id), use(token);
    held = conn.session().got_data();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return held ? absl::OkStatus() : LeaseLost(lease);
}

absl::Status RunStore::Requeue(const Lease& lease, absl::Duration delay,
                               const std::string& retrying_event, bool refund_attempt) {
  return db_->Transaction([&](DbConnection& conn) -> absl::Status {
    absl::StatusOr<Appended> appended =
        AppendEvents(conn, lease.run_id, &lease, {retrying_event}, std::nullopt);
    if (!appended.ok()) return appended.status();
    QAI_RETURN_IF_ERROR(Announce(conn, lease.run_id, kQueued, *appended));
    const long long delay_us = absl::ToInt64Microseconds(delay);
    const int refund = refund_attempt ? 1 : 0;
    conn.session()
        << "UPDATE orchestrator.runs SET state = 1, lease_owner = '', lease_expire_time = NULL,"
           " attempt = attempt - :refund,"
           " next_attempt_time = now() + :us * interval '1 microsecond' WHERE id = CAST(:id AS "
           "uuid)",
        use(refund), use(delay_us), use(lease.run_id);
    Notify(conn, kRunsChannel, lease.run_id);
    return absl::OkStatus();
  });
}

absl::Status RunStore::Finish(const Lease& lease, const FinishParams& p) {
  return db_->Transaction([&](DbConnection& conn) -> absl::Status {
    absl::StatusOr<Appended> appended =
        AppendEvents(conn, lease.run_id, &lease, {p.terminal_event}, std::nullopt);
    if (!appended.ok()) return appended.status();
    QAI_RETURN_IF_ERROR(End(conn, lease.run_id, p, *appended));
    if (!p.error_result.empty()) {
      QAI_RETURN_IF_ERROR(EnqueueResult(conn, appended->project_id, p.error_result));
    }
    return absl::OkStatus();
  });
}

absl::Status RunStore::End(DbConnection& conn, const std::string& run_id, const FinishParams& p,
                           const Appended& appended) {
  const std::string result = p.result_message_id, draft = p.draft_snapshot_id;
  soci::indicator result_ind = result.empty() ? soci::i_null : soci::i_ok;
  soci::indicator draft_ind = draft.empty() ? soci::i_null : soci::i_ok;
  conn.session() << "UPDATE orchestrator.runs SET state = :st, end_time = now(), error = :err,"
                    " result_message_id = CAST(:res AS uuid), sandbox_url = :url,"
                    " draft_snapshot_id = CAST(:draft AS uuid), draft_url = :draft_url,"
                    " result_pending = false, lease_owner = '', lease_expire_time = NULL"
                    " WHERE id = CAST(:id AS uuid)",
      use(p.state), use(p.error), use(result, result_ind), use(p.sandbox_url),
      use(draft, draft_ind), use(p.draft_url), use(run_id);
  DropSteps(conn, run_id);
  QAI_RETURN_IF_ERROR(Announce(conn, run_id, p.state, appended));
  // The project's next queued run may go now.
  Notify(conn, kRunsChannel, run_id);
  return absl::OkStatus();
}

absl::Status RunStore::PostResult(const Lease& lease, const PostedResult& posted) {
  return db_->Transaction([&](DbConnection& conn) -> absl::Status {
    const long long token = lease.token;
    std::string project_id;
    // A new fencing token: the worker's lease ends here, heartbeats included.
    conn.session() << "UPDATE orchestrator.runs SET result_pending = true, lease_owner = '',"
                      " lease_expire_time = NULL,"
                      " lease_token = nextval('orchestrator.lease_tokens')"
                      " WHERE id = CAST(:id AS uuid) AND lease_token = :tok AND state = 2"
                      " RETURNING project_id::text",
        use(lease.run_id), use(token), into(project_id);
    if (!conn.session().got_data()) return LeaseLost(lease);
    if (!posted.workspace_snapshot_id.empty()) {
      SaveWorkspace(conn, project_id, lease.run_id, posted.workspace_snapshot_id);
    }
    return EnqueueResult(conn, project_id, posted.result);
  });
}

absl::Status RunStore::ResultStored(const StoredResult& stored) {
  return db_->Transaction([&](DbConnection& conn) -> absl::Status {
    std::optional<PendingRun> pending = LockPending(conn, stored.run_id);
    if (!pending) {
      // A failed run's ERROR message: noted once.
      conn.session() << "UPDATE orchestrator.runs SET result_message_id = CAST(:m AS uuid)"
                        " WHERE id = CAST(:id AS uuid) AND result_message_id IS NULL",
          use(stored.message_id), use(stored.run_id);
      return absl::OkStatus();
    }
    std::string snapshot_id;
    conn.session() << "SELECT snapshot_id::text FROM orchestrator.workspaces"
                      " WHERE project_id = CAST(:p AS uuid) AND run_id = CAST(:r AS uuid)",
        use(pending->project_id), use(stored.run_id), into(snapshot_id);
    if (!conn.session().got_data()) {
      return absl::InternalError(absl::StrCat("run ", stored.run_id, " posted no snapshot"));
    }
    QAI_ASSIGN_OR_RETURN(
        int version, RecordVersion(conn, {.project_id = pending->project_id,
                                          .run_id = stored.run_id,
                                          .message_id = stored.message_id,
                                          .snapshot_id = snapshot_id,
                                          .sandbox_url = stored.sandbox_url,
                                          .title = stored.title,
                                          .author = pending->author,
                                          .restored_from = pending->restore_version,
                                          .forked_from_project_id = pending->restore_project_id}));
    QAI_ASSIGN_OR_RETURN(Appended appended,
                         AppendEvents(conn, stored.run_id, nullptr,
                                      {stored.succeeded_event(version)}, std::nullopt));
    return End(conn, stored.run_id,
               {.state = kSucceeded,
                .result_message_id = stored.message_id,
                .sandbox_url = stored.sandbox_url},
               appended);
  });
}

absl::Status RunStore::ResultRefused(DbConnection& conn, const std::string& run_id,
                                     const std::string& error, const std::string& failed_event) {
  if (!LockPending(conn, run_id)) return absl::OkStatus();
  QAI_ASSIGN_OR_RETURN(Appended appended,
                       AppendEvents(conn, run_id, nullptr, {failed_event}, std::nullopt));
  return End(conn, run_id, {.state = kFailed, .error = error}, appended);
}

absl::StatusOr<RunRecord> RunStore::Cancel(const std::string& id,
                                           const std::string& cancelled_event) {
  std::optional<RunRecord> out;
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    out = SelectRun(conn, "WHERE id = CAST(:id AS uuid) FOR UPDATE", id);
    if (!out) return absl::NotFoundError(absl::StrCat("run ", id, " not found"));
    if (out->state == kQueued) {
      absl::StatusOr<Appended> appended =
          AppendEvents(conn, id, nullptr, {cancelled_event}, std::nullopt);
      if (!appended.ok()) return appended.status();
      conn.session() << "UPDATE orchestrator.runs SET state = 5, end_time = now() WHERE id = "
                        "CAST(:id AS uuid)",
          use(id);
      DropSteps(conn, id);  // a requeued run may have some
      QAI_RETURN_IF_ERROR(Announce(conn, id, kCancelled, *appended));
      Notify(conn, kRunsChannel, id);  // the project's next run may go now
    } else if (out->state == kRunning && !out->cancel_requested) {
      conn.session()
          << "UPDATE orchestrator.runs SET cancel_requested = true WHERE id = CAST(:id AS uuid)",
          use(id);
      Notify(conn, kCancelChannel, id);
    } else {
      return absl::OkStatus();
    }
    out = SelectRun(conn, "WHERE id = CAST(:id AS uuid)", id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return *std::move(out);
}

absl::Status RunStore::CancelProject(const std::string& project_id,
                                     const std::string& cancelled_event) {
  std::vector<std::string> active;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    active.clear();
    soci::rowset<std::string> rows =
        (conn.session().prepare << "SELECT id::text FROM orchestrator.runs"
                                   " WHERE project_id = CAST(:p AS uuid) AND state IN (1, 2)"
                                   " ORDER BY queue_seq DESC",
         use(project_id));
    for (const std::string& id : rows) active.push_back(id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  // Newest first, so no queued run gets its turn between the cancels.
  for (const std::string& id : active) {
    if (absl::StatusOr<RunRecord> r = Cancel(id, cancelled_event); !r.ok()) return r.status();
  }
  return absl::OkStatus();
}

absl::Status RunStore::PurgeProject(const std::string& project_id) {
  return db_->Transaction([&](DbConnection& conn) -> absl::Status {
    conn.session() << "DELETE FROM orchestrator.workspaces WHERE project_id = CAST(:p AS uuid)",
        use(project_id);
    conn.session() << "DELETE FROM orchestrator.versions WHERE project_id = CAST(:p AS uuid)",
        use(project_id);
    return common::EnqueueOutbox(conn, kOutboxTable,
                                 {.topic = kTopicPurgeSandbox,
                                  .payload = PurgeSandboxPayload(project_id),
                                  .ordering_key = absl::StrCat("sandbox:", project_id)})
        .status();
  });
}

absl::StatusOr<int> RunStore::RescueExpired(int max_attempts, const RescueEvents& events) {
  int rescued = 0;
  absl::Status s =
      db_->Transaction([&](DbConnection& conn) -> absl::Status {
        rescued = 0;
        struct Lapsed {
          std::string id;
          std::string project_id;
          int attempt;
          int cancel;
        };
        std::vector<Lapsed> lapsed;
        soci::rowset<soci::row> rows =
            (conn.session().prepare
             << "SELECT id::text, project_id::text, attempt, cancel_requested::int"
                " FROM orchestrator.runs WHERE state = 2 AND lease_expire_time < now()"
                " ORDER BY lease_expire_time LIMIT 100 FOR UPDATE SKIP LOCKED");
        for (const soci::row& r : rows) {
          lapsed.push_back(
              {r.get<std::string>(0), r.get<std::string>(1), r.get<int>(2), r.get<int>(3)});
        }
        for (const Lapsed& run : lapsed) {
          // The dead worker's lease token stays on the row, but the state change fences it out.
          if (run.cancel || run.attempt >= max_attempts) {
            const int state = run.cancel ? kCancelled : kFailed;
            const std::string error =
                run.cancel ? "" : absl::StrCat("its worker was lost ", run.attempt, " times");
            QAI_ASSIGN_OR_RETURN(
                Appended appended,
                AppendEvents(conn, run.id, nullptr,
                             {run.cancel ? events.cancelled : events.failed(error)}, std::nullopt));
            QAI_RETURN_IF_ERROR(End(conn, run.id, {.state = state, .error = error}, appended));
            if (!run.cancel && events.error_result) {
              QAI_RETURN_IF_ERROR(
                  EnqueueResult(conn, run.project_id, events.error_result(run.id, run.project_id)));
            }
          } else {
            absl::StatusOr<Appended> appended =
                AppendEvents(conn, run.id, nullptr, {events.retrying(run.attempt)}, std::nullopt);
            if (!appended.ok()) return appended.status();
            conn.session() << "UPDATE orchestrator.runs SET state = 1, next_attempt_time = now(), "
                              "lease_owner = '',"
                              " lease_expire_time = NULL WHERE id = CAST(:id AS uuid)",
                use(run.id);
            QAI_RETURN_IF_ERROR(Announce(conn, run.id, kQueued, *appended));
            Notify(conn, kRunsChannel, run.id);
          }
          ++rescued;
        }
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return rescued;
}

absl::StatusOr<std::vector<std::string>> RunStore::Steps(const std::string& run_id) {
  std::vector<std::string> out;
  absl::Status s =
      db_->Run([&](DbConnection& conn) -> absl::Status {
        soci::rowset<std::string> rows =
            (conn.session().prepare
                 << "SELECT data::text FROM orchestrator.run_steps WHERE run_id = CAST(:id AS uuid)"
                    " ORDER BY step",
             use(run_id));
        out.assign(rows.begin(), rows.end());
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::optional<WorkspaceState>> RunStore::WorkspaceOf(const std::string& project_id) {
  std::optional<WorkspaceState> out;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    out.reset();
    WorkspaceState state;
    conn.session() << "SELECT run_id::text, snapshot_id::text FROM orchestrator.workspaces"
                      " WHERE project_id = CAST(:p AS uuid)",
        into(state.run_id), into(state.snapshot_id), use(project_id);
    if (conn.session().got_data()) out = std::move(state);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<StoredEvent>> RunStore::Events(const std::string& run_id, int64_t after,
                                                          int limit) {
  std::vector<StoredEvent> out;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    out.clear();
    const long long after_seq = after;
    // A run's events are either all in run_events or all in its archive row (ArchiveEvents
    // moves them in one statement), so the union is the run's whole log either way.
    soci::rowset<soci::row> rows =
        (conn.session().prepare << "SELECT sequence, " US("create_time") ", encode(event, 'base64')"
                                   " FROM orchestrator.run_events WHERE run_id = CAST(:id AS uuid) AND sequence > :after"
                                   " UNION ALL"
                                   " SELECT a.sequence, " US("a.time") ", encode(a.event, 'base64')"
                                   " FROM orchestrator.run_event_archives r,"
                                   "      unnest(r.events, r.times) WITH ORDINALITY AS a(event, time, sequence)"
                                   " WHERE r.run_id = CAST(:id2 AS uuid) AND a.sequence > :after2"
                                   " ORDER BY 1 LIMIT :n",
         use(run_id), use(after_seq), use(run_id), use(after_seq), use(limit));
    for (const soci::row& r : rows) {
      StoredEvent e;
      e.sequence = r.get<long long>(0);
      e.time = absl::FromUnixMicros(r.get<long long>(1));
      // PostgreSQL wraps base64 at 76 characters; the unescape skips the newlines.
      if (!absl::Base64Unescape(r.get<std::string>(2), &e.event))
        return absl::InternalError("unreadable event");
      out.push_back(std::move(e));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<int> RunStore::ArchiveEvents(absl::Time finished_before, int batch) {
  int archived = 0;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    const long long before_us = absl::ToUnixMicros(finished_before);
    // One statement, so one transaction: the runs are locked (SKIP LOCKED: replicas archiving
    // at once take different runs), their events deleted and aggregated into archive rows.
    // Finished runs get no more events (every write to a run is fenced by its state).
    conn.session() << "WITH picked AS ("
                      "  SELECT id FROM orchestrator.runs"
                      "  WHERE state IN (3, 4, 5) AND NOT events_archived"
                      "    AND end_time < " TS(":before") " ORDER BY end_time LIMIT :n FOR UPDATE SKIP LOCKED),"
                      " moved AS ("
                      "  DELETE FROM orchestrator.run_events e USING picked WHERE e.run_id = picked.id"
                      "  RETURNING e.run_id, e.sequence, e.event, e.create_time),"
                      " archive AS ("
                      "  INSERT INTO orchestrator.run_event_archives (run_id, events, times)"
                      "  SELECT run_id, array_agg(event ORDER BY sequence), array_agg(create_time ORDER BY sequence)"
                      "  FROM moved GROUP BY run_id),"
                      " marked AS ("
                      "  UPDATE orchestrator.runs r SET events_archived = true FROM picked WHERE r.id = picked.id"
                      "  RETURNING r.id)"
                      " SELECT count(*)::int FROM marked",
        use(before_us), use(batch), into(archived);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return archived;
}

absl::StatusOr<RunStore::QueueCounts> RunStore::CountQueue() {
  long long queued = 0, due = 0, running = 0;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    conn.session() << "SELECT (SELECT count(*) FROM orchestrator.runs WHERE state = 1),"
                      " (SELECT count(*) FROM orchestrator.runs WHERE state = 1 AND "
                      "next_attempt_time <= now()),"
                      " (SELECT count(*) FROM orchestrator.runs WHERE state = 2)",
        soci::into(queued), soci::into(due), soci::into(running);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return QueueCounts{queued, due, running};
}

}  // namespace qai::orchestrator
