#include "services/sandbox/replica_store.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "services/sandbox/store.h"

namespace qai::sandbox {
namespace {

using common::DbConnection;
using soci::into;
using soci::use;

// AliveSql: SQL true while a session holds the lock of the incarnation `id_expr` names.
std::string AliveSql(std::string_view id_expr) {
  return absl::StrCat(
      "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
      " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
      " AND l.classid = ",
      ReplicaStore::kLockClass, " AND l.objid = CAST(", common::ToAbsl(id_expr),
      " AS oid) AND l.objsubid = 2)");
}

// Assign: the project goes to `:r` unless a live other replica has it or it was purged; the row
// comes back when it went (or was) there.
const std::string kAssign = absl::StrCat(
    "WITH v AS (SELECT CAST(:p AS uuid) AS project_id, CAST(:r AS integer) AS replica_id)"
    " INSERT INTO sandbox.assignments AS a (project_id, replica_id)"
    " SELECT v.project_id, v.replica_id FROM v WHERE NOT EXISTS"
    "   (SELECT 1 FROM sandbox.purged_projects pp WHERE pp.project_id = v.project_id)"
    " ON CONFLICT (project_id) DO UPDATE SET replica_id = EXCLUDED.replica_id, assign_time = now()"
    "   WHERE a.replica_id = EXCLUDED.replica_id OR NOT ",
    AliveSql("a.replica_id"), " RETURNING replica_id");

// Holder: the live replica the project is assigned to, if any.
std::optional<Replica> Holder(DbConnection& conn, const std::string& project_id) {
  Replica r;
  conn.session() << absl::StrCat(
      "SELECT r.id, r.name, r.address FROM sandbox.assignments a"
      " JOIN sandbox.replicas r ON r.id = a.replica_id"
      " WHERE a.project_id = CAST(:p AS uuid) AND ",
      AliveSql("r.id")),
      into(r.id), into(r.name), into(r.address), use(project_id);
  if (!conn.session().got_data()) return std::nullopt;
  return r;
}

// TryAssign: kAssign; whether the project is (now) `replica`'s.
bool TryAssign(DbConnection& conn, const std::string& project_id, int replica) {
  int assigned = 0;
  conn.session() << kAssign, into(assigned), use(project_id), use(replica);
  return conn.session().got_data();
}

}  // namespace

absl::StatusOr<Replica> ReplicaStore::Register(const std::string& name,
                                               const std::string& address) {
  Replica self{.name = name, .address = address};
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    const long long forget_s = absl::ToInt64Seconds(kForgetAfter);
    conn.session() << absl::StrCat(
        "DELETE FROM sandbox.replicas r"
        " WHERE r.start_time < now() - make_interval(secs => :s) AND NOT ",
        AliveSql("r.id")),
        use(forget_s);
    conn.session() << "INSERT INTO sandbox.replicas (name, address) VALUES (:n, :a) RETURNING id",
        into(self.id), use(name), use(address);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return self;
}

absl::Status ReplicaStore::Reregister(const Replica& self) {
  return db_->Run([&](DbConnection& conn) -> absl::Status {
    conn.session() << "INSERT INTO sandbox.replicas (id, name, address) OVERRIDING SYSTEM VALUE"
                      " VALUES (:id, :n, :a) ON CONFLICT (id) DO NOTHING",
        use(self.id), use(self.name), use(self.address);
    return absl::OkStatus();
  });
}

std::vector<common::PgListener::Statement> ReplicaStore::LockStatements(int id) {
  return {
      // Ignored on a Unix socket, where the kernel tells of a dead peer at once.
      {.sql = "SELECT set_config('tcp_keepalives_idle', '10', false), "
              "set_config('tcp_keepalives_interval', '5', false),"
              " set_config('tcp_keepalives_count', '3', false)"},
      {.sql = "SELECT pg_advisory_lock($1::integer, $2::integer)",
       .params = {absl::StrCat(kLockClass), absl::StrCat(id)}},
  };
}

absl::StatusOr<bool> ReplicaStore::Alive(int id) {
  int alive = 0;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    conn.session() << absl::StrCat("SELECT CASE WHEN ", sandbox::AliveSql(":id"),
                                   " THEN 1 ELSE 0 END"),
        into(alive), use(id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return alive == 1;
}

absl::StatusOr<std::vector<Replica>> ReplicaStore::LiveOthers(int self) {
  std::vector<Replica> out;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    soci::rowset<soci::row> rows =
        (conn.session().prepare << absl::StrCat(
             "SELECT r.id, r.name, r.address FROM sandbox.replicas r WHERE r.id <> :id AND ",
             AliveSql("r.id"), " ORDER BY r.id"),
         use(self));
    for (const soci::row& row : rows) {
      out.push_back({.id = row.get<int>(0),
                     .name = row.get<std::string>(1),
                     .address = row.get<std::string>(2)});
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<Replica> ReplicaStore::Locate(const std::string& project_id) {
  std::optional<Replica> out;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    // Twice at most: a replica that dies between the choice and the assignment is passed over.
    for (int attempt = 0; attempt < 2 && !out; ++attempt) {
      if ((out = Holder(conn, project_id))) break;
      QAI_RETURN_IF_ERROR(RefuseIfPurged(conn, project_id));
      Replica best;
      conn.session() << absl::StrCat(
          "SELECT r.id, r.name, r.address FROM sandbox.replicas r WHERE ", AliveSql("r.id"),
          " ORDER BY md5(:p || '/' || r.name) DESC, r.id DESC LIMIT 1"),
          into(best.id), into(best.name), into(best.address), use(project_id);
      if (!conn.session().got_data())
        return absl::UnavailableError("no sandbox replica is running");
      if (TryAssign(conn, project_id, best.id)) out = best;
    }
    if (!out)
      return absl::UnavailableError(
          absl::StrCat("project ", project_id, " could not be placed on a replica"));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return *std::move(out);
}

absl::Status ReplicaStore::Claim(const std::string& project_id, int self) {
  return db_->Run([&](DbConnection& conn) -> absl::Status {
    // Mostly it is this replica's already (LocateWorkspace just said so): a read, no write.
    if (std::optional<Replica> holder = Holder(conn, project_id); holder && holder->id == self) {
      return absl::OkStatus();
    }
    if (TryAssign(conn, project_id, self)) return absl::OkStatus();
    if (std::optional<Replica> holder = Holder(conn, project_id)) {
      return absl::AbortedError(absl::StrCat("project ", project_id,
                                             " is served by sandbox replica ", holder->name, " (",
                                             holder->address, "); locate it again"));
    }
    QAI_RETURN_IF_ERROR(RefuseIfPurged(conn, project_id));
    return absl::AbortedError(
        absl::StrCat("project ", project_id, " changed replicas meanwhile; locate it again"));
  });
}

}  // namespace qai::sandbox
