#include "services/orchestrator/api/download_name.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace qai::orchestrator {
namespace {

constexpr size_t kMaxNameChars = 60;

// FileNamePart: lower-case letters and digits, every other run a single '-', trimmed.
std::string FileNamePart(std::string_view text) {
  std::string out;
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80 && absl::ascii_isalnum(u)) {
      if (out.size() == kMaxNameChars) break;
      out.push_back(absl::ascii_tolower(u));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

}  // namespace

std::string DownloadBaseName(std::string_view display_name, std::string_view name, int number) {
  std::string base = FileNamePart(display_name);
  if (base.empty()) base = FileNamePart(name);
  if (base.empty()) base = "project";
  return absl::StrCat(base, "-v", number);
}

std::string DownloadUrl(std::string_view preview_url, std::string_view snapshot_id,
                        std::string_view file_name) {
  const std::string tail = "/" + std::string(snapshot_id) + "/";
  if (snapshot_id.empty() || !preview_url.ends_with(tail)) return "";
  const std::string_view base = preview_url.substr(0, preview_url.size() - tail.size());
  return std::string(base) + "/download/" + std::string(snapshot_id) + "/" + std::string(file_name);
}

}  // namespace qai::orchestrator
