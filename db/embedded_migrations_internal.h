#pragma once
// The layout of the migration data that the build generates (db/cmake/embed_migrations.cmake);
// only db/migrations.cc reads it. Use EmbeddedMigrations() instead.

#include <cstddef>

namespace qai::db::internal {

struct EmbeddedMigrationFile {
  const char* service;
  int version;
  const char* name;
  const unsigned char* sql;
  std::size_t sql_size;
  const char* checksum;  // SHA-256 hex of the sql bytes
};

// kEmbeddedMigrationFiles: kEmbeddedMigrationFileCount entries, then a null sentinel.
extern const EmbeddedMigrationFile kEmbeddedMigrationFiles[];
extern const std::size_t kEmbeddedMigrationFileCount;

}  // namespace qai::db::internal
