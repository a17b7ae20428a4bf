#pragma once
// PgBase64Array: many values bound as one statement parameter (SOCI binds one value per
// placeholder): a PostgreSQL text[] literal of the items in base64, so nothing in them needs
// quoting, for the statement to unnest and decode. Items are bytes (binary is fine).
//
//   conn.session() << "INSERT INTO t (v) SELECT decode(i, 'base64')"
//                     " FROM unnest(CAST(:items AS text[])) i",
//       soci::use(PgBase64Array(items));

#include <string>
#include <vector>

namespace qai::common {

[[nodiscard]] std::string PgBase64Array(const std::vector<std::string>& items);

}  // namespace qai::common
