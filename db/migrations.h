#pragma once
// The SQL migrations of every service, compiled into the program.
//
// Each file `db/migrations/<service>/<NNNN>_<name>.sql` becomes one Migration at build time
// (db/cmake/embed_migrations.cmake), so a binary always carries exactly the schema it was
// built for:
//
//   for (const qai::db::Migration& m : qai::db::EmbeddedMigrations()) {
//     std::cout << m.service << "/" << m.version << " " << m.name << "\n";
//   }

#include <string>
#include <vector>

namespace qai::db {

// Migration: one numbered SQL script of one service. `checksum` is the SHA-256 (lower-case
// hex) of `sql`; an applied migration must never change, and the checksum proves it did not.
struct Migration {
  std::string service;
  int version = 0;
  std::string name;
  std::string sql;
  std::string checksum;
};

// EmbeddedMigrations: every migration under db/migrations, ordered by (service, version).
const std::vector<Migration>& EmbeddedMigrations();

}  // namespace qai::db
