#include "services/sandbox/manifest.h"

#include "absl/strings/str_cat.h"

namespace qai::sandbox {

absl::StatusOr<std::string> EncodeManifest(const ManifestEntries& entries) {
  std::string out;
  for (const auto& [path, hash] : entries) {
    if (path.find('\0') != std::string::npos || hash.size() != kHashBytes) {
      return absl::InternalError(absl::StrCat("manifest: a bad entry for \"", path, "\""));
    }
    out.append(path).push_back('\0');
    out.append(hash);
  }
  return out;
}

absl::StatusOr<ManifestEntries> DecodeManifest(std::string_view stored) {
  ManifestEntries entries;
  while (!stored.empty()) {
    const size_t end = stored.find('\0');
    if (end == std::string_view::npos || stored.size() - end - 1 < kHashBytes) {
      return absl::InternalError("manifest: cut short");
    }
    entries.emplace(stored.substr(0, end), stored.substr(end + 1, kHashBytes));
    stored.remove_prefix(end + 1 + kHashBytes);
  }
  return entries;
}

}  // namespace qai::sandbox
