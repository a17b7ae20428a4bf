#pragma once
// Bridges std::string_view and absl::string_view.
//
// Debian's abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW
// is 0), which does not convert from std::string_view. Our APIs speak std::string_view; these
// two helpers cross the line where abseil's string functions are called.

#include <string_view>

#include "absl/strings/string_view.h"

namespace qai::common {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view ToStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace qai::common
