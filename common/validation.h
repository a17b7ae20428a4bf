#pragma once
// Request-field checks shared by every service's handlers. Each adds to a FieldViolations,
// so one response names every bad field at once.

#include <cstddef>
#include <string_view>

#include "common/status.h"

namespace qai::common {

// The longest prompt, in characters: CreateProject's initial_prompt, CreateMessage's content and
// StartRun's prompt alike (docs/api.md), so a prompt one service takes every other takes too.
inline constexpr size_t kMaxPromptChars = 10000;

// CheckText: at most max_chars Unicode characters of valid UTF-8; when min_chars > 0, also
// present and not only whitespace.
void CheckText(FieldViolations& bad, std::string_view field, std::string_view value,
               size_t min_chars, size_t max_chars);

// CheckUuid: a canonical UUID; required ones must be present.
void CheckUuid(FieldViolations& bad, std::string_view field, std::string_view value, bool required);

// Utf8Length: characters in valid UTF-8 text, or -1 when it is not valid UTF-8.
long Utf8Length(std::string_view text);

}  // namespace qai::common
