#include "tools/orchbench/stamp.h"

#include <chrono>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/strings.h"

namespace qai::orchbench {
namespace {

constexpr char kPrefix[] = "qai-orchbench";

}  // namespace

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string StampText(int64_t index, int64_t sent_ns) {
  return absl::StrCat(kPrefix, " ", index, " ", sent_ns);
}

std::optional<Stamp> ParseStamp(std::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(common::ToAbsl(text), ' ');
  Stamp stamp;
  if (parts.size() != 3 || parts[0] != kPrefix || !absl::SimpleAtoi(parts[1], &stamp.index) ||
      !absl::SimpleAtoi(parts[2], &stamp.sent_ns) || stamp.index < 0) {
    return std::nullopt;
  }
  return stamp;
}

}  // namespace qai::orchbench
