#pragma once
// JwtVerifier: checks a bearer token's signature with the key it names and its claims with the
// policy. RS256 and ES256 tokens are checked with an identity provider's public keys (a
// JwksCache); HS256 tokens with shared secrets (development; several, by `kid`, while one
// replaces another). A token is only ever checked with a key of its `alg`'s kind: an HS256 token
// never with a public key (whose bytes anyone has), an RS256 or ES256 one never with a secret.
//
//   absl::StatusOr<std::vector<HmacKey>> keys = ParseHmacKeys(getenv("QAI_JWT_SECRET"));
//   absl::StatusOr<std::shared_ptr<const JwtVerifier>> verifier =
//       JwtVerifier::Create(*keys, jwks_cache, {.issuer = "https://issuer.example"});
//   absl::StatusOr<JwtClaims> claims = (*verifier)->Verify(token, absl::Now());
//
// Thread-safe: Verify may be called from any number of threads.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/jwks_cache.h"
#include "common/jwt.h"
#include "common/jwt_signature.h"

namespace qai::common {

// The shortest HS256 secret accepted: RFC 7518 wants a key as long as the hash (32 bytes).
inline constexpr size_t kMinHmacKeyBytes = 32;
// The most HS256 keys one configuration may hold (a rotation needs two).
inline constexpr size_t kMaxHmacKeys = 16;

// HmacKey: an HS256 secret and its name (`kid`); "" names none.
struct HmacKey {
  std::string kid;
  std::string secret;
};

// ParseHmacKeys: QAI_JWT_SECRET's keys. An empty value gives none. A value that is a
// comma-separated list of `kid=secret` entries, every kid 1 to 24 of [A-Za-z0-9._-], gives those
// named keys; any other value is one unnamed secret (so a base64 secret ending in '=' stays
// whole). Refused with INVALID_ARGUMENT naming QAI_JWT_SECRET (and an entry by its position,
// never by what it holds): a secret shorter than kMinHmacKeyBytes, a kid used twice, more than
// kMaxHmacKeys entries.
[[nodiscard]] absl::StatusOr<std::vector<HmacKey>> ParseHmacKeys(std::string_view value);

// ChooseSigningKey: the key of `keys` (as ParseHmacKeys gives them) that mints a token naming
// `kid`: the key of that name; or, with `kid` empty, the only key there is. INVALID_ARGUMENT
// otherwise: no keys, no key of that name (an unnamed secret has none), or several to choose from.
[[nodiscard]] absl::StatusOr<HmacKey> ChooseSigningKey(const std::vector<HmacKey>& keys,
                                                       std::string_view kid);

class JwtVerifier {
 public:
  // Create: a verifier of HS256 tokens keyed by `hmac_keys` (checked as ParseHmacKeys does)
  // and of RS256 and ES256 tokens keyed by `jwks` (when not null), under `policy`. Without any
  // key it is INVALID_ARGUMENT: there is no mode that accepts tokens unchecked.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<const JwtVerifier>> Create(
      std::vector<HmacKey> hmac_keys, std::shared_ptr<JwksCache> jwks, JwtPolicy policy);
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<const JwtVerifier>> Create(
      std::vector<HmacKey> hmac_keys, JwtPolicy policy) {
    return Create(std::move(hmac_keys), nullptr, std::move(policy));
  }

  // Verify: the claims of `token` at `now`, or UNAUTHENTICATED (messages as in jwt.h, plus):
  // an `alg` this verifier has no key for, "none" included ("unsupported token algorithm");
  // a `kid` naming no key, even after reloading the key set ("unknown token key"); no key set
  // loaded yet ("token keys not loaded yet"); a key of another algorithm ("token algorithm does
  // not match its key"); no `kid` while more than one key could match ("token names no key (kid)
  // and several could verify it"); a signature that does not verify ("bad token signature").
  [[nodiscard]] absl::StatusOr<JwtClaims> Verify(std::string_view token, absl::Time now) const;

  const JwtPolicy& policy() const { return policy_; }
  // keys_version: changes whenever the public keys change, so that a token verified with a key
  // since withdrawn is checked again rather than remembered.
  uint64_t keys_version() const;

 private:
  JwtVerifier(std::vector<HmacKey> hmac_keys, std::shared_ptr<JwksCache> jwks, JwtPolicy policy)
      : hmac_keys_(std::move(hmac_keys)), jwks_(std::move(jwks)), policy_(std::move(policy)) {}

  absl::Status VerifyHmac(const JwtParts& parts) const;
  absl::Status VerifyPublic(const JwtParts& parts, JwsAlg alg) const;

  std::vector<HmacKey> hmac_keys_;
  std::shared_ptr<JwksCache> jwks_;
  JwtPolicy policy_;
};

}  // namespace qai::common
