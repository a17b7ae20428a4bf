#include "db/migrator.h"

#include <libpq-fe.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/database_url.h"
#include "common/db_pool.h"
#include "common/pg_pipeline.h"
#include "common/status_macros.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"

namespace qai::db {
using common::CodeForSqlState;
using common::ConnectString;
using common::NativeConnection;
using common::RedactSecrets;
namespace {

absl::Status ErrorStatus(soci::session& sql, std::string_view sql_state, std::string_view what,
                         std::string_view step, std::string_view url) {
  absl::StatusCode code = CodeForSqlState(sql_state);
  if (PGconn* conn = NativeConnection(sql); conn == nullptr || PQstatus(conn) == CONNECTION_BAD) {
    code = absl::StatusCode::kUnavailable;
  }
  return absl::Status(
      code, absl::StrCat(
                std::string(step), " failed",
                sql_state.empty() ? "" : absl::StrCat(" (SQLSTATE ", std::string(sql_state), ")"),
                ": ", RedactSecrets(std::string(what), url)));
}

// Runs a migration's script as written: several statements, and text that SOCI would take for
// placeholders (":name" in comments or dollar-quoted bodies), go to the server untouched.
// Throws nothing; returns the SQLSTATE and message of a failure.
std::optional<std::pair<std::string, std::string>> ExecuteScript(soci::session& sql,
                                                                 const std::string& script) {
  PGconn* conn = NativeConnection(sql);
  if (conn == nullptr) return std::make_pair(std::string(), std::string("no connection"));
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn, script.c_str()), &PQclear);
  ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    return std::nullopt;
  }
  const char* state = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  const char* message = result ? PQresultErrorMessage(result.get()) : PQerrorMessage(conn);
  return std::make_pair(
      std::string(state != nullptr ? state : ""),
      std::string(message != nullptr && *message != '\0' ? message : PQerrorMessage(conn)));
}

}  // namespace

absl::StatusOr<int> ApplyMigrations(std::string_view database_url,
                                    const std::vector<Migration>& migrations,
                                    std::span<const std::string> only_services,
                                    const AppliedCallback& on_applied) {
  std::set<std::string, std::less<>> known_services;
  std::set<std::pair<std::string, int>> keys;
  for (const Migration& m : migrations) {
    known_services.insert(m.service);
    if (!keys.emplace(m.service, m.version).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("two migrations numbered ", m.service, "/", m.version));
    }
  }
  for (const std::string& service : only_services) {
    if (!known_services.contains(service)) {
      return absl::InvalidArgumentError(
          absl::StrCat("no migrations for service \"", service, "\""));
    }
  }
  std::vector<const Migration*> selected;
  for (const Migration& m : migrations) {
    if (only_services.empty() ||
        std::find(only_services.begin(), only_services.end(), m.service) != only_services.end()) {
      selected.push_back(&m);
    }
  }
  std::sort(selected.begin(), selected.end(), [](const Migration* a, const Migration* b) {
    return std::tie(a->service, a->version) < std::tie(b->service, b->version);
  });

  QAI_ASSIGN_OR_RETURN(std::string connect_string, ConnectString(database_url));
  std::unique_ptr<soci::session> session;
  try {
    session = std::make_unique<soci::session>(soci::postgresql, connect_string);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the database: ", RedactSecrets(e.what(), database_url)));
  }
  soci::session& sql = *session;

  std::string step = "starting the migration transaction";
  try {
    soci::transaction transaction(sql);
    // Migrations' "already exists, skipping" notices would otherwise go to stderr unformatted.
    sql << "SET LOCAL client_min_messages = warning";
    step = "taking the migration lock";
    long long lock_key = kMigrationLockKey;
    sql << "SELECT pg_advisory_xact_lock(:key)", soci::use(lock_key);

    step = "creating public.qai_schema_migrations";
    sql << "CREATE TABLE IF NOT EXISTS public.qai_schema_migrations ("
           " service text NOT NULL,"
           " version integer NOT NULL,"
           " name text NOT NULL,"
           " checksum text NOT NULL,"
           " applied_time timestamptz NOT NULL DEFAULT now(),"
           " PRIMARY KEY (service, version))";

    step = "reading public.qai_schema_migrations";
    std::map<std::pair<std::string, int>, std::string> applied;
    soci::rowset<soci::row> rows =
        (sql.prepare << "SELECT service, version, checksum FROM public.qai_schema_migrations");
    for (const soci::row& row : rows) {
      applied[{row.get<std::string>(0), row.get<int>(1)}] = row.get<std::string>(2);
    }

    std::vector<const Migration*> pending;
    for (const Migration* m : selected) {
      auto it = applied.find({m->service, m->version});
      if (it == applied.end()) {
        pending.push_back(m);
      } else if (it->second != m->checksum) {
        return absl::FailedPreconditionError(absl::StrCat(
            "migration ", m->service, "/", m->version, " (", m->name,
            ") was changed after it was applied: recorded checksum ", it->second, ", file ",
            m->checksum, "; add a new migration instead of editing an applied one"));
      }
    }

    for (const Migration* m : pending) {
      step = absl::StrCat("migration ", m->service, "/", m->version, " (", m->name, ")");
      if (auto error = ExecuteScript(sql, m->sql); error.has_value()) {
        return ErrorStatus(sql, error->first, error->second, step, database_url);
      }
      sql << "INSERT INTO public.qai_schema_migrations (service, version, name, checksum)"
             " VALUES (:service, :version, :name, :checksum)",
          soci::use(m->service), soci::use(m->version), soci::use(m->name), soci::use(m->checksum);
    }
    step = "committing the migrations";
    transaction.commit();
    if (on_applied) {
      for (const Migration* m : pending) on_applied(*m);
    }
    return static_cast<int>(pending.size());
  } catch (const soci::postgresql_soci_error& e) {
    return ErrorStatus(sql, e.sqlstate(), e.what(), step, database_url);
  } catch (const std::exception& e) {
    return ErrorStatus(sql, "", e.what(), step, database_url);
  }
}

}  // namespace qai::db
