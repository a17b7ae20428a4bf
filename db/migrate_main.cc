// qai-migrate: applies the migrations compiled into it (db/migrations) to one database.
//
//   qai-migrate --database-url=postgresql://... [--services=projects,messages]
//
// Safe to run from several places at once (e.g. an init container per replica): one applies,
// the others wait and find nothing to do. Exit status: 0 done, 1 failed, 2 bad configuration.

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/config.h"
#include "common/log.h"
#include "db/migrations.h"
#include "db/migrator.h"

namespace {

using qai::common::Log;
using qai::common::LogLevel;

int Run(int argc, char** argv) {
  absl::StatusOr<qai::common::Config> config = qai::common::Config::Parse(
      {
          {.name = "database-url",
           .help = "libpq connection string or URI of the database to migrate",
           .secret = true,
           .required = true},
          {.name = "services",
           .help = "comma-separated services whose migrations to apply (default: all)"},
          {.name = "log-level", .default_value = "info", .help = "debug, info, warn or error"},
      },
      argc, argv);
  if (!config.ok()) {
    if (config.status().code() == absl::StatusCode::kNotFound) {  // --help
      std::printf("%s\n", std::string(config.status().message()).c_str());
      return 0;
    }
    std::fprintf(stderr, "qai-migrate: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  qai::common::InitLogging("migrate", qai::common::ParseLogLevel(config->Get("log-level")));
  Log(LogLevel::kInfo, "configuration", {{"config", config->Describe()}});

  std::vector<std::string> services = config->GetList("services");
  absl::StatusOr<int> applied = qai::db::ApplyMigrations(
      config->Get("database-url"), qai::db::EmbeddedMigrations(), services,
      [](const qai::db::Migration& m) {
        std::printf("applied %s/%04d_%s\n", m.service.c_str(), m.version, m.name.c_str());
        Log(LogLevel::kInfo, "applied migration",
            {{"schema", m.service}, {"version", m.version}, {"name", m.name}});
      });
  std::fflush(stdout);
  if (!applied.ok()) {
    Log(LogLevel::kError, "migration failed",
        {{"code", absl::StatusCodeToString(applied.status().code())},
         {"error", std::string(applied.status().message())}});
    return 1;
  }
  Log(LogLevel::kInfo, "migrations done", {{"applied", *applied}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
