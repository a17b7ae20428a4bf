#include "common/validation.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/ids.h"

namespace qai::common {

long Utf8Length(std::string_view text) {
  long chars = 0;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t len = c < 0x80           ? 1
                       : (c >> 5) == 0x6  ? 2
                       : (c >> 4) == 0xe  ? 3
                       : (c >> 3) == 0x1e ? 4
                                          : 0;
    if (len == 0 || i + len > text.size()) return -1;
    uint32_t code_point = len == 1 ? c : c & (0x7f >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto cont = static_cast<unsigned char>(text[i + k]);
      if ((cont >> 6) != 0x2) return -1;
      code_point = (code_point << 6) | (cont & 0x3f);
    }
    // PostgreSQL refuses what Unicode forbids: overlong forms, surrogates, beyond U+10FFFF.
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code_point < kMinForLength[len] || (code_point >= 0xd800 && code_point <= 0xdfff) ||
        code_point > 0x10ffff) {
      return -1;
    }
    i += len;
    ++chars;
  }
  return chars;
}

void CheckText(FieldViolations& bad, std::string_view field, std::string_view value,
               size_t min_chars, size_t max_chars) {
  const long chars = Utf8Length(value);
  if (chars < 0) {
    bad.Add(std::string(field), "must be valid UTF-8");
    return;
  }
  // Both libpq and SOCI pass text as C strings: a NUL would silently cut the value short.
  if (value.find('\0') != std::string_view::npos) {
    bad.Add(std::string(field), "must not contain NUL characters");
    return;
  }
  if (min_chars > 0 && value.find_first_not_of(" \t\r\n\v\f") == std::string_view::npos) {
    bad.Add(std::string(field), value.empty() ? "is required" : "must not be blank");
    return;
  }
  if (static_cast<size_t>(chars) < min_chars) {
    bad.Add(std::string(field), absl::StrCat("must be at least ", min_chars, " characters"));
  } else if (static_cast<size_t>(chars) > max_chars) {
    bad.Add(std::string(field),
            absl::StrCat("must be at most ", max_chars, " characters (got ", chars, ")"));
  }
}

void CheckUuid(FieldViolations& bad, std::string_view field, std::string_view value,
               bool required) {
  if (value.empty()) {
    if (required) bad.Add(std::string(field), "is required");
    return;
  }
  if (!IsUuid(value)) bad.Add(std::string(field), "must be a UUID");
}

}  // namespace qai::common
