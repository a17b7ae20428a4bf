#pragma once
// Text that leaves the sandbox (command output, file names, the builtin model's replies) goes
// into JSON, protobuf strings and PostgreSQL text, all of which need valid UTF-8 without NUL.

#include <string>
#include <string_view>

namespace qai::common {

// ToValidUtf8: text with every byte that is not part of a valid UTF-8 character, and every
// NUL, replaced by U+FFFD. Valid text comes back unchanged.
std::string ToValidUtf8(std::string_view text);

// TruncateUtf8: at most max_bytes of text, cut on a character boundary; `truncated` (when
// given) says whether anything was cut.
std::string TruncateUtf8(std::string_view text, size_t max_bytes, bool* truncated = nullptr);

// CompleteUtf8Prefix: the length of text without a multi-byte character cut off at its end
// (at most 3 bytes shorter), for text that arrives in pieces: the rest waits for the next one.
size_t CompleteUtf8Prefix(std::string_view text);

}  // namespace qai::common
