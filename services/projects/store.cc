#include "services/projects/store.h"

#include <future>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/outbox.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "services/projects/effects.h"
#include "services/projects/slug.h"

namespace qai::projects {
namespace {

using common::DbConnection;
using soci::into;
using soci::use;

// The columns of a ProjectRecord, in RowBinding/ParseRecord order; `p` qualifies them.
// SQL laid out as SQL:
// clang-format off
#define PROJECT_COLUMNS_OF(p)                                                         \
  p "id::text AS id, " p "name AS name, " p "display_name AS display_name, "          \
  p "owner AS owner, (EXTRACT(EPOCH FROM " p "create_time) * 1000000)::bigint AS create_us, " \
  "(EXTRACT(EPOCH FROM " p "update_time) * 1000000)::bigint AS update_us, "           \
  p "version AS version, COALESCE(" p "latest_run_id::text, '') AS run_id, "           \
  p "latest_run_state AS run_state"
#define PROJECT_COLUMNS PROJECT_COLUMNS_OF("")
// clang-format on

constexpr char kGetStatement[] = "projects.get";
constexpr char kCreateStatement[] = "projects.create";
constexpr char kFindRequestStatement[] = "projects.find_request";

// A µs count as a timestamptz, exactly (to_timestamp goes through a double and rounds).
#define MICROS_TO_TS(param) "(timestamptz 'epoch' + " param " * interval '1 microsecond')"

// RowBinding: the variables one project row is read into.
struct RowBinding {
  std::string id, name, display_name, owner, run_id, run_state;
  long long create_us = 0, update_us = 0, version = 0;

  ProjectRecord ToRecord() const {
    return ProjectRecord{id,
                         name,
                         display_name,
                         owner,
                         absl::FromUnixMicros(create_us),
                         absl::FromUnixMicros(update_us),
                         version,
                         run_id,
                         run_state};
  }
};

// BindRow: binds a PROJECT_COLUMNS row to r, for a prepared statement or a one-shot query.
template <typename Query>
Query&& BindRow(Query&& q, RowBinding& r) {
  q, into(r.id), into(r.name), into(r.display_name), into(r.owner), into(r.create_us),
      into(r.update_us), into(r.version), into(r.run_id), into(r.run_state);
  return std::forward<Query>(q);
}

// The list reads, prepared once per pooled connection (DbConnection::Prepared).
// SQL laid out as SQL:
// clang-format off
struct ListStatement {
  std::string owner;
  long long after_us = 0;
  std::string after_id;
  int limit = 0;
  RowBinding row;
  soci::statement st;
  ListStatement(soci::session& s, bool by_owner)
      : st(BindRow(by_owner
                       ? (s.prepare << "SELECT " PROJECT_COLUMNS " FROM projects.projects"
                                       " WHERE owner = :owner AND delete_time IS NULL"
                                       " AND (update_time, id) < (" MICROS_TO_TS(":us") ", CAST(:aid AS uuid))"
                                       // Ordering by owner too (one value here) leaves the
                                       // owner index as the only one that yields this order, so
                                       // a plan cached on a small table cannot go elsewhere.
                                       " ORDER BY owner, update_time DESC, id DESC LIMIT :lim",
                          use(owner), use(after_us), use(after_id), use(limit))
                       : (s.prepare << "SELECT " PROJECT_COLUMNS " FROM projects.projects"
                                       " WHERE delete_time IS NULL"
                                       " AND (update_time, id) < (" MICROS_TO_TS(":us") ", CAST(:aid AS uuid))"
                                       " ORDER BY update_time DESC, id DESC LIMIT :lim",
                          use(after_us), use(after_id), use(limit)),
                   row)) {}
};
// clang-format on
struct ListByOwnerStatement : ListStatement {
  explicit ListByOwnerStatement(soci::session& s) : ListStatement(s, true) {}
};
struct ListAllStatement : ListStatement {
  explicit ListAllStatement(soci::session& s) : ListStatement(s, false) {}
};

struct ClaimRequestStatement {
  std::string principal, request_id, method, resource_id;
  soci::statement st;
  explicit ClaimRequestStatement(soci::session& s)
      : st((s.prepare
                << "INSERT INTO projects.idempotency (principal, request_id, method, resource_id)"
                   " VALUES (:p, CAST(:r AS uuid), :m, CAST(:res AS uuid)) ON CONFLICT DO NOTHING",
            use(principal), use(request_id), use(method), use(resource_id))) {}
};

bool Visible(const Actor& actor, const std::string& owner) {
  return !actor.owner_scoped || owner == actor.id;
}

// ParseRecord: a PROJECT_COLUMNS row from the pipeline, starting at column `at`.
absl::StatusOr<ProjectRecord> ParseRecord(const std::vector<common::PgValue>& row, size_t at) {
  if (row.size() < at + 9) return absl::InternalError("unexpected project row shape");
  auto text = [&](size_t i) { return row[at + i].value_or(""); };
  int64_t create_us = 0, update_us = 0, version = 0;
  if (!absl::SimpleAtoi(text(4), &create_us) || !absl::SimpleAtoi(text(5), &update_us) ||
      !absl::SimpleAtoi(text(6), &version)) {
    return absl::InternalError("unexpected project row values");
  }
  return ProjectRecord{text(0),
                       text(1),
                       text(2),
                       text(3),
                       absl::FromUnixMicros(create_us),
                       absl::FromUnixMicros(update_us),
                       version,
                       text(7),
                       text(8)};
}

// Wait: the blocking form of an asynchronous store call.
absl::StatusOr<ProjectRecord> Wait(const std::function<void(RecordCallback)>& start) {
  std::promise<absl::StatusOr<ProjectRecord>> result;
  start([&](absl::StatusOr<ProjectRecord> r) { result.set_value(std::move(r)); });
  return result.get_future().get();
}

// RequestIdReused: a request id sent again with a different call or target.
absl::Status RequestIdReused(std::string_view first_use) {
  return common::InvalidField("request_id", absl::StrCat("was already used for a different call (",
                                                         common::ToAbsl(first_use), ")"));
}

absl::Status NotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("project ", id, " not found"));
}

// What a repeated request id found: the earlier request's resource, when it was the same kind.
struct PriorRequest {
  bool claimed = false;  // true: this is the first use; go ahead
  std::string resource_id;
};

// ClaimRequest: records (principal, request_id) for this call, or finds the earlier record. A
// concurrent duplicate blocks on the primary key until the first transaction ends.
absl::StatusOr<PriorRequest> ClaimRequest(DbConnection& conn, const std::string& principal,
                                          const std::string& request_id, const std::string& method,
                                          const std::string& resource_id) {
  auto& claim = conn.Prepared<ClaimRequestStatement>();
  claim.principal = principal;
  claim.request_id = request_id;
  claim.method = method;
  claim.resource_id = resource_id;
  claim.st.execute(true);
  if (claim.st.get_affected_rows() == 1) return PriorRequest{true, resource_id};
  std::string prior_method, prior_resource;
  conn.session() << "SELECT method, resource_id::text FROM projects.idempotency"
                    " WHERE principal = :p AND request_id = CAST(:r AS uuid)",
      into(prior_method), into(prior_resource), use(principal), use(request_id);
  if (prior_method != method) return RequestIdReused(prior_method);
  return PriorRequest{false, prior_resource};
}

// LockRow: the project row, locked for update, if the actor may see it.
absl::StatusOr<RowBinding> LockRow(DbConnection& conn, const Actor& actor, const std::string& id) {
  RowBinding row;
  BindRow(conn.session() << "SELECT " PROJECT_COLUMNS
                            " FROM projects.projects"
                            " WHERE id = CAST(:id AS uuid) AND delete_time IS NULL FOR UPDATE",
          row),
      use(id);
  if (!conn.session().got_data() || !Visible(actor, row.owner)) return NotFound(id);
  return row;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProjectStore>> ProjectStore::Open(
    common::DbPool* db, common::PgPipeline::Options pipeline) {
  QAI_ASSIGN_OR_RETURN(std::unique_ptr<common::PgPipeline> started,
                       common::PgPipeline::Start(std::move(pipeline), PipelineStatements()));
  return std::unique_ptr<ProjectStore>(new ProjectStore(db, std::move(started)));
}

void ProjectStore::Stop() { pipeline_->Stop(); }

std::string ProjectStore::NewSlug() {
  absl::MutexLock lock(&rng_mu_);
  return GenerateSlug(rng_);
}

// SQL laid out as SQL:
// clang-format off
std::vector<common::PgStatement> ProjectStore::PipelineStatements() {
  return {
      // Deletion is returned, not filtered on: `delete_time IS NULL` in the WHERE clause lets
      // the planner pick a partial list index (scanning it whole for the id) when the plan is
      // cached while the table is small. With the id alone only the primary key fits.
      {kGetStatement, "SELECT " PROJECT_COLUMNS ", delete_time IS NULL AS live FROM projects.projects"
                      " WHERE id = CAST($1 AS uuid)"},
      // One statement, so one atomic unit: the request-id record (when there is a request id),
      // the project only if that record is new, and the outbox row only if the project is.
      // A taken slug fails the whole statement (unique violation) and is retried with another.
      // The outbox row is common's (OutboxInsertSelect, its values from $6 on).
      {kCreateStatement,
       absl::StrCat(
       "WITH claim AS ("
       "  INSERT INTO projects.idempotency (principal, request_id, method, resource_id)"
       "  SELECT CAST($4 AS text), CAST($5 AS uuid), 'CreateProject', CAST($1 AS uuid)"
       "  WHERE CAST($5 AS uuid) IS NOT NULL ON CONFLICT DO NOTHING RETURNING 1"
       "), project AS ("
       "  INSERT INTO projects.projects (id, name, display_name, owner)"
       "  SELECT CAST($1 AS uuid), CAST($2 AS text), CAST($3 AS text), CAST($4 AS text)"
       "  WHERE CAST($5 AS uuid) IS NULL OR EXISTS (SELECT 1 FROM claim)"
       "  RETURNING " PROJECT_COLUMNS
       "), announce AS (",
       common::OutboxInsertSelect(kOutboxTable, 6, "FROM project"),
       ") SELECT * FROM project")},
      {kFindRequestStatement,
       "SELECT i.method, " PROJECT_COLUMNS_OF("p.") ", p.delete_time IS NULL AS live"
       " FROM projects.idempotency i LEFT JOIN projects.projects p ON p.id = i.resource_id"
       " WHERE i.principal = CAST($1 AS text) AND i.request_id = CAST($2 AS uuid)"},
  };
}
// clang-format on

void ProjectStore::CreateAsync(CreateParams params, RecordCallback done) {
  CreateAttempt(std::make_shared<const CreateParams>(std::move(params)), 0, std::move(done));
}

void ProjectStore::CreateAttempt(std::shared_ptr<const CreateParams> params, int attempt,
                                 RecordCallback done) {
  std::vector<common::PgValue> values = {
      params->id,
      NewSlug(),
      params->display_name,
      params->actor.id,
      params->request_id.empty() ? common::PgValue() : params->request_id,
  };
  std::vector<common::PgValue> announce =
      common::OutboxValues({.topic = kTopicCreateMessage,
                            .payload = params->initial_message_payload,
                            .ordering_key = params->id},
                           params->trace_request_id);
  values.insert(values.end(), announce.begin(), announce.end());
  pipeline_->Execute(
      kCreateStatement, std::move(values),
      [this, params, attempt, done = std::move(done)](absl::StatusOr<common::PgRows> r) {
        if (!r.ok() && r.status().code() == absl::StatusCode::kAlreadyExists && attempt < 8) {
          CreateAttempt(params, attempt + 1, done);  // the slug was taken
          return;
        }
        if (!r.ok()) return done(r.status());
        if (r->rows.size() == 1) return done(ParseRecord(r->rows[0], 0));
        // A repeated request id (its record cannot vanish but by a retry).
        FindCreatedAsync(*params, absl::AbortedError("request record vanished; retry"), done);
      });
}

void ProjectStore::FindCreatedAsync(const CreateParams& params, absl::Status absent,
                                    RecordCallback done) {
  pipeline_->Execute(
      kFindRequestStatement, {params.actor.id, params.request_id},
      [absent = std::move(absent), done = std::move(done)](absl::StatusOr<common::PgRows> r) {
        if (!r.ok()) return done(r.status());
        if (r->rows.empty()) return done(absent);
        const auto& row = r->rows[0];
        if (row[0].value_or("") != "CreateProject")
          return done(RequestIdReused(row[0].value_or("")));
        // The first request's project was deleted since.
        if (!row[1] || row.back() != "t") {
          return done(absl::NotFoundError("the project this request created was deleted"));
        }
        done(ParseRecord(row, 1));
      });
}

void ProjectStore::GetAsync(const Actor& actor, const std::string& id, RecordCallback done) {
  pipeline_->Execute(kGetStatement, {id},
                     [actor, id, done = std::move(done)](absl::StatusOr<common::PgRows> r) {
                       if (!r.ok()) return done(r.status());
                       if (r->rows.empty() || r->rows[0].back() != "t")
                         return done(NotFound(id));  // unknown or deleted
                       absl::StatusOr<ProjectRecord> record = ParseRecord(r->rows[0], 0);
                       if (record.ok() && !Visible(actor, record->owner)) return done(NotFound(id));
                       done(std::move(record));
                     });
}

absl::StatusOr<ProjectRecord> ProjectStore::Create(const CreateParams& params) {
  return Wait([&](RecordCallback done) { CreateAsync(params, std::move(done)); });
}

absl::StatusOr<ProjectRecord> ProjectStore::Get(const Actor& actor, const std::string& id) {
  return Wait([&](RecordCallback done) { GetAsync(actor, id, std::move(done)); });
}

absl::StatusOr<ListResult> ProjectStore::List(const ListParams& params) {
  ListResult result;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    result = ListResult{};
    ListStatement& list = params.actor.owner_scoped
                              ? static_cast<ListStatement&>(conn.Prepared<ListByOwnerStatement>())
                              : static_cast<ListStatement&>(conn.Prepared<ListAllStatement>());
    list.owner = params.actor.id;
    // The first page starts above every real row.
    list.after_us = params.after ? params.after->first : std::numeric_limits<int64_t>::max() / 2;
    list.after_id = params.after ? params.after->second : "ffffffff-ffff-ffff-ffff-ffffffffffff";
    list.limit = params.page_size + 1;
    list.st.execute(false);
    while (list.st.fetch()) result.projects.push_back(list.row.ToRecord());
    if (static_cast<int>(result.projects.size()) > params.page_size) {
      result.projects.pop_back();
      result.more = true;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return result;
}

absl::StatusOr<ProjectRecord> ProjectStore::Update(const UpdateParams& params) {
  ProjectRecord updated;
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    if (!params.request_id.empty()) {
      QAI_ASSIGN_OR_RETURN(
          PriorRequest prior,
          ClaimRequest(conn, params.actor.id, params.request_id, "UpdateProject", params.id));
      if (!prior.claimed) {
        if (prior.resource_id != params.id) {
          return RequestIdReused("another project");
        }
        QAI_ASSIGN_OR_RETURN(RowBinding row, LockRow(conn, params.actor, params.id));
        updated = row.ToRecord();
        return absl::OkStatus();
      }
    }
    QAI_ASSIGN_OR_RETURN(RowBinding row, LockRow(conn, params.actor, params.id));
    if (params.expected_version && *params.expected_version != row.version) {
      return absl::AbortedError("etag mismatch: the project changed since it was read");
    }
    std::string display_name = params.display_name.value_or(row.display_name);
    RowBinding out;
    BindRow(
        conn.session() << "UPDATE projects.projects SET display_name = :dn, version = version + 1,"
                          " update_time = GREATEST(now(), update_time + interval '1 microsecond')"
                          " WHERE id = CAST(:id AS uuid) RETURNING " PROJECT_COLUMNS,
        out),
        use(display_name), use(params.id);
    updated = out.ToRecord();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return updated;
}

absl::Status ProjectStore::Delete(const DeleteParams& params) {
  return db_->Transaction([&](DbConnection& conn) -> absl::Status {
    if (!params.request_id.empty()) {
      QAI_ASSIGN_OR_RETURN(
          PriorRequest prior,
          ClaimRequest(conn, params.actor.id, params.request_id, "DeleteProject", params.id));
      if (!prior.claimed) {
        return prior.resource_id == params.id ? absl::OkStatus()
                                              : RequestIdReused("another project");
      }
    }
    QAI_ASSIGN_OR_RETURN(RowBinding row, LockRow(conn, params.actor, params.id));
    if (params.expected_version && *params.expected_version != row.version) {
      return absl::AbortedError("etag mismatch: the project changed since it was read");
    }
    conn.session() << "UPDATE projects.projects SET delete_time = now(), version = version + 1"
                      " WHERE id = CAST(:id AS uuid)",
        use(params.id);
    for (auto [topic, payload] : {std::pair{kTopicPurgeMessages, &params.purge_payload},
                                  std::pair{kTopicCancelRuns, &params.cancel_payload}}) {
      // Keyed by project: these go out only after the project's initial prompt did.
      absl::StatusOr<std::string> queued =
          common::EnqueueOutbox(conn, kOutboxTable, {topic, *payload, params.id});
      if (!queued.ok()) return queued.status();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<int> ProjectStore::RecordLatestRuns(const std::vector<LatestRun>& runs) {
  // The news as parallel arrays (array literals of uuids, enum names and numbers, all checked
  // by the handler, so nothing needs quoting).
  std::vector<std::string> projects, run_ids, states, create_times, sequences;
  for (const LatestRun& r : runs) {
    projects.push_back(r.project_id);
    run_ids.push_back(r.run_id);
    states.push_back(r.state);
    create_times.push_back(absl::StrCat(r.run_create_time_us));
    sequences.push_back(absl::StrCat(r.sequence));
  }
  auto array = [](const std::vector<std::string>& items) {
    return absl::StrCat("{", absl::StrJoin(items, ","), "}");
  };
  const std::string p = array(projects), r = array(run_ids), st = array(states),
                    ct = array(create_times), seq = array(sequences);
  int changed = 0;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    // Each project's newest news first (a later run, then a higher sequence), as one by one.
    conn.session()
        << "WITH given AS (SELECT * FROM unnest(CAST(:p AS uuid[]), CAST(:r AS uuid[]), CAST(:st "
           "AS text[]),"
           "   CAST(:ct AS bigint[]), CAST(:seq AS bigint[])) AS g(project, run, state, ct, "
           "sequence)),"
           " news AS (SELECT DISTINCT ON (project) project, run, state,"
           "   timestamptz 'epoch' + ct * interval '1 microsecond' AS run_create_time, sequence"
           "   FROM given ORDER BY project, ct DESC, run DESC, sequence DESC),"
           " changed AS ("
           " UPDATE projects.projects p SET latest_run_id = news.run, latest_run_state = "
           "news.state,"
           "   latest_run_create_time = news.run_create_time, latest_run_sequence = news.sequence"
           " FROM news WHERE p.id = news.project AND p.delete_time IS NULL AND ("
           "   p.latest_run_id IS NULL"
           "   OR (p.latest_run_id = news.run AND p.latest_run_sequence < news.sequence)"
           "   OR (p.latest_run_id <> news.run"
           "       AND (p.latest_run_create_time, p.latest_run_id) < (news.run_create_time, "
           "news.run)))"
           " RETURNING p.id)"
           " SELECT count(*) FROM changed",
        use(p), use(r), use(st), use(ct), use(seq), into(changed);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return changed;
}

}  // namespace qai::projects
