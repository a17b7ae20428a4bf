#pragma once
// The files of the builtin model's sites that are the same for every page, compiled in from
// services/orchestrator/model/builtin_site/ (services/orchestrator/CMakeLists.txt runs
// cmake/embed_files.cmake): styles.css and app.js as they are written, page.html (a new page)
// and sections/<id>.html (one section each) as templates with {{placeholders}}.
//
//   std::string_view css = BuiltinSiteAsset("styles.css");

#include <cstddef>
#include <string_view>

namespace qai::orchestrator {

// BuiltinSiteAsset: the bytes of builtin_site/<path> ("page.html", "sections/menu.html").
// Every path the code asks for is in the folder: a missing one aborts (a bug, which every test
// of the builtin model finds).
std::string_view BuiltinSiteAsset(std::string_view path);

namespace internal {

// The layout of the data the build generates; only builtin_site_assets.cc reads it.
struct EmbeddedFile {
  const char* path;  // relative to builtin_site/
  const unsigned char* bytes;
  std::size_t size;
};

// kBuiltinSiteFiles: kBuiltinSiteFileCount entries, then a null sentinel.
extern const EmbeddedFile kBuiltinSiteFiles[];
extern const std::size_t kBuiltinSiteFileCount;

}  // namespace internal
}  // namespace qai::orchestrator
