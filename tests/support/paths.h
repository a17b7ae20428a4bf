#pragma once
// Where tests find build outputs, source files, free ports and scratch space.
//
//   std::string server = qai::testing::BinaryPath("services/projects/qai-projects");
//   std::string sql = qai::testing::SourcePath("db/migrations/projects/0001_projects.sql");
//   std::string addr = absl::StrCat("127.0.0.1:", qai::testing::FreePort());
//
// ctest sets QAI_BUILD_DIR and QAI_SOURCE_DIR (see cmake/qai.cmake); a test binary run by hand
// falls back to the directories it was configured with.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace qai::testing {

// FreePort: a TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then
// released). Another process may take it in between; callers that can, bind port 0 themselves.
int FreePort();

// BinaryPath: `$QAI_BUILD_DIR/<relative>`, e.g. BinaryPath("db/qai-migrate").
std::string BinaryPath(std::string_view relative);

// SourcePath: `$QAI_SOURCE_DIR/<relative>`.
std::string SourcePath(std::string_view relative);

// TempRoot: $TMPDIR when set and usable, else /tmp.
std::string TempRoot();

// MakeTempDir: a new private directory `<TempRoot()>/<prefix>XXXXXX` (mode 0700). The caller
// removes it.
[[nodiscard]] absl::StatusOr<std::string> MakeTempDir(std::string_view prefix);

}  // namespace qai::testing
