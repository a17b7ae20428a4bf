#include "db/migrations.h"

#include <algorithm>
#include <tuple>

#include "db/embedded_migrations_internal.h"

namespace qai::db {

const std::vector<Migration>& EmbeddedMigrations() {
  static const std::vector<Migration>* const migrations = [] {
    auto* list = new std::vector<Migration>();
    for (std::size_t i = 0; i < internal::kEmbeddedMigrationFileCount; ++i) {
      const internal::EmbeddedMigrationFile& file = internal::kEmbeddedMigrationFiles[i];
      list->push_back(Migration{
          .service = file.service,
          .version = file.version,
          .name = file.name,
          .sql = std::string(reinterpret_cast<const char*>(file.sql), file.sql_size),
          .checksum = file.checksum,
      });
    }
    // Folder names sort as text, versions as numbers (0010 after 0009 even without padding).
    std::sort(list->begin(), list->end(), [](const Migration& a, const Migration& b) {
      return std::tie(a.service, a.version) < std::tie(b.service, b.version);
    });
    return list;
  }();
  return *migrations;
}

}  // namespace qai::db
