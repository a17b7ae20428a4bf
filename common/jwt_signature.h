#pragma once
// The three JWS algorithms QAI accepts (RFC 7518) and how each checks a signature, with
// OpenSSL 3: HS256 (HMAC-SHA-256 with a shared secret), RS256 (RSASSA-PKCS1-v1_5 with SHA-256)
// and ES256 (ECDSA on P-256 with SHA-256). There is no "none".
//
//   std::optional<JwsAlg> alg = ParseJwsAlg(parts.alg);
//   bool good = *alg == JwsAlg::kHs256 ? VerifyHs256(parts.signing_input, parts.signature, secret)
//                                      : VerifyWithPublicKey(*alg, key, parts.signing_input,
//                                      bytes);

#include <openssl/evp.h>

#include <optional>
#include <string>
#include <string_view>

namespace qai::common {

enum class JwsAlg { kHs256, kRs256, kEs256 };

// ParseJwsAlg: the algorithm a header's `alg` names exactly ("HS256", "RS256", "ES256"), or
// nullopt for anything else ("none", "HS512", "hs256", ...).
[[nodiscard]] std::optional<JwsAlg> ParseJwsAlg(std::string_view name);
[[nodiscard]] std::string_view JwsAlgName(JwsAlg alg);

// HmacSha256: the raw 32-byte MAC of `data` under `key` ("" only if OpenSSL fails).
[[nodiscard]] std::string HmacSha256(std::string_view key, std::string_view data);

// VerifyHs256: whether `signature` (base64url text) is the HS256 signature of `signing_input`
// under `secret`, compared in constant time on the canonical spelling (so no other spelling
// of a valid signature passes). An empty secret verifies nothing.
[[nodiscard]] bool VerifyHs256(std::string_view signing_input, std::string_view signature,
                               std::string_view secret);

// VerifyWithPublicKey: whether `signature` (raw bytes) is the RS256 or ES256 signature of
// `signing_input` under `key`. The key must be of the algorithm's type (RSA for RS256, EC for
// ES256), or nothing verifies: a key is never used with another algorithm. An RS256 signature
// is as long as the modulus; an ES256 one is r || s, 32 bytes each (JWS's form, not DER).
[[nodiscard]] bool VerifyWithPublicKey(JwsAlg alg, EVP_PKEY* key, std::string_view signing_input,
                                       std::string_view signature);

}  // namespace qai::common
