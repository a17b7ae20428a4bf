#pragma once
// JSON Web Tokens: the bearer credentials end users present to QAI services. This file is the
// token's format and its claims; which keys and algorithms verify a signature is
// common/jwt_verifier.h's business.
//
//   std::string token = qai::common::SignJwt(
//       {.subject = "user-42", .roles = {"admin"}, .expires = absl::Now() + absl::Hours(1),
//        .issued_at = absl::Now()},
//       secret, /*kid=*/"2025-06");
//   absl::StatusOr<qai::common::JwtParts> parts = qai::common::SplitJwt(token);
//   ... verify parts->signing_input against parts->signature with the key parts->kid names ...
//   absl::StatusOr<qai::common::JwtClaims> claims =
//       qai::common::ReadClaims(parts->payload, policy, absl::Now());
//
// Every error is UNAUTHENTICATED with a message that never echoes the token or a key, so it is
// safe to return to a caller and to log.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace qai::common {

// JwtClaims: the registered claims QAI uses plus its own `roles` claim. Times travel as whole
// Unix seconds (JWT NumericDate), so sub-second parts are dropped when signing. After
// verification, `issued_at` is absl::InfinitePast() when the token carries no `iat`, `issuer`
// is "" without `iss` and `audience` holds `aud` (a string or an array of them). Fields have
// defaults so designated initializers may leave the optional ones out.
struct JwtClaims {
  std::string subject;
  std::vector<std::string> roles = {};
  absl::Time expires = absl::UnixEpoch();
  std::optional<absl::Time> not_before = std::nullopt;
  absl::Time issued_at = absl::UnixEpoch();
  std::string issuer = "";
  std::vector<std::string> audience = {};
};

// SignJwt: encodes `claims` as a compact HS256 token keyed by `secret`, naming the key `kid` in
// its header when not empty. The payload has `sub`, `exp`, `iat`, plus `nbf` when set, `roles`
// when non-empty, `iss` when not empty and `aud` (one audience as a string, several as an
// array) when not empty. Used by tests and tooling that mint development tokens.
[[nodiscard]] std::string SignJwt(const JwtClaims& claims, std::string_view secret,
                                  std::string_view kid = "");

// The longest subject a token may name: a principal id is stored with what it writes (a run's
// author), so a longer one would be accepted at the door and refused later, out of sight.
inline constexpr size_t kMaxJwtSubjectChars = 256;
// The longest token accepted: real ones are a few hundred bytes (an RS256 signature with a
// 4096-bit key is 683), and the cap bounds the work an anonymous caller can cause.
inline constexpr size_t kMaxJwtBytes = 8 * 1024;

// JwtParts: a token split into what its signature covers and the signature itself, with the
// header's `alg` and `kid` (nullopt when absent). `signing_input`, `signature` (base64url text)
// and `payload` (base64url text) point into the token passed to SplitJwt.
struct JwtParts {
  std::string alg;
  std::optional<std::string> kid;
  std::string_view signing_input;
  std::string_view signature;
  std::string_view payload;
};

// SplitJwt: the token's parts. Refused: longer than kMaxJwtBytes, not three base64url parts,
// a header that is not a JSON object, or whose `kid` is not a string of at most 256 characters
// ("malformed token"); a header without a string `alg` ("unsupported token algorithm"); a
// header with `crit`, since QAI understands no extension a signer could make critical
// ("unsupported token header"). Nothing from the payload is read here.
[[nodiscard]] absl::StatusOr<JwtParts> SplitJwt(std::string_view token);

// JwtPolicy: what a verified token's claims must say besides being well formed.
struct JwtPolicy {
  // `iss` must equal this when not empty.
  std::string issuer = "";
  // When not empty, `aud` (a string or an array of strings) must name one of these.
  std::vector<std::string> audiences = {};
  // The longest a token may live: `exp` - `iat`, or `exp` - now for a token without `iat`.
  absl::Duration max_lifetime = absl::Hours(24);
  // How far clocks may disagree, for `exp`, `nbf` and `iat`.
  absl::Duration leeway = absl::Seconds(30);
};

// ReadClaims: the claims of a payload (base64url JSON, as SplitJwt gives it) whose signature
// has been verified, checked against `policy` at `now`. Refused: anything structurally wrong —
// non-JSON, `sub` missing, empty, not a string or holding NUL, `exp` missing, a time claim not
// a number in range, `roles` not an array of strings, `iss` not a string, `aud` neither a
// string nor an array of strings ("malformed token"); a `sub` longer than kMaxJwtSubjectChars
// ("token subject longer than 256 characters"); `now` at or past `exp` + leeway ("token
// expired"), before `nbf` - leeway ("token not yet valid"), before `iat` - leeway ("token
// issued in the future"); a lifetime over the policy's ("token lifetime longer than 24h");
// `iss` other than the policy's ("token issuer not accepted"); no accepted audience ("token
// audience not accepted").
[[nodiscard]] absl::StatusOr<JwtClaims> ReadClaims(std::string_view payload,
                                                   const JwtPolicy& policy, absl::Time now);

}  // namespace qai::common
