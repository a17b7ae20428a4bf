#include "tests/support/proc_status.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/strings.h"

namespace qai::testing {

std::optional<int64_t> StatusKiB(std::string_view status_text, std::string_view field) {
  for (absl::string_view line : absl::StrSplit(common::ToAbsl(status_text), '\n')) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || line.substr(0, colon) != common::ToAbsl(field))
      continue;
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (!absl::ConsumeSuffix(&value, "kB")) return std::nullopt;
    int64_t kib = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &kib)) return std::nullopt;
    return kib;
  }
  return std::nullopt;
}

absl::StatusOr<int64_t> ProcessStatusKiB(pid_t pid, std::string_view field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  if (!in) return absl::NotFoundError(absl::StrCat("process ", pid, " not found"));
  std::stringstream text;
  text << in.rdbuf();
  std::optional<int64_t> kib = StatusKiB(text.str(), field);
  if (!kib)
    return absl::NotFoundError(
        absl::StrCat("no ", std::string(field), " in /proc/", pid, "/status"));
  return *kib;
}

}  // namespace qai::testing
