#pragma once
// Base64url without padding (RFC 7515, section 2): how JWTs and JWKs spell binary values.
//
//   std::string text = Base64UrlEncode(bytes);
//   std::optional<std::string> back = Base64UrlDecode(text);  // == bytes

#include <optional>
#include <string>
#include <string_view>

namespace qai::common {

// Base64UrlEncode: the unpadded base64url text of `bytes`.
[[nodiscard]] std::string Base64UrlEncode(std::string_view bytes);

// Base64UrlDecode: the bytes `text` encodes, or nullopt unless `text` is exactly what
// Base64UrlEncode gives for them: only the base64url alphabet, no padding, no stray bits. So
// every value has one spelling, and a token cannot be altered without changing what it says.
[[nodiscard]] std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace qai::common
