#include "common/jwt_signature.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>

#include <memory>

#include "common/base64url.h"

namespace qai::common {
namespace {

// An ES256 signature: r and s, each a big-endian 32-byte integer.
constexpr size_t kEs256Half = 32;

struct SigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// Es256ToDer: the DER ECDSA-Sig-Value OpenSSL verifies, from JWS's r || s; "" when malformed.
std::string Es256ToDer(std::string_view raw) {
  if (raw.size() != 2 * kEs256Half) return "";
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(bytes, kEs256Half, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + kEs256Half, kEs256Half, nullptr);
  std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
  if (r == nullptr || s == nullptr || sig == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return "";
  }
  unsigned char* der = nullptr;
  const int length = i2d_ECDSA_SIG(sig.get(), &der);
  if (length <= 0) return "";
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

bool KeyFits(JwsAlg alg, EVP_PKEY* key) {
  if (key == nullptr) return false;
  if (alg == JwsAlg::kRs256) return EVP_PKEY_is_a(key, "RSA") == 1;
  if (alg == JwsAlg::kEs256) return EVP_PKEY_is_a(key, "EC") == 1;
  return false;
}

bool DigestVerify(EVP_PKEY* key, std::string_view signing_input, std::string_view signature) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1)
    return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(),
                          reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
}

}  // namespace

std::optional<JwsAlg> ParseJwsAlg(std::string_view name) {
  if (name == "HS256") return JwsAlg::kHs256;
  if (name == "RS256") return JwsAlg::kRs256;
  if (name == "ES256") return JwsAlg::kEs256;
  return std::nullopt;
}

std::string_view JwsAlgName(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::kHs256:
      return "HS256";
    case JwsAlg::kRs256:
      return "RS256";
    case JwsAlg::kEs256:
      return "ES256";
  }
  return "";
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  const unsigned char* result =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &mac_len);
  if (result == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

bool VerifyHs256(std::string_view signing_input, std::string_view signature,
                 std::string_view secret) {
  if (secret.empty()) return false;
  const std::string mac = HmacSha256(secret, signing_input);
  if (mac.empty()) return false;
  // Comparing base64url text instead of decoded bytes also refuses other spellings.
  const std::string expected = Base64UrlEncode(mac);
  return signature.size() == expected.size() &&
         CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) == 0;
}

bool VerifyWithPublicKey(JwsAlg alg, EVP_PKEY* key, std::string_view signing_input,
                         std::string_view signature) {
  if (!KeyFits(alg, key)) return false;
  if (alg == JwsAlg::kRs256) {
    if (signature.size() != static_cast<size_t>(EVP_PKEY_get_size(key))) return false;
    return DigestVerify(key, signing_input, signature);
  }
  const std::string der = Es256ToDer(signature);
  return !der.empty() && DigestVerify(key, signing_input, der);
}

}  // namespace qai::common
