#include "services/orchestrator/model/builtin_site_assets.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace qai::orchestrator {

std::string_view BuiltinSiteAsset(std::string_view path) {
  for (std::size_t i = 0; i < internal::kBuiltinSiteFileCount; ++i) {
    const internal::EmbeddedFile& file = internal::kBuiltinSiteFiles[i];
    if (path == file.path) return {reinterpret_cast<const char*>(file.bytes), file.size};
  }
  std::fprintf(stderr, "builtin site: no file builtin_site/%s compiled in\n",
               std::string(path).c_str());
  std::abort();
}

}  // namespace qai::orchestrator
