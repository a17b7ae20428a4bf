#pragma once
// UnifiedDiff: the difference of two versions of a text file, as `diff -u` shows it (hunks with
// three lines of context, without the two file header lines), computed by dtl (Debian's
// libdtl-dev: Myers' O(ND) algorithm). Bounded on both sides: files of more than max_lines lines
// are not diffed, and the output stops at a line once it reaches max_bytes.
//
//   std::optional<TextDiff> d = UnifiedDiff(before, after, {.max_bytes = 64 << 10});
//   if (!d) ...                     // binary: a size change only
//   else if (d->too_long) ...       // too many lines to diff

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace qai::orchestrator {

struct DiffLimits {
  size_t max_bytes = 64 << 10;  // of the unified diff
  size_t max_lines = 20000;     // of either file
};

struct TextDiff {
  std::string unified;
  bool truncated = false;  // cut at max_bytes
  bool too_long = false;   // not diffed: a file has more than max_lines lines
};

// IsText: valid UTF-8 without NUL.
bool IsText(std::string_view content);

// UnifiedDiff: nullopt when either side is not text.
std::optional<TextDiff> UnifiedDiff(std::string_view before, std::string_view after,
                                    DiffLimits limits = {});

}  // namespace qai::orchestrator
