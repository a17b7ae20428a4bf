#include "common/jwt.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base64url.h"
#include "common/json.h"
#include "common/jwt_signature.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace qai::common {
namespace {

using nlohmann::json;

// A key id names a key among a few; the cap keeps a header from carrying anything bigger.
constexpr size_t kMaxKidChars = 256;

absl::Status Malformed() { return absl::UnauthenticatedError("malformed token"); }

std::optional<json> DecodeJsonObject(std::string_view part) {
  std::optional<std::string> raw = Base64UrlDecode(part);
  if (part.empty() || !raw.has_value()) return std::nullopt;
  json parsed = ParseUntrustedJson(*raw);
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

// ReadTime: the NumericDate claim `name`; nullopt inside when absent, an error when mistyped.
absl::StatusOr<std::optional<absl::Time>> ReadTime(const json& payload, const char* name) {
  auto it = payload.find(name);
  if (it == payload.end()) return std::optional<absl::Time>();
  std::optional<absl::Time> time = ReadNumericDate(*it);
  if (!time.has_value()) return Malformed();
  return time;
}

absl::Status ReadSubject(const json& payload, JwtClaims& claims) {
  auto sub = payload.find("sub");
  // A NUL would cut the principal id short wherever it is passed as a C string (SQL params).
  if (sub == payload.end() || !sub->is_string() || sub->get_ref<const std::string&>().empty() ||
      sub->get_ref<const std::string&>().find('\0') != std::string::npos) {
    return Malformed();
  }
  claims.subject = sub->get<std::string>();
  if (claims.subject.size() > kMaxJwtSubjectChars) {
    return absl::UnauthenticatedError(
        absl::StrCat("token subject longer than ", kMaxJwtSubjectChars, " characters"));
  }
  return absl::OkStatus();
}

absl::Status ReadTimes(const json& payload, JwtClaims& claims) {
  QAI_ASSIGN_OR_RETURN(std::optional<absl::Time> exp, ReadTime(payload, "exp"));
  if (!exp.has_value()) return Malformed();
  claims.expires = *exp;
  QAI_ASSIGN_OR_RETURN(std::optional<absl::Time> nbf, ReadTime(payload, "nbf"));
  claims.not_before = nbf;
  QAI_ASSIGN_OR_RETURN(std::optional<absl::Time> iat, ReadTime(payload, "iat"));
  claims.issued_at = iat.value_or(absl::InfinitePast());
  return absl::OkStatus();
}

// ReadStrings: a claim that is an array of strings (or, when `single` allows it, one string).
absl::Status ReadStrings(const json& payload, const char* name, bool single,
                         std::vector<std::string>& out) {
  auto it = payload.find(name);
  if (it == payload.end()) return absl::OkStatus();
  if (single && it->is_string()) {
    out.push_back(it->get<std::string>());
    return absl::OkStatus();
  }
  if (!it->is_array()) return Malformed();
  for (const json& item : *it) {
    if (!item.is_string()) return Malformed();
    out.push_back(item.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ReadIssuer(const json& payload, JwtClaims& claims) {
  auto iss = payload.find("iss");
  if (iss == payload.end()) return absl::OkStatus();
  if (!iss->is_string()) return Malformed();
  claims.issuer = iss->get<std::string>();
  return absl::OkStatus();
}

absl::StatusOr<JwtClaims> ParseClaims(std::string_view payload) {
  std::optional<json> body = DecodeJsonObject(payload);
  if (!body.has_value()) return Malformed();
  JwtClaims claims;
  for (absl::Status s :
       {ReadSubject(*body, claims), ReadTimes(*body, claims), ReadIssuer(*body, claims),
        ReadStrings(*body, "aud", true, claims.audience),
        ReadStrings(*body, "roles", false, claims.roles)}) {
    if (!s.ok()) return s;
  }
  return claims;
}

absl::Status CheckTimes(const JwtClaims& claims, const JwtPolicy& policy, absl::Time now) {
  if (now >= claims.expires + policy.leeway) return absl::UnauthenticatedError("token expired");
  if (claims.not_before.has_value() && now < *claims.not_before - policy.leeway) {
    return absl::UnauthenticatedError("token not yet valid");
  }
  const bool has_iat = claims.issued_at != absl::InfinitePast();
  if (has_iat && now < claims.issued_at - policy.leeway) {
    return absl::UnauthenticatedError("token issued in the future");
  }
  if (claims.expires - (has_iat ? claims.issued_at : now) > policy.max_lifetime) {
    return absl::UnauthenticatedError(
        absl::StrCat("token lifetime longer than ", absl::FormatDuration(policy.max_lifetime)));
  }
  return absl::OkStatus();
}

absl::Status CheckParties(const JwtClaims& claims, const JwtPolicy& policy) {
  if (!policy.issuer.empty() && claims.issuer != policy.issuer) {
    return absl::UnauthenticatedError("token issuer not accepted");
  }
  if (policy.audiences.empty()) return absl::OkStatus();
  for (const std::string& aud : claims.audience) {
    for (const std::string& accepted : policy.audiences) {
      if (aud == accepted) return absl::OkStatus();
    }
  }
  return absl::UnauthenticatedError("token audience not accepted");
}

absl::StatusOr<json> ReadHeader(std::string_view part) {
  std::optional<json> header = DecodeJsonObject(part);
  if (!header.has_value()) return Malformed();
  if (header->contains("crit")) return absl::UnauthenticatedError("unsupported token header");
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string())
    return absl::UnauthenticatedError("unsupported token algorithm");
  auto kid = header->find("kid");
  if (kid != header->end() &&
      (!kid->is_string() || kid->get_ref<const std::string&>().size() > kMaxKidChars)) {
    return Malformed();
  }
  return *std::move(header);
}

}  // namespace

std::string SignJwt(const JwtClaims& claims, std::string_view secret, std::string_view kid) {
  json payload = {{"sub", claims.subject},
                  {"exp", absl::ToUnixSeconds(claims.expires)},
                  {"iat", absl::ToUnixSeconds(claims.issued_at)}};
  if (claims.not_before.has_value()) payload["nbf"] = absl::ToUnixSeconds(*claims.not_before);
  if (!claims.roles.empty()) payload["roles"] = claims.roles;
  if (!claims.issuer.empty()) payload["iss"] = claims.issuer;
  if (claims.audience.size() == 1) payload["aud"] = claims.audience.front();
  if (claims.audience.size() > 1) payload["aud"] = claims.audience;

  std::string header = R"({"alg":"HS256","typ":"JWT"})";
  if (!kid.empty()) header = json{{"alg", "HS256"}, {"kid", kid}, {"typ", "JWT"}}.dump();
  std::string signing_input =
      absl::StrCat(Base64UrlEncode(header), ".", Base64UrlEncode(payload.dump()));
  std::string signature = Base64UrlEncode(HmacSha256(secret, signing_input));
  return absl::StrCat(signing_input, ".", signature);
}

absl::StatusOr<JwtParts> SplitJwt(std::string_view token) {
  if (token.size() > kMaxJwtBytes) return Malformed();
  const size_t first = token.find('.');
  const size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos)
    return Malformed();

  QAI_ASSIGN_OR_RETURN(json header, ReadHeader(token.substr(0, first)));
  JwtParts parts{.alg = header["alg"].get<std::string>(),
                 .kid = std::nullopt,
                 .signing_input = token.substr(0, second),
                 .signature = token.substr(second + 1),
                 .payload = token.substr(first + 1, second - first - 1)};
  if (auto kid = header.find("kid"); kid != header.end()) parts.kid = kid->get<std::string>();
  return parts;
}

absl::StatusOr<JwtClaims> ReadClaims(std::string_view payload, const JwtPolicy& policy,
                                     absl::Time now) {
  QAI_ASSIGN_OR_RETURN(JwtClaims claims, ParseClaims(payload));
  QAI_RETURN_IF_ERROR(CheckTimes(claims, policy, now));
  QAI_RETURN_IF_ERROR(CheckParties(claims, policy));
  return claims;
}

}  // namespace qai::common
