#pragma once
// HS256 JSON Web Tokens: the bearer credentials end users present to QAI services.
//
// Only HS256 is accepted, so a token cannot pick its own (weaker or absent) algorithm. Verify
// never throws and its errors never echo the token or the key, so they are safe to return to a
// caller and to log.
//
//   std::string token = qai::common::SignJwt(
//       {.subject = "user-42", .roles = {"admin"}, .expires = absl::Now() + absl::Hours(1),
//        .issued_at = absl::Now()},
//       secret);
//   absl::StatusOr<qai::common::JwtClaims> claims =
//       qai::common::VerifyJwt(token, secret, absl::Now());
//   if (!claims.ok()) { ... claims.status() is UNAUTHENTICATED ... }

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace qai::common {

// JwtClaims: the registered claims QAI uses plus its own `roles` claim. Times travel as whole
// Unix seconds (JWT NumericDate), so sub-second parts are dropped when signing. After
// verification, `issued_at` is absl::InfinitePast() when the token carries no `iat`. Fields
// have defaults so designated initializers may leave the optional ones out.
struct JwtClaims {
  std::string subject;
  std::vector<std::string> roles = {};
  absl::Time expires = absl::UnixEpoch();
  std::optional<absl::Time> not_before = std::nullopt;
  absl::Time issued_at = absl::UnixEpoch();
};

// SignJwt: encodes `claims` as a compact HS256 token keyed by `secret`. The header is
// {"alg":"HS256","typ":"JWT"}; the payload has `sub`, `exp`, `iat`, plus `nbf` when set and
// `roles` when non-empty. Used by tests and tooling that mint tokens for the services.
[[nodiscard]] std::string SignJwt(const JwtClaims& claims, std::string_view secret);

// The longest subject a token may name: a principal id is stored with what it writes (a run's
// author), so a longer one would be accepted at the door and refused later, out of sight.
inline constexpr size_t kMaxJwtSubjectChars = 256;

// VerifyJwt: checks `token` against `secret` at time `now` and returns its claims. Refused with
// UNAUTHENTICATED: a header whose `alg` is not exactly "HS256" ("unsupported token algorithm");
// a `sub` longer than kMaxJwtSubjectChars ("token subject longer than 256 characters");
// a signature mismatch, compared in constant time ("bad token signature"); `now` at or past
// `exp` + `leeway` ("token expired") or before `nbf` - `leeway` ("token not yet valid");
// anything structurally wrong — not three base64url parts, non-JSON, missing or mistyped `exp`
// or `sub`, `roles` not an array of strings ("malformed token"). An empty `secret` refuses
// every token, since an empty HMAC key would let anyone sign.
[[nodiscard]] absl::StatusOr<JwtClaims> VerifyJwt(std::string_view token, std::string_view secret,
                                                  absl::Time now,
                                                  absl::Duration leeway = absl::Seconds(30));

}  // namespace qai::common
