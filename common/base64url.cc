#include "common/base64url.h"

#include "absl/strings/escaping.h"
#include "common/strings.h"

namespace qai::common {
namespace {

bool IsBase64UrlAlphabet(std::string_view s) {
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  return absl::WebSafeBase64Escape(ToAbsl(bytes));
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  std::string bytes;
  if (!IsBase64UrlAlphabet(text) || !absl::WebSafeBase64Unescape(ToAbsl(text), &bytes))
    return std::nullopt;
  // absl ignores the unused low bits of the last character; re-encoding finds them.
  if (Base64UrlEncode(bytes) != text) return std::nullopt;
  return bytes;
}

}  // namespace qai::common
