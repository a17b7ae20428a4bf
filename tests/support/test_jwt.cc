#include "tests/support/test_jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <stdexcept>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace qai::testing {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::string Bytes(const unsigned char* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// BnParam: a big-number parameter of `key`, big-endian, left-padded to `width` bytes (0: as is).
std::string BnParam(EVP_PKEY* key, const char* name, int width = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1)
    throw std::runtime_error(absl::StrCat("no key parameter ", name));
  std::string out(width > 0 ? static_cast<size_t>(width) : static_cast<size_t>(BN_num_bytes(bn)),
                  '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

std::string DerToRaw(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) throw std::runtime_error("bad ECDSA signature");
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

}  // namespace

TestSigningKey TestSigningKey::Rsa(std::string kid, int bits) {
  EVP_PKEY* key = EVP_RSA_gen(static_cast<unsigned int>(bits));
  if (key == nullptr) throw std::runtime_error("RSA key generation failed");
  return TestSigningKey(std::shared_ptr<EVP_PKEY>(key, PkeyFree{}), std::move(kid), true);
}

TestSigningKey TestSigningKey::Ec(std::string kid) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) throw std::runtime_error("P-256 key generation failed");
  return TestSigningKey(std::shared_ptr<EVP_PKEY>(key, PkeyFree{}), std::move(kid), false);
}

nlohmann::json TestSigningKey::Jwk() const {
  nlohmann::json jwk = {{"use", "sig"}, {"alg", alg()}};
  if (!kid_.empty()) jwk["kid"] = kid_;
  if (rsa_) {
    jwk["kty"] = "RSA";
    jwk["n"] = Base64Url(BnParam(key_.get(), OSSL_PKEY_PARAM_RSA_N));
    jwk["e"] = Base64Url(BnParam(key_.get(), OSSL_PKEY_PARAM_RSA_E));
  } else {
    jwk["kty"] = "EC";
    jwk["crv"] = "P-256";
    jwk["x"] = Base64Url(BnParam(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32));
    jwk["y"] = Base64Url(BnParam(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32));
  }
  return jwk;
}

std::string TestSigningKey::PublicPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio, key_.get()) != 1)
    throw std::runtime_error("PEM export failed");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  return pem;
}

std::string TestSigningKey::SignatureOf(std::string_view data, bool der) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t size = 0;
  std::string out;
  if (ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_.get()) == 1 &&
      EVP_DigestSign(ctx, nullptr, &size, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) == 1) {
    out.resize(size);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(out.data()), &size,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
      out.clear();
    }
    out.resize(size);
  }
  EVP_MD_CTX_free(ctx);
  if (out.empty()) throw std::runtime_error("signing failed");
  return rsa_ || der ? out : DerToRaw(out);
}

std::string TestSigningKey::Sign(std::string_view payload_json) const {
  nlohmann::json header = {{"alg", alg()}, {"typ", "JWT"}};
  if (!kid_.empty()) header["kid"] = kid_;
  return SignWithHeader(header.dump(), payload_json);
}

std::string TestSigningKey::SignWithHeader(std::string_view header_json,
                                           std::string_view payload_json) const {
  const std::string input = absl::StrCat(Base64Url(header_json), ".", Base64Url(payload_json));
  return absl::StrCat(input, ".", Base64Url(SignatureOf(input)));
}

std::string Base64Url(std::string_view bytes) {
  return absl::WebSafeBase64Escape(absl::string_view(bytes.data(), bytes.size()));
}

std::string JwksJson(const std::vector<nlohmann::json>& keys) {
  return nlohmann::json{{"keys", keys}}.dump();
}

std::string ClaimsJson(std::string_view sub, absl::Time now, absl::Duration ttl,
                       const nlohmann::json& extra) {
  nlohmann::json claims = {{"sub", std::string(sub)},
                           {"iat", absl::ToUnixSeconds(now)},
                           {"exp", absl::ToUnixSeconds(now + ttl)}};
  for (const auto& [name, value] : extra.items()) claims[name] = value;
  return claims.dump();
}

std::string Hs256Token(std::string_view header_json, std::string_view payload_json,
                       std::string_view secret) {
  const std::string input = absl::StrCat(Base64Url(header_json), ".", Base64Url(payload_json));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &size);
  return absl::StrCat(input, ".", Base64Url(Bytes(mac, size)));
}

}  // namespace qai::testing
