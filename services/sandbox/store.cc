#include "services/sandbox/store.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/ids.h"
#include "common/status_macros.h"

namespace qai::sandbox {
namespace {

using common::DbConnection;
using soci::into;
using soci::use;

// The advisory lock class of a project's writes (shared) and its purge (exclusive).
constexpr char kLockProjectShared[] =
    "SELECT 1 FROM pg_advisory_xact_lock_shared(hashtextextended(:p, 21))";
constexpr char kLockProjectExclusive[] =
    "SELECT 1 FROM pg_advisory_xact_lock(hashtextextended(:p, 21))";

std::string FilesJson(const Files& files) {
  nlohmann::json json = nlohmann::json::object();
  for (const auto& [path, content] : files) json[path] = content;
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<std::shared_ptr<const Files>> ParseFiles(const std::string& text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return absl::InternalError("a snapshot's files are not a JSON object");
  auto files = std::make_shared<Files>();
  for (auto& [path, content] : json.items()) {
    if (content.is_string()) files->emplace(path, content.get<std::string>());
  }
  return files;
}

// ReadSnapshot: the snapshot `id`, if there is one.
absl::StatusOr<std::optional<SnapshotRecord>> ReadSnapshot(DbConnection& conn,
                                                           const std::string& id) {
  std::string project_id, run_id, files;
  long long create_us = 0;
  conn.session() << "SELECT project_id::text, COALESCE(run_id::text, ''), files::text,"
                    " (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint"
                    " FROM sandbox.snapshots WHERE id = CAST(:id AS uuid)",
      into(project_id), into(run_id), into(files), into(create_us), use(id);
  if (!conn.session().got_data()) return std::nullopt;
  QAI_ASSIGN_OR_RETURN(std::shared_ptr<const Files> parsed, ParseFiles(files));
  return SnapshotRecord{.id = id,
                        .project_id = project_id,
                        .run_id = run_id,
                        .files = std::move(parsed),
                        .create_time = absl::FromUnixMicros(create_us)};
}

}  // namespace

absl::Status RefuseIfPurged(DbConnection& conn, const std::string& project_id) {
  int purged = 0;
  conn.session()
      << "SELECT count(*) FROM sandbox.purged_projects WHERE project_id = CAST(:p AS uuid)",
      into(purged), use(project_id);
  if (purged > 0)
    return absl::FailedPreconditionError(absl::StrCat("project ", project_id, " was deleted"));
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> SandboxStore::UserFor(const std::string& project_id, uint32_t first_uid,
                                               uint32_t count) {
  long long uid = 0;
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    conn.session() << kLockProjectShared, use(project_id);
    QAI_RETURN_IF_ERROR(RefuseIfPurged(conn, project_id));
    conn.session() << "SELECT uid FROM sandbox.users WHERE project_id = CAST(:p AS uuid)",
        into(uid), use(project_id);
    if (conn.session().got_data()) return absl::OkStatus();
    const long long first = first_uid;
    conn.session() << "INSERT INTO sandbox.users (project_id, uid)"
                      " VALUES (CAST(:p AS uuid), :first + nextval('sandbox.user_index'))"
                      " ON CONFLICT (project_id) DO NOTHING",
        use(project_id), use(first);
    conn.session() << "SELECT uid FROM sandbox.users WHERE project_id = CAST(:p AS uuid)",
        into(uid), use(project_id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  // A uid outside today's range (allocated under another configuration, or past its end)
  // is never handed out: two projects must not share one.
  if (uid < first_uid || uid > static_cast<long long>(first_uid) + count - 1) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "sandbox: project ", project_id, " has uid ", uid, ", outside QAI_SANDBOX_UIDS (",
        first_uid, "-", static_cast<long long>(first_uid) + count - 1,
        "): the range is used up or was changed"));
  }
  return static_cast<uint32_t>(uid);
}

absl::StatusOr<SnapshotRecord> SandboxStore::SaveSnapshot(const SnapshotRecord& snapshot) {
  std::optional<SnapshotRecord> out;
  const std::string files = FilesJson(snapshot.files ? *snapshot.files : Files{});
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    conn.session() << kLockProjectShared, use(snapshot.project_id);
    QAI_RETURN_IF_ERROR(RefuseIfPurged(conn, snapshot.project_id));
    soci::indicator run_ind = snapshot.run_id.empty() ? soci::i_null : soci::i_ok;
    conn.session()
        << "INSERT INTO sandbox.snapshots (id, project_id, run_id, files)"
           " VALUES (CAST(:id AS uuid), CAST(:p AS uuid), CAST(:r AS uuid), CAST(:f AS jsonb))"
           " ON CONFLICT (id) DO NOTHING",
        use(snapshot.id), use(snapshot.project_id), use(snapshot.run_id, run_ind), use(files);
    QAI_ASSIGN_OR_RETURN(std::optional<SnapshotRecord> stored, ReadSnapshot(conn, snapshot.id));
    if (!stored || stored->project_id != snapshot.project_id) {
      return absl::AlreadyExistsError(
          absl::StrCat("snapshot ", snapshot.id, " belongs to another project"));
    }
    out = *std::move(stored);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return *std::move(out);
}

absl::StatusOr<SnapshotRecord> SandboxStore::GetSnapshot(const std::string& id) {
  std::optional<SnapshotRecord> out;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    QAI_ASSIGN_OR_RETURN(std::optional<SnapshotRecord> read, ReadSnapshot(conn, id));
    out = std::move(read);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!out) return absl::NotFoundError(absl::StrCat("snapshot ", id, " not found"));
  return *std::move(out);
}

absl::Status SandboxStore::Purge(const std::string& project_id) {
  return db_->Transaction([&](DbConnection& conn) -> absl::Status {
    conn.session() << kLockProjectExclusive, use(project_id);
    conn.session() << "INSERT INTO sandbox.purged_projects (project_id) VALUES (CAST(:p AS uuid))"
                      " ON CONFLICT (project_id) DO NOTHING",
        use(project_id);
    std::vector<std::string> purged;
    soci::rowset<std::string> rows =
        (conn.session().prepare << "DELETE FROM sandbox.snapshots WHERE project_id = CAST(:p AS "
                                   "uuid) RETURNING id::text",
         use(project_id));
    for (const std::string& id : rows) purged.push_back(id);
    conn.session() << "DELETE FROM sandbox.assignments WHERE project_id = CAST(:p AS uuid)",
        use(project_id);
    const std::string project_channel = kProjectPurgedChannel;
    conn.session() << "SELECT pg_notify(:ch, :p)", use(project_channel), use(project_id);
    const std::string channel = kSnapshotsPurgedChannel;
    for (size_t i = 0; i < purged.size(); i += kSnapshotsPerNotify) {
      const std::string ids =
          absl::StrJoin(purged.begin() + i,
                        purged.begin() + std::min(purged.size(), i + kSnapshotsPerNotify), ",");
      conn.session() << "SELECT pg_notify(:ch, :ids)", use(channel), use(ids);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::string>> SandboxStore::PurgedAmong(
    const std::vector<std::string>& project_ids) {
  std::vector<std::string> purged;
  // A uuid[] literal: the ids are checked to be UUIDs, so nothing in them needs quoting.
  std::vector<std::string> ids;
  for (const std::string& id : project_ids) {
    if (common::IsUuid(id)) ids.push_back(id);
  }
  if (ids.empty()) return purged;
  const std::string array = absl::StrCat("{", absl::StrJoin(ids, ","), "}");
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    soci::rowset<std::string> rows =
        (conn.session().prepare << "SELECT project_id::text FROM sandbox.purged_projects"
                                   " WHERE project_id = ANY(CAST(:ids AS uuid[]))",
         use(array));
    for (const std::string& id : rows) purged.push_back(id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return purged;
}

}  // namespace qai::sandbox
