#include "services/orchestrator/store/version_store.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace qai::orchestrator {
namespace {

using common::DbConnection;
using soci::into;
using soci::use;

// The columns of a VersionRecord, in VersionRow's order.
constexpr char kVersionColumns[] =
    "project_id::text, number, run_id::text, COALESCE(message_id::text, ''), snapshot_id::text,"
    " sandbox_url, title, author, COALESCE(restored_from, 0),"
    " (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint,"
    " COALESCE(forked_from_project_id::text, '')";

// VersionRow: a row of kVersionColumns, bound to a prepared statement.
struct VersionRow {
  std::string project_id, run_id, message_id, snapshot_id, sandbox_url, title, author, fork;
  int number = 0, restored_from = 0;
  long long create_us = 0;

  VersionRecord ToRecord() const {
    return {.project_id = project_id,
            .number = number,
            .run_id = run_id,
            .message_id = message_id,
            .snapshot_id = snapshot_id,
            .sandbox_url = sandbox_url,
            .title = title,
            .author = author,
            .restored_from = restored_from,
            .create_time = absl::FromUnixMicros(create_us),
            .forked_from_project_id = fork};
  }
};

template <typename Query>
Query&& BindRow(Query&& q, VersionRow& r) {
  q, into(r.project_id), into(r.number), into(r.run_id), into(r.message_id), into(r.snapshot_id),
      into(r.sandbox_url), into(r.title), into(r.author), into(r.restored_from), into(r.create_us),
      into(r.fork);
  return std::forward<Query>(q);
}

// The reads, prepared once per pooled connection (DbConnection::Prepared): a listing is then
// one round trip, planned once, instead of a prepare, an execute and a deallocate.
struct ListStatement {
  std::string project_id;
  int below = 0, limit = 0;
  VersionRow row;
  soci::statement st;
  explicit ListStatement(soci::session& s)
      : st(BindRow((s.prepare << absl::StrCat(
                        "SELECT ", kVersionColumns,
                        " FROM orchestrator.versions WHERE project_id = CAST(:p AS uuid)"
                        " AND number < :b ORDER BY number DESC LIMIT :n"),
                    use(project_id), use(below), use(limit)),
                   row)) {}
};

struct GetStatement {
  std::string project_id;
  int number = 0;
  VersionRow row;
  soci::statement st;
  explicit GetStatement(soci::session& s)
      : st(BindRow((s.prepare << absl::StrCat(
                        "SELECT ", kVersionColumns,
                        " FROM orchestrator.versions WHERE project_id = CAST(:p AS uuid)"
                        " AND number = :n"),
                    use(project_id), use(number)),
                   row)) {}
};

}  // namespace

absl::StatusOr<int> RecordVersion(DbConnection& conn, const VersionRecord& v) {
  int locked = 0;
  conn.session() << "SELECT 1 FROM orchestrator.workspaces WHERE project_id = CAST(:p AS uuid)"
                    " FOR UPDATE",
      use(v.project_id), into(locked);
  if (!conn.session().got_data()) {
    return absl::InternalError(absl::StrCat("project ", v.project_id, " has no workspace row"));
  }
  const std::string message = v.message_id;
  soci::indicator message_ind = message.empty() ? soci::i_null : soci::i_ok;
  const int restored = v.restored_from;
  soci::indicator restored_ind = restored == 0 ? soci::i_null : soci::i_ok;
  soci::indicator fork_ind = v.forked_from_project_id.empty() ? soci::i_null : soci::i_ok;
  int number = 0;
  conn.session() << "INSERT INTO orchestrator.versions (project_id, number, run_id, message_id,"
                    " snapshot_id, sandbox_url, title, author, restored_from,"
                    " forked_from_project_id)"
                    " SELECT CAST(:p AS uuid), COALESCE(max(number), 0) + 1, CAST(:r AS uuid),"
                    " CAST(:m AS uuid), CAST(:s AS uuid), :url, :title, :author, :restored,"
                    " CAST(:fork AS uuid)"
                    " FROM orchestrator.versions WHERE project_id = CAST(:p2 AS uuid)"
                    " RETURNING number",
      use(v.project_id), use(v.run_id), use(message, message_ind), use(v.snapshot_id),
      use(v.sandbox_url), use(v.title), use(v.author), use(restored, restored_ind),
      use(v.forked_from_project_id, fork_ind), use(v.project_id), into(number);
  return number;
}

absl::StatusOr<std::vector<VersionRecord>> VersionStore::List(const std::string& project_id,
                                                              int limit,
                                                              std::optional<int> before) {
  std::vector<VersionRecord> out;
  QAI_RETURN_IF_ERROR(db_->Run([&](DbConnection& conn) -> absl::Status {
    out.clear();
    ListStatement& list = conn.Prepared<ListStatement>();
    list.project_id = project_id;
    list.below = before.value_or(std::numeric_limits<int>::max());
    list.limit = limit;
    list.st.execute(false);
    while (list.st.fetch()) out.push_back(list.row.ToRecord());
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<VersionRecord> VersionStore::Get(const std::string& project_id, int number) {
  std::optional<VersionRecord> out;
  QAI_RETURN_IF_ERROR(db_->Run([&](DbConnection& conn) -> absl::Status {
    out.reset();
    GetStatement& get = conn.Prepared<GetStatement>();
    get.project_id = project_id;
    get.number = number;
    get.st.execute(false);
    while (get.st.fetch()) out = get.row.ToRecord();
    return absl::OkStatus();
  }));
  if (!out) {
    return absl::NotFoundError(absl::StrCat("project ", project_id, " has no version ", number));
  }
  return *std::move(out);
}

}  // namespace qai::orchestrator
