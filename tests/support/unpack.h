#pragma once
// Unpack: an archive's files as Debian's own tools unpack them (`unzip` for a .zip, `tar -xz`
// for a .tar.gz), never the code that wrote it, as path -> content.
//
//   std::map<std::string, std::string> files = Unpack(zip_bytes, ".zip");

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace qai::testing {

// Unpack: `extension` is ".zip" or ".tar.gz"; an error when the tool refuses the archive.
[[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> Unpack(
    const std::string& archive, const std::string& extension);

}  // namespace qai::testing
