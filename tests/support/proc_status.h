#pragma once
// Memory figures of a process, from /proc/<pid>/status.
//
//   absl::StatusOr<int64_t> rss = ProcessStatusKiB(pid, "VmRSS");

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"

namespace qai::testing {

// StatusKiB: the value of `field` ("VmRSS", "VmHWM", ...) in the text of a /proc/<pid>/status
// file, in KiB; nullopt when the field is missing or not "<number> kB".
std::optional<int64_t> StatusKiB(std::string_view status_text, std::string_view field);

// ProcessStatusKiB: StatusKiB of a live process; NOT_FOUND when it is gone.
[[nodiscard]] absl::StatusOr<int64_t> ProcessStatusKiB(pid_t pid, std::string_view field);

}  // namespace qai::testing
