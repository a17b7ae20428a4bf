#include "services/projects/store.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "common/outbox.h"
#include "services/projects/slug.h"

namespace qai::projects {
namespace {

using common::DbConnection;
using soci::into;
using soci::use;

#define PROJECT_COLUMNS                                                                      \
  "id::text, name, display_name, owner, "                                                    \
  "(EXTRACT(EPOCH FROM create_time) * 1000000)::bigint, "                                    \
  "(EXTRACT(EPOCH FROM update_time) * 1000000)::bigint, "                                    \
  "version, COALESCE(latest_run_id::text, ''), latest_run_state"

// A µs count as a timestamptz, exactly (to_timestamp goes through a double and rounds).
#define MICROS_TO_TS(param) "(timestamptz 'epoch' + " param " * interval '1 microsecond')"

// RowBinding: the variables one project row is read into.
struct RowBinding {
  std::string id, name, display_name, owner, run_id, run_state;
  long long create_us = 0, update_us = 0, version = 0;

  ProjectRecord ToRecord() const {
    return ProjectRecord{id, name, display_name, owner, absl::FromUnixMicros(create_us),
                         absl::FromUnixMicros(update_us), version, run_id, run_state};
  }
};

soci::details::prepare_temp_type BindRow(soci::details::prepare_temp_type p, RowBinding& r) {
  p, into(r.id), into(r.name), into(r.display_name), into(r.owner), into(r.create_us),
      into(r.update_us), into(r.version), into(r.run_id), into(r.run_state);
  return p;
}

// The hot reads, prepared once per pooled connection (DbConnection::Prepared).
struct GetStatement {
  std::string id;
  RowBinding row;
  soci::statement st;
  explicit GetStatement(soci::session& s)
      : st(BindRow((s.prepare << "SELECT " PROJECT_COLUMNS " FROM projects.projects"
                                 " WHERE id = CAST(:id AS uuid) AND delete_time IS NULL",
                    use(id)),
                   row)) {}
};

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
                                       " ORDER BY update_time DESC, id DESC LIMIT :lim",
                          use(owner), use(after_us), use(after_id), use(limit))
                       : (s.prepare << "SELECT " PROJECT_COLUMNS " FROM projects.projects"
                                       " WHERE delete_time IS NULL"
                                       " AND (update_time, id) < (" MICROS_TO_TS(":us") ", CAST(:aid AS uuid))"
                                       " ORDER BY update_time DESC, id DESC LIMIT :lim",
                          use(after_us), use(after_id), use(limit)),
                   row)) {}
};
struct ListByOwnerStatement : ListStatement {
  explicit ListByOwnerStatement(soci::session& s) : ListStatement(s, true) {}
};
struct ListAllStatement : ListStatement {
  explicit ListAllStatement(soci::session& s) : ListStatement(s, false) {}
};

struct InsertStatement {
  std::string id, name, display_name, owner;
  RowBinding row;
  soci::statement st;
  explicit InsertStatement(soci::session& s)
      : st(BindRow((s.prepare << "INSERT INTO projects.projects (id, name, display_name, owner)"
                                 " VALUES (CAST(:id AS uuid), :name, :dn, :owner)"
                                 " ON CONFLICT (name) DO NOTHING RETURNING " PROJECT_COLUMNS,
                    use(id), use(name), use(display_name), use(owner)),
                   row)) {}
};

struct ClaimRequestStatement {
  std::string principal, request_id, method, resource_id;
  soci::statement st;
  explicit ClaimRequestStatement(soci::session& s)
      : st((s.prepare << "INSERT INTO projects.idempotency (principal, request_id, method, resource_id)"
                         " VALUES (:p, CAST(:r AS uuid), :m, CAST(:res AS uuid)) ON CONFLICT DO NOTHING",
            use(principal), use(request_id), use(method), use(resource_id))) {}
};

bool Visible(const Actor& actor, const RowBinding& row) {
  return !actor.owner_scoped || row.owner == actor.id;
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
  if (prior_method != method) {
    return absl::InvalidArgumentError(
        absl::StrCat("request_id was already used for a different call (", prior_method, ")"));
  }
  return PriorRequest{false, prior_resource};
}

// LockRow: the project row, locked for update, if the actor may see it.
absl::StatusOr<RowBinding> LockRow(DbConnection& conn, const Actor& actor, const std::string& id) {
  RowBinding row;
  conn.session() << "SELECT " PROJECT_COLUMNS " FROM projects.projects"
                    " WHERE id = CAST(:id AS uuid) AND delete_time IS NULL FOR UPDATE",
      use(id), into(row.id), into(row.name), into(row.display_name), into(row.owner),
      into(row.create_us), into(row.update_us), into(row.version), into(row.run_id), into(row.run_state);
  if (!conn.session().got_data() || !Visible(actor, row)) return NotFound(id);
  return row;
}

}  // namespace

std::string ProjectStore::NewSlug() {
  absl::MutexLock lock(&rng_mu_);
  return GenerateSlug(rng_);
}

absl::StatusOr<ProjectRecord> ProjectStore::Create(const CreateParams& params) {
  ProjectRecord created;
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    const std::string& id = params.id;
    if (!params.request_id.empty()) {
      absl::StatusOr<PriorRequest> prior =
          ClaimRequest(conn, params.actor.id, params.request_id, "CreateProject", id);
      if (!prior.ok()) return prior.status();
      if (!prior->claimed) {
        auto& get = conn.Prepared<GetStatement>();
        get.id = prior->resource_id;
        get.st.execute(true);
        if (!get.st.got_data()) return NotFound(prior->resource_id);  // created, then deleted
        created = get.row.ToRecord();
        return absl::OkStatus();
      }
    }
    auto& insert = conn.Prepared<InsertStatement>();
    insert.id = id;
    insert.display_name = params.display_name;
    insert.owner = params.actor.id;
    // A slug collision inserts nothing (ON CONFLICT DO NOTHING keeps the transaction alive).
    for (int attempt = 0;; ++attempt) {
      if (attempt == 8) return absl::InternalError("could not find a free project name");
      insert.name = NewSlug();
      insert.st.execute(true);
      if (insert.st.got_data()) break;
    }
    created = insert.row.ToRecord();
    absl::StatusOr<std::string> queued = common::EnqueueOutbox(
        conn, kOutboxTable, {kTopicCreateMessage, params.initial_message_payload});
    return queued.status();
  });
  if (!s.ok()) return s;
  return created;
}

absl::StatusOr<ProjectRecord> ProjectStore::Get(const Actor& actor, const std::string& id) {
  ProjectRecord found;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    auto& get = conn.Prepared<GetStatement>();
    get.id = id;
    get.st.execute(true);
    if (!get.st.got_data() || !Visible(actor, get.row)) return NotFound(id);
    found = get.row.ToRecord();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return found;
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
      absl::StatusOr<PriorRequest> prior =
          ClaimRequest(conn, params.actor.id, params.request_id, "UpdateProject", params.id);
      if (!prior.ok()) return prior.status();
      if (!prior->claimed) {
        if (prior->resource_id != params.id) {
          return absl::InvalidArgumentError("request_id was already used for another project");
        }
        absl::StatusOr<RowBinding> row = LockRow(conn, params.actor, params.id);
        if (!row.ok()) return row.status();
        updated = row->ToRecord();
        return absl::OkStatus();
      }
    }
    absl::StatusOr<RowBinding> row = LockRow(conn, params.actor, params.id);
    if (!row.ok()) return row.status();
    if (params.expected_version && *params.expected_version != row->version) {
      return absl::AbortedError("etag mismatch: the project changed since it was read");
    }
    std::string display_name = params.display_name.value_or(row->display_name);
    RowBinding out;
    conn.session() << "UPDATE projects.projects SET display_name = :dn, version = version + 1,"
                      " update_time = GREATEST(now(), update_time + interval '1 microsecond')"
                      " WHERE id = CAST(:id AS uuid) RETURNING " PROJECT_COLUMNS,
        use(display_name), use(params.id), into(out.id), into(out.name), into(out.display_name),
        into(out.owner), into(out.create_us), into(out.update_us), into(out.version), into(out.run_id),
        into(out.run_state);
    updated = out.ToRecord();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return updated;
}

absl::Status ProjectStore::Delete(const DeleteParams& params) {
  return db_->Transaction([&](DbConnection& conn) -> absl::Status {
    if (!params.request_id.empty()) {
      absl::StatusOr<PriorRequest> prior =
          ClaimRequest(conn, params.actor.id, params.request_id, "DeleteProject", params.id);
      if (!prior.ok()) return prior.status();
      if (!prior->claimed) {
        return prior->resource_id == params.id
                   ? absl::OkStatus()
                   : absl::InvalidArgumentError("request_id was already used for another project");
      }
    }
    absl::StatusOr<RowBinding> row = LockRow(conn, params.actor, params.id);
    if (!row.ok()) return row.status();
    if (params.expected_version && *params.expected_version != row->version) {
      return absl::AbortedError("etag mismatch: the project changed since it was read");
    }
    conn.session() << "UPDATE projects.projects SET delete_time = now(), version = version + 1"
                      " WHERE id = CAST(:id AS uuid)",
        use(params.id);
    for (auto [topic, payload] : {std::pair{kTopicPurgeMessages, &params.purge_payload},
                                  std::pair{kTopicCancelRuns, &params.cancel_payload}}) {
      absl::StatusOr<std::string> queued = common::EnqueueOutbox(conn, kOutboxTable, {topic, *payload});
      if (!queued.ok()) return queued.status();
    }
    return absl::OkStatus();
  });
}

}  // namespace qai::projects
