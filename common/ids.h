#pragma once
// Identifiers: random UUIDs (version 4) and their validation.

#include <string>
#include <string_view>

namespace qai::common {

// NewUuid: a random version-4 UUID in canonical lowercase form, from the OS's CSPRNG.
std::string NewUuid();

// IsUuid: whether text is a UUID in canonical 8-4-4-4-12 hex form (either case).
bool IsUuid(std::string_view text);

}  // namespace qai::common
