#include "services/orchestrator/api/file_diff.h"

#include <algorithm>
#include <dtl/dtl.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/utf8.h"

namespace qai::orchestrator {
namespace {

// Lines: the file's lines without their ends ("a\nb\n" and "a\nb" are two lines each).
std::vector<std::string> Lines(std::string_view text) {
  if (text.empty()) return {};
  if (text.back() == '\n') text.remove_suffix(1);
  return absl::StrSplit(absl::string_view(text.data(), text.size()), '\n');
}

}  // namespace

bool IsText(std::string_view content) {
  return content.find('\0') == std::string_view::npos && common::ToValidUtf8(content) == content;
}

std::optional<TextDiff> UnifiedDiff(std::string_view before, std::string_view after,
                                    DiffLimits limits) {
  if (!IsText(before) || !IsText(after)) return std::nullopt;
  const std::vector<std::string> a = Lines(before), b = Lines(after);
  TextDiff out;
  if (a.size() > limits.max_lines || b.size() > limits.max_lines) {
    out.too_long = true;
    return out;
  }
  dtl::Diff<std::string> diff(a, b);
  diff.onHuge();  // less memory for long files, the same script
  diff.compose();
  diff.composeUnifiedHunks();
  auto add = [&](std::string line) {
    if (out.truncated) return;
    if (out.unified.size() + line.size() > limits.max_bytes) {
      out.truncated = true;
      return;
    }
    out.unified += line;
  };
  for (const auto& hunk : diff.getUniHunks()) {
    // An empty range starts at the line before it, as diff -u writes it ("-0,0" for none).
    const long long a = hunk.b == 0 ? std::max(hunk.a - 1, 0LL) : hunk.a;
    const long long c = hunk.d == 0 ? std::max(hunk.c - 1, 0LL) : hunk.c;
    add(absl::StrCat("@@ -", a, ",", hunk.b, " +", c, ",", hunk.d, " @@\n"));
    for (const auto& e : hunk.common[0]) add(absl::StrCat(" ", e.first, "\n"));
    for (const auto& e : hunk.change) {
      const char* mark = e.second.type == dtl::SES_ADD      ? "+"
                         : e.second.type == dtl::SES_DELETE ? "-"
                                                            : " ";
      add(absl::StrCat(mark, e.first, "\n"));
    }
    for (const auto& e : hunk.common[1]) add(absl::StrCat(" ", e.first, "\n"));
  }
  return out;
}

}  // namespace qai::orchestrator
