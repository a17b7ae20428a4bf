#pragma once
// SandboxStore: the `sandbox` schema behind plain structs: snapshots (immutable; previews serve
// them), the user allocated to each project, and purged projects' tombstones.
//
// A purge takes an exclusive advisory lock on its project and every write for a project a
// shared one, and writes check the tombstone under it: once PurgeProject returns, nothing is
// stored for that project again, not even by a call that began before it.
//
//   SandboxStore store(pool);
//   absl::StatusOr<uint32_t> uid = store.UserFor(project_id, 1000000000, 1000000000);
//   absl::StatusOr<SnapshotRecord> saved = store.SaveSnapshot({.id = ..., .files = ...});

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/db_pool.h"

namespace qai::sandbox {

// NOTIFY channel: snapshots were deleted ("<id>,<id>,...", up to kSnapshotsPerNotify ids in one
// notification), so every replica's preview server stops showing them from memory.
inline constexpr char kSnapshotsPurgedChannel[] = "qai_snapshots_purged";
inline constexpr size_t kSnapshotsPerNotify = 100;  // 3.7 KB: a payload must stay under 8000 bytes

// NOTIFY channel: a project was purged (its id), so every replica removes its copy of the
// project's workspace.
inline constexpr char kProjectPurgedChannel[] = "qai_project_purged";

// Files: path -> content.
using Files = std::map<std::string, std::string>;

// SnapshotRecord: one row of sandbox.snapshots.
struct SnapshotRecord {
  std::string id;
  std::string project_id;
  std::string run_id;  // may be empty
  std::shared_ptr<const Files> files;
  absl::Time create_time;
};

// ListedFile: a snapshot's file as ListSnapshot lists it.
struct ListedFile {
  std::string path;
  int64_t size = 0;
  std::string sha256;  // raw, 32 bytes
};

// SnapshotListing: a snapshot's files without their contents, and whose snapshot it is.
struct SnapshotListing {
  std::string project_id;
  absl::Time create_time;
  std::vector<ListedFile> files;  // in path order
};

// RefuseIfPurged: FAILED_PRECONDITION when the project was purged (on conn, in its transaction).
[[nodiscard]] absl::Status RefuseIfPurged(common::DbConnection& conn,
                                          const std::string& project_id);

class SandboxStore {
 public:
  explicit SandboxStore(common::DbPool* db) : db_(db) {}

  // UserFor: the uid allocated to the project, allocating the next one of first_uid ..
  // first_uid + count - 1 on its first call. FAILED_PRECONDITION for a purged project;
  // RESOURCE_EXHAUSTED when the range is used up.
  [[nodiscard]] absl::StatusOr<uint32_t> UserFor(const std::string& project_id, uint32_t first_uid,
                                                 uint32_t count);

  // SaveSnapshot: stores the snapshot unless one with its id exists (then that one is
  // returned: a repeat is harmless). ALREADY_EXISTS when the id belongs to another project;
  // FAILED_PRECONDITION for a purged project.
  [[nodiscard]] absl::StatusOr<SnapshotRecord> SaveSnapshot(const SnapshotRecord& snapshot);

  // GetSnapshot: NOT_FOUND when there is no such snapshot.
  [[nodiscard]] absl::StatusOr<SnapshotRecord> GetSnapshot(const std::string& id);

  // ListSnapshot: the project's snapshot's files in path order (only those of `paths` when it
  // is not empty), without contents (ReadContents reads them); NOT_FOUND when the project has no
  // such snapshot.
  [[nodiscard]] absl::StatusOr<std::vector<ListedFile>> ListSnapshot(
      const std::string& project_id, const std::string& id,
      const std::vector<std::string>& paths = {});

  // ListSnapshotFiles: the snapshot's files, without contents; NOT_FOUND when there is no such
  // snapshot.
  [[nodiscard]] absl::StatusOr<SnapshotListing> ListSnapshotFiles(const std::string& id);

  // ReadContents: the contents of `hashes` (raw SHA-256), by hash; NOT_FOUND when one is gone
  // (every project that used it was purged).
  [[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> ReadContents(
      const std::vector<std::string>& hashes);

  // ReadContentSlice: up to `length` bytes of the content `hash` from byte `offset`; NOT_FOUND
  // when it is gone.
  [[nodiscard]] absl::StatusOr<std::string> ReadContentSlice(const std::string& hash,
                                                             int64_t offset, int64_t length);

  // Purge: deletes the project's snapshots (announced on kSnapshotsPurgedChannel at commit) and
  // its replica assignment, leaves its tombstone, and announces it on kProjectPurgedChannel;
  // idempotent.
  [[nodiscard]] absl::Status Purge(const std::string& project_id);

  // PurgedAmong: which of the projects were purged.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> PurgedAmong(
      const std::vector<std::string>& project_ids);

 private:
  common::DbPool* const db_;
};

}  // namespace qai::sandbox
