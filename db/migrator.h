#pragma once
// Applying migrations to a database, safely from any number of processes at once.
//
//   absl::StatusOr<int> applied =
//       qai::db::ApplyMigrations(url, qai::db::EmbeddedMigrations());
//   if (!applied.ok()) { ... }  // nothing of this run was applied
//
// Everything happens in one transaction holding a transaction-level advisory lock: a second
// migrator waits for the first, then finds nothing left to do. Applied migrations are recorded
// in `public.qai_schema_migrations(service, version, name, checksum, applied_time)`.

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "db/migrations.h"

namespace qai::db {

// kMigrationLockKey: the pg_advisory_xact_lock key that serialises migrators.
inline constexpr long long kMigrationLockKey = 0x5141494d49475241;  // "QAIMIGRA"

// AppliedCallback: told of each migration a run applied, after the run committed.
using AppliedCallback = std::function<void(const Migration&)>;

// ApplyMigrations: applies, in (service, version) order, every migration of `migrations` not
// yet recorded in the database at `database_url`, restricted to `only_services` when that is
// not empty, and returns how many it applied. All or nothing: on any error no migration of
// this run remains applied. Errors: Unavailable when the database cannot be reached;
// FailedPrecondition naming service and version when an applied migration's checksum differs
// from the given one; InvalidArgument for duplicate migrations or an unknown service in
// `only_services`; Internal (naming the migration) when a migration's SQL fails. Messages
// never contain the URL's password.
[[nodiscard]] absl::StatusOr<int> ApplyMigrations(std::string_view database_url,
                                                  const std::vector<Migration>& migrations,
                                                  std::span<const std::string> only_services = {},
                                                  const AppliedCallback& on_applied = {});

}  // namespace qai::db
