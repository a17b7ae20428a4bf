#pragma once
// VersionStore: a project's versions (orchestrator.versions). Every successful run makes one,
// numbered 1, 2, 3... per project, in the transaction that ends the run (RecordVersion, called
// by RunStore); a version is never changed, and goes only with its project's purge. Its files
// live in qai-sandbox, in the snapshot it names.
//
//   VersionStore versions(db);
//   absl::StatusOr<std::vector<VersionRecord>> page = versions.List(project_id, 20, std::nullopt);
//   absl::StatusOr<VersionRecord> v = versions.Get(project_id, 3);

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/db_pool.h"

namespace qai::orchestrator {

struct VersionRecord {
  std::string project_id;
  int number = 0;
  std::string run_id;      // the run that made it
  std::string message_id;  // its ASSISTANT message
  std::string snapshot_id;
  std::string sandbox_url;  // its preview
  std::string title;
  std::string author;
  int restored_from = 0;  // the version a restore brought back; 0: none
  absl::Time create_time;
  std::string forked_from_project_id;  // restored_from's project, when another (a fork's start)
};

// RecordVersion: the project's next version (`v.number` is ignored), on `conn` in the
// transaction that ends the run that made it; the project's workspace row must exist (its
// lock orders the numbers). Returns its number.
[[nodiscard]] absl::StatusOr<int> RecordVersion(common::DbConnection& conn, const VersionRecord& v);

class VersionStore {
 public:
  explicit VersionStore(common::DbPool* db) : db_(db) {}

  // List: up to `limit` of the project's versions, newest first, below `before` (a number).
  [[nodiscard]] absl::StatusOr<std::vector<VersionRecord>> List(const std::string& project_id,
                                                                int limit,
                                                                std::optional<int> before);
  // Get: NOT_FOUND when the project has no such version.
  [[nodiscard]] absl::StatusOr<VersionRecord> Get(const std::string& project_id, int number);

 private:
  common::DbPool* const db_;
};

}  // namespace qai::orchestrator
