#pragma once
// Printable: text from the server made safe to print on a terminal. Display names, titles,
// prompts, answers and command output are written by users and models: an escape sequence in
// them would drive the terminal of whoever looks (an admin listing other users' projects).
//
//   out << "display_name: " << Printable(project.display_name(), /*keep_newlines=*/false);

#include <string>

#include "absl/strings/string_view.h"

namespace qai::cli {

// Printable: control characters, C0 and C1 (U+0080..U+009F, e.g. the one-character CSI), become
// '?', tabs spaces, carriage returns go; newlines stay only when `keep_newlines`, else they
// become spaces.
std::string Printable(absl::string_view text, bool keep_newlines);

}  // namespace qai::cli
