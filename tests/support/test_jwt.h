#pragma once
// Signing keys for tests: an RSA or P-256 key pair made for the test, its public half as a JWK
// (and as PEM), and compact tokens signed with it. Everything is done with OpenSSL directly, not
// with common/, so the code under test checks signatures it did not make.
//
//   TestSigningKey rsa = TestSigningKey::Rsa("rsa-1");
//   std::string jwks = JwksJson({rsa.Jwk()});                       // {"keys":[{...}]}
//   std::string token = rsa.Sign(ClaimsJson("alice", absl::Now(), absl::Hours(1),
//                                           {{"iss", "https://issuer.example"}}));
//
// Key generation failing throws std::runtime_error (GoogleTest reports it as the test's failure).

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace qai::testing {

class TestSigningKey {
 public:
  // Rsa: a new RSA key of `bits` bits (RS256). Ec: a new P-256 key (ES256).
  static TestSigningKey Rsa(std::string kid, int bits = 2048);
  static TestSigningKey Ec(std::string kid);

  const std::string& kid() const { return kid_; }
  // alg: "RS256" or "ES256".
  std::string alg() const { return rsa_ ? "RS256" : "ES256"; }
  // Jwk: the public key as a JWK: kty, kid (when not empty), use "sig", alg, n and e or crv, x, y.
  nlohmann::json Jwk() const;
  // PublicPem: the public key as PEM (SubjectPublicKeyInfo): what an attacker has.
  std::string PublicPem() const;

  // Sign: `payload_json` under the header {"alg":alg(),"kid":kid(),"typ":"JWT"} (no kid when
  // empty).
  std::string Sign(std::string_view payload_json) const;
  // SignWithHeader: `payload_json` under `header_json`, signed with this key as alg() does.
  std::string SignWithHeader(std::string_view header_json, std::string_view payload_json) const;
  // SignatureOf: the JWS signature of `data`: RSASSA-PKCS1-v1_5 SHA-256, or ECDSA r || s
  // (32 bytes each) for ES256, or, with `der`, the ECDSA signature as DER (what JWS forbids).
  std::string SignatureOf(std::string_view data, bool der = false) const;

 private:
  TestSigningKey(std::shared_ptr<EVP_PKEY> key, std::string kid, bool rsa)
      : key_(std::move(key)), kid_(std::move(kid)), rsa_(rsa) {}
  std::shared_ptr<EVP_PKEY> key_;
  std::string kid_;
  bool rsa_;
};

// Base64Url: unpadded base64url.
std::string Base64Url(std::string_view bytes);
// JwksJson: {"keys":[...]} of `keys`.
std::string JwksJson(const std::vector<nlohmann::json>& keys);
// ClaimsJson: {"sub":sub,"iat":now,"exp":now+ttl} plus `extra`'s members.
std::string ClaimsJson(std::string_view sub, absl::Time now, absl::Duration ttl,
                       const nlohmann::json& extra = nlohmann::json::object());
// Hs256Token: `payload_json` under `header_json`, HMAC-SHA-256 keyed by `secret`.
std::string Hs256Token(std::string_view header_json, std::string_view payload_json,
                       std::string_view secret);

}  // namespace qai::testing
