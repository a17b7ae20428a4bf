#include "services/sandbox/store.h"

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/auth.h"
#include "common/ids.h"
#include "common/pg_arrays.h"
#include "common/status_macros.h"
#include "services/sandbox/manifest.h"

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

// The advisory lock of the blobs: shared by every snapshot save, exclusive for a purge's
// removal of blobs no snapshot lists any more.
constexpr char kLockBlobsShared[] =
    "SELECT 1 FROM pg_advisory_xact_lock_shared(hashtextextended('sandbox.blobs', 22))";
constexpr char kLockBlobsExclusive[] =
    "SELECT 1 FROM pg_advisory_xact_lock(hashtextextended('sandbox.blobs', 22))";

// Manifest: a snapshot's manifest as stored, and each distinct content by its hash.
struct Manifest {
  std::string stored;
  std::map<std::string, const std::string*> content_of;
};
absl::StatusOr<Manifest> MakeManifest(const Files& files) {
  Manifest m;
  ManifestEntries entries;
  for (const auto& [path, content] : files) {
    std::string hash = common::Sha256Digest(content);
    m.content_of.emplace(hash, &content);
    entries.emplace(path, std::move(hash));
  }
  QAI_ASSIGN_OR_RETURN(m.stored, EncodeManifest(entries));
  return m;
}

// Missing: those of `hashes` (raw SHA-256) that no blob has yet.
std::vector<std::string> Missing(DbConnection& conn, const std::vector<std::string>& hashes) {
  std::set<std::string> missing(hashes.begin(), hashes.end());
  // SOCI binds by reference: every bound value is a named string, never a temporary.
  const std::string array = common::PgBase64Array(hashes);
  soci::rowset<std::string> known =
      (conn.session().prepare << "SELECT encode(hash, 'base64') FROM sandbox.blobs WHERE hash IN"
                                 " (SELECT decode(h, 'base64') FROM unnest(CAST(:h AS text[])) h)",
       use(array));
  for (const std::string& hash : known) {
    std::string raw;
    if (absl::Base64Unescape(hash, &raw)) missing.erase(raw);
  }
  return {missing.begin(), missing.end()};
}

// StoreContents: the manifest's contents not stored yet (only those are sent), and that the
// project uses each of them.
void StoreContents(DbConnection& conn, const std::string& project_id, const Manifest& m) {
  std::vector<std::string> hashes;
  for (const auto& [hash, content] : m.content_of) hashes.push_back(hash);
  std::vector<std::string> new_hashes = Missing(conn, hashes), new_contents;
  for (const std::string& hash : new_hashes) new_contents.push_back(*m.content_of.at(hash));
  const std::string new_hash_array = common::PgBase64Array(new_hashes),
                    new_content_array = common::PgBase64Array(new_contents);
  conn.session()
      << "INSERT INTO sandbox.blobs (hash, size, content)"
         " SELECT decode(h, 'base64'), octet_length(decode(c, 'base64')), decode(c, 'base64')"
         " FROM unnest(CAST(:h AS text[]), CAST(:c AS text[])) AS t(h, c)"
         " ON CONFLICT (hash) DO NOTHING",
      use(new_hash_array), use(new_content_array);
  const std::string hash_array = common::PgBase64Array(hashes);
  conn.session() << "INSERT INTO sandbox.project_blobs (project_id, hash)"
                    " SELECT CAST(:p AS uuid), decode(h, 'base64')"
                    " FROM unnest(CAST(:h AS text[])) h ON CONFLICT DO NOTHING",
      use(project_id), use(hash_array);
}

// Blob: a stored content's size, and the content when it was read.
struct Blob {
  int64_t size = 0;
  std::string content;
};

// ReadBlobs: the blobs of `hashes` (raw), by hash; an absent one is an internal error.
absl::StatusOr<std::map<std::string, Blob>> ReadBlobs(DbConnection& conn,
                                                      const std::vector<std::string>& hashes,
                                                      bool with_contents) {
  const std::string array = common::PgBase64Array(hashes);
  const int contents = with_contents ? 1 : 0;
  std::map<std::string, Blob> out;
  soci::rowset<soci::row> rows =
      (conn.session().prepare
           << "SELECT encode(hash, 'base64'), size,"
              " CASE WHEN :c = 1 THEN encode(content, 'base64') ELSE '' END FROM sandbox.blobs"
              " WHERE hash IN (SELECT decode(h, 'base64') FROM unnest(CAST(:h AS text[])) h)",
       use(contents), use(array));
  for (const soci::row& r : rows) {
    std::string hash;
    Blob blob{.size = r.get<long long>(1)};
    // PostgreSQL wraps base64 at 76 characters; the unescape skips the newlines.
    if (!absl::Base64Unescape(r.get<std::string>(0), &hash) ||
        !absl::Base64Unescape(r.get<std::string>(2), &blob.content)) {
      return absl::InternalError("a blob is unreadable");
    }
    out.emplace(std::move(hash), std::move(blob));
  }
  for (const std::string& hash : hashes) {
    if (!out.contains(hash)) return absl::InternalError("a snapshot names a blob that is gone");
  }
  return out;
}

std::vector<std::string> HashesOf(const ManifestEntries& entries) {
  std::vector<std::string> hashes;
  for (const auto& [path, hash] : entries) hashes.push_back(hash);
  return hashes;
}

// ReadFiles: the files of a manifest, with their contents.
absl::StatusOr<std::shared_ptr<const Files>> ReadFiles(DbConnection& conn,
                                                       const ManifestEntries& entries) {
  QAI_ASSIGN_OR_RETURN(auto blobs, ReadBlobs(conn, HashesOf(entries), /*with_contents=*/true));
  auto files = std::make_shared<Files>();
  for (const auto& [path, hash] : entries) files->emplace(path, blobs.at(hash).content);
  return files;
}

// ReadManifest: the snapshot's manifest (with its project), if there is such a snapshot.
struct StoredSnapshot {
  std::string project_id;
  std::string run_id;
  absl::Time create_time;
  ManifestEntries entries;
};
absl::StatusOr<std::optional<StoredSnapshot>> ReadManifest(DbConnection& conn,
                                                           const std::string& id) {
  StoredSnapshot out;
  std::string manifest_base64, manifest;
  long long create_us = 0;
  conn.session()
      << "SELECT project_id::text, COALESCE(run_id::text, ''),"
         " (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint,"
         " encode(manifest, 'base64') FROM sandbox.snapshots WHERE id = CAST(:id AS uuid)",
      into(out.project_id), into(out.run_id), into(create_us), into(manifest_base64), use(id);
  if (!conn.session().got_data()) return std::nullopt;
  if (!absl::Base64Unescape(manifest_base64, &manifest)) {
    return absl::InternalError(absl::StrCat("snapshot ", id, ": its manifest is unreadable"));
  }
  QAI_ASSIGN_OR_RETURN(out.entries, DecodeManifest(manifest));
  out.create_time = absl::FromUnixMicros(create_us);
  return out;
}

// ReadSnapshot: the snapshot `id`, if there is one.
absl::StatusOr<std::optional<SnapshotRecord>> ReadSnapshot(DbConnection& conn,
                                                           const std::string& id) {
  QAI_ASSIGN_OR_RETURN(std::optional<StoredSnapshot> stored, ReadManifest(conn, id));
  if (!stored) return std::nullopt;
  QAI_ASSIGN_OR_RETURN(std::shared_ptr<const Files> files, ReadFiles(conn, stored->entries));
  return SnapshotRecord{.id = id,
                        .project_id = stored->project_id,
                        .run_id = stored->run_id,
                        .files = std::move(files),
                        .create_time = stored->create_time};
}

// RemoveUnused: the project no longer uses any blob, and the blobs it used that no other
// project uses go.
void RemoveUnused(DbConnection& conn, const std::string& project_id) {
  conn.session() << kLockBlobsExclusive;
  std::vector<std::string> used;
  soci::rowset<std::string> rows =
      (conn.session().prepare << "DELETE FROM sandbox.project_blobs WHERE project_id = CAST(:p AS "
                                 "uuid) RETURNING encode(hash, 'base64')",
       use(project_id));
  for (const std::string& hash : rows) {
    std::string raw;
    if (absl::Base64Unescape(hash, &raw)) used.push_back(std::move(raw));
  }
  if (used.empty()) return;
  const std::string array = common::PgBase64Array(used);
  conn.session() << "DELETE FROM sandbox.blobs b WHERE b.hash IN"
                    " (SELECT decode(h, 'base64') FROM unnest(CAST(:h AS text[])) h)"
                    " AND NOT EXISTS (SELECT 1 FROM sandbox.project_blobs u WHERE u.hash = b.hash)",
      use(array);
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
  static const Files kNoFiles;
  // An lvalue either way: the manifest points into these files.
  const Files& files = snapshot.files ? *snapshot.files : kNoFiles;
  QAI_ASSIGN_OR_RETURN(const Manifest manifest, MakeManifest(files));
  const std::string manifest_base64 = absl::Base64Escape(manifest.stored);
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    conn.session() << kLockProjectShared, use(snapshot.project_id);
    QAI_RETURN_IF_ERROR(RefuseIfPurged(conn, snapshot.project_id));
    soci::indicator run_ind = snapshot.run_id.empty() ? soci::i_null : soci::i_ok;
    conn.session() << kLockBlobsShared;
    int inserted = 0;
    conn.session() << "INSERT INTO sandbox.snapshots (id, project_id, run_id, manifest)"
                      " VALUES (CAST(:id AS uuid), CAST(:p AS uuid), CAST(:r AS uuid),"
                      " decode(:m, 'base64')) ON CONFLICT (id) DO NOTHING RETURNING 1",
        use(snapshot.id), use(snapshot.project_id), use(snapshot.run_id, run_ind),
        use(manifest_base64), into(inserted);
    if (conn.session().got_data()) StoreContents(conn, snapshot.project_id, manifest);
    QAI_ASSIGN_OR_RETURN(std::optional<StoredSnapshot> stored, ReadManifest(conn, snapshot.id));
    if (!stored || stored->project_id != snapshot.project_id) {
      return absl::AlreadyExistsError(
          absl::StrCat("snapshot ", snapshot.id, " belongs to another project"));
    }
    // What is stored is these files (the usual case): they need not be read back.
    QAI_ASSIGN_OR_RETURN(std::string stored_manifest, EncodeManifest(stored->entries));
    if (stored_manifest == manifest.stored) {
      out = SnapshotRecord{.id = snapshot.id,
                           .project_id = snapshot.project_id,
                           .run_id = stored->run_id,
                           .files = snapshot.files ? snapshot.files : std::make_shared<Files>(),
                           .create_time = stored->create_time};
      return absl::OkStatus();
    }
    QAI_ASSIGN_OR_RETURN(out, ReadSnapshot(conn, snapshot.id));  // a repeat that differs
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

absl::StatusOr<std::vector<ListedFile>> SandboxStore::ListSnapshot(
    const std::string& project_id, const std::string& id, const std::vector<std::string>& paths) {
  QAI_ASSIGN_OR_RETURN(SnapshotListing listing, ListSnapshotFiles(id));
  if (listing.project_id != project_id) {
    return absl::NotFoundError(absl::StrCat("snapshot ", id, " not found"));
  }
  if (!paths.empty()) {
    const std::set<std::string> wanted(paths.begin(), paths.end());
    std::erase_if(listing.files, [&](const ListedFile& f) { return !wanted.contains(f.path); });
  }
  return std::move(listing.files);
}

absl::StatusOr<SnapshotListing> SandboxStore::ListSnapshotFiles(const std::string& id) {
  SnapshotListing out;
  QAI_RETURN_IF_ERROR(db_->Run([&](DbConnection& conn) -> absl::Status {
    out.files.clear();
    QAI_ASSIGN_OR_RETURN(std::optional<StoredSnapshot> stored, ReadManifest(conn, id));
    if (!stored) return absl::NotFoundError(absl::StrCat("snapshot ", id, " not found"));
    QAI_ASSIGN_OR_RETURN(auto blobs, ReadBlobs(conn, HashesOf(stored->entries), false));
    for (const auto& [path, hash] : stored->entries) {
      out.files.push_back({.path = path, .size = blobs.at(hash).size, .sha256 = hash});
    }
    out.project_id = std::move(stored->project_id);
    out.create_time = stored->create_time;
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> SandboxStore::ReadContents(
    const std::vector<std::string>& hashes) {
  std::map<std::string, std::string> out;
  QAI_RETURN_IF_ERROR(db_->Run([&](DbConnection& conn) -> absl::Status {
    out.clear();
    absl::StatusOr<std::map<std::string, Blob>> blobs = ReadBlobs(conn, hashes, true);
    if (!blobs.ok()) return absl::NotFoundError("a content is gone (its projects were purged)");
    for (auto& [hash, blob] : *blobs) out.emplace(hash, std::move(blob.content));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::string> SandboxStore::ReadContentSlice(const std::string& hash, int64_t offset,
                                                           int64_t length) {
  std::string out;
  QAI_RETURN_IF_ERROR(db_->Run([&](DbConnection& conn) -> absl::Status {
    const std::string hash_base64 = absl::Base64Escape(hash);
    const long long from = offset + 1, count = length;  // SQL counts bytes from 1
    std::string slice_base64;
    conn.session() << "SELECT encode(substring(content FROM :o FOR :n), 'base64')"
                      " FROM sandbox.blobs WHERE hash = decode(:h, 'base64')",
        use(from), use(count), use(hash_base64), into(slice_base64);
    if (!conn.session().got_data()) {
      return absl::NotFoundError("a content is gone (its projects were purged)");
    }
    if (!absl::Base64Unescape(slice_base64, &out)) return absl::InternalError("unreadable blob");
    return absl::OkStatus();
  }));
  return out;
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
    RemoveUnused(conn, project_id);
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
