#include "common/jwt.h"

#include "common/json.h"
#include "common/strings.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace qai::common {
namespace {

using nlohmann::json;

// Real tokens are a few hundred bytes; the cap bounds the work an anonymous caller can cause.
constexpr size_t kMaxTokenBytes = 8 * 1024;

absl::Status Malformed() { return absl::UnauthenticatedError("malformed token"); }

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  const unsigned char* result =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &mac_len);
  if (result == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

// absl's decoder tolerates padding and other characters; JWT allows only the bare alphabet,
// and being strict keeps exactly one spelling of every token valid.
bool IsBase64Url(std::string_view s) {
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::optional<json> DecodeJsonObject(std::string_view part) {
  std::string raw;
  if (part.empty() || !IsBase64Url(part) || !absl::WebSafeBase64Unescape(ToAbsl(part), &raw)) {
    return std::nullopt;
  }
  json parsed = ParseUntrustedJson(raw);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return parsed;
}

// NumericDate may be fractional; anything outside int64 seconds (or NaN) is rejected rather
// than silently clamped.
std::optional<absl::Time> ReadNumericDate(const json& value) {
  if (value.is_number_integer() && !value.is_number_unsigned()) {
    return absl::FromUnixSeconds(value.get<int64_t>());
  }
  if (value.is_number_unsigned()) {
    uint64_t seconds = value.get<uint64_t>();
    if (seconds > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return absl::FromUnixSeconds(static_cast<int64_t>(seconds));
  }
  if (value.is_number_float()) {
    double seconds = value.get<double>();
    if (!std::isfinite(seconds) || seconds < -9.2e18 || seconds > 9.2e18) return std::nullopt;
    return absl::FromUnixSeconds(static_cast<int64_t>(std::floor(seconds)));
  }
  return std::nullopt;
}

}  // namespace

std::string SignJwt(const JwtClaims& claims, std::string_view secret) {
  json payload = {{"sub", claims.subject},
                  {"exp", absl::ToUnixSeconds(claims.expires)},
                  {"iat", absl::ToUnixSeconds(claims.issued_at)}};
  if (claims.not_before.has_value()) payload["nbf"] = absl::ToUnixSeconds(*claims.not_before);
  if (!claims.roles.empty()) payload["roles"] = claims.roles;

  std::string signing_input =
      absl::StrCat(absl::WebSafeBase64Escape(R"({"alg":"HS256","typ":"JWT"})"), ".",
                   absl::WebSafeBase64Escape(payload.dump()));
  std::string signature = absl::WebSafeBase64Escape(HmacSha256(secret, signing_input));
  return absl::StrCat(signing_input, ".", signature);
}

absl::StatusOr<JwtClaims> VerifyJwt(std::string_view token, std::string_view secret,
                                    absl::Time now, absl::Duration leeway) {
  if (secret.empty()) return absl::UnauthenticatedError("token verification is not configured");
  if (token.size() > kMaxTokenBytes) return Malformed();

  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t dot = token.find('.', start);
    parts.push_back(token.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos || parts.size() > 3) break;
    start = dot + 1;
  }
  if (parts.size() != 3) return Malformed();

  // The header is checked before the signature so an algorithm-confusion attempt is reported
  // as such, but nothing from the payload is trusted until the signature matches.
  std::optional<json> header = DecodeJsonObject(parts[0]);
  if (!header.has_value()) return Malformed();
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string() || alg->get_ref<const std::string&>() != "HS256") {
    return absl::UnauthenticatedError("unsupported token algorithm");
  }

  // Comparing base64url text instead of decoded bytes also rejects non-canonical spellings
  // of a valid signature.
  std::string_view signing_input = token.substr(0, parts[0].size() + 1 + parts[1].size());
  std::string expected = absl::WebSafeBase64Escape(HmacSha256(secret, signing_input));
  if (expected.empty() || parts[2].size() != expected.size() ||
      CRYPTO_memcmp(parts[2].data(), expected.data(), expected.size()) != 0) {
    return absl::UnauthenticatedError("bad token signature");
  }

  std::optional<json> payload = DecodeJsonObject(parts[1]);
  if (!payload.has_value()) return Malformed();

  JwtClaims claims;
  auto sub = payload->find("sub");
  // A NUL would cut the principal id short wherever it is passed as a C string (SQL params).
  if (sub == payload->end() || !sub->is_string() || sub->get_ref<const std::string&>().empty() ||
      sub->get_ref<const std::string&>().find('\0') != std::string::npos) {
    return Malformed();
  }
  claims.subject = sub->get<std::string>();
  if (claims.subject.size() > kMaxJwtSubjectChars) {
    return absl::UnauthenticatedError(absl::StrCat("token subject longer than ", kMaxJwtSubjectChars, " characters"));
  }

  auto exp = payload->find("exp");
  if (exp == payload->end()) return Malformed();
  std::optional<absl::Time> expires = ReadNumericDate(*exp);
  if (!expires.has_value()) return Malformed();
  claims.expires = *expires;

  if (auto nbf = payload->find("nbf"); nbf != payload->end()) {
    claims.not_before = ReadNumericDate(*nbf);
    if (!claims.not_before.has_value()) return Malformed();
  }

  claims.issued_at = absl::InfinitePast();
  if (auto iat = payload->find("iat"); iat != payload->end()) {
    std::optional<absl::Time> issued_at = ReadNumericDate(*iat);
    if (!issued_at.has_value()) return Malformed();
    claims.issued_at = *issued_at;
  }

  if (auto roles = payload->find("roles"); roles != payload->end()) {
    if (!roles->is_array()) return Malformed();
    for (const json& role : *roles) {
      if (!role.is_string()) return Malformed();
      claims.roles.push_back(role.get<std::string>());
    }
  }

  if (now >= claims.expires + leeway) return absl::UnauthenticatedError("token expired");
  if (claims.not_before.has_value() && now < *claims.not_before - leeway) {
    return absl::UnauthenticatedError("token not yet valid");
  }
  return claims;
}

}  // namespace qai::common
