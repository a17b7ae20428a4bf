#include "common/pg_arrays.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace qai::common {

std::string PgBase64Array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", "\"", absl::Base64Escape(items[i]), "\"");
  }
  return out + "}";
}

}  // namespace qai::common
