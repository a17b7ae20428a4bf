#pragma once
// JwkSet: the public keys of a JSON Web Key Set (RFC 7517), as an identity provider publishes
// them (Clerk, Auth0, Keycloak, ...: https://<domain>/.well-known/jwks.json), ready for OpenSSL.
//
//   absl::StatusOr<JwkSet> set =
//   JwkSet::Parse(R"({"keys":[{"kty":"RSA","kid":"k1","n":"...","e":"AQAB"}]})");
//   absl::StatusOr<const Jwk*> key = set->Find("k1", JwsAlg::kRs256);
//   bool good = VerifyWithPublicKey(JwsAlg::kRs256, (*key)->key.get(), signing_input, signature);
//
// Immutable once parsed, so one set may be shared between threads.

#include <openssl/evp.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/jwt_signature.h"

namespace qai::common {

// The most keys a set may hold (providers publish two or three, more during a rotation).
inline constexpr size_t kMaxJwks = 64;

// Jwk: one public key, the algorithm it verifies and its `kid` ("" when it has none).
struct Jwk {
  std::string kid;
  JwsAlg alg;  // kRs256 or kEs256
  std::shared_ptr<EVP_PKEY> key;
};

class JwkSet {
 public:
  // Parse: the signing keys of a JWKS document: `kty` "RSA" (`n` and `e`, a modulus of 2048 to
  // 8192 bits) for RS256, `kty` "EC" with `crv` "P-256" (`x` and `y`, a point on the curve) for
  // ES256, all base64url without padding. Any other key is left out, with why in skipped():
  // not for signatures (`use` other than "sig"), meant for another algorithm (`alg` other than
  // the RS256 or ES256 its type allows), of another type (a symmetric "oct" key included: a
  // secret never comes from a key set), or broken (bad base64url, a point off the curve, a short
  // modulus, a `kid` that is not a string). INVALID_ARGUMENT: not a JSON object with a `keys`
  // array, more than kMaxJwks entries, or no usable key at all.
  [[nodiscard]] static absl::StatusOr<JwkSet> Parse(std::string_view json);

  const std::vector<Jwk>& keys() const { return keys_; }
  // skipped: why keys were left out ("key 3 (kid \"enc-1\"): use \"enc\", not \"sig\""), for the
  // log.
  const std::vector<std::string>& skipped() const { return skipped_; }

  // Find: the one key that may verify a token of `alg` naming `kid` (nullopt: no kid). NOT_FOUND
  // when `kid` names no key at all ("unknown token key": a rotation may have added it);
  // otherwise UNAUTHENTICATED: the key named is for another algorithm ("token algorithm does not
  // match its key"), no key is for `alg` ("unknown token key"), or, without a kid, several are
  // ("token names no key (kid) and several could verify it").
  [[nodiscard]] absl::StatusOr<const Jwk*> Find(const std::optional<std::string>& kid,
                                                JwsAlg alg) const;

 private:
  std::vector<Jwk> keys_;
  std::vector<std::string> skipped_;
};

}  // namespace qai::common
