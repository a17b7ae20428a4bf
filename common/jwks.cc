#include "common/jwks.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base64url.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"

namespace qai::common {
namespace {

using nlohmann::json;

constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;
constexpr size_t kP256CoordinateBytes = 32;
constexpr size_t kMaxJwkKidChars = 256;

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

// Quoted: a value from the document as the log shows it: JSON-quoted, and short.
std::string Quoted(const json& value) {
  std::string text = value.dump();
  return text.size() > 40 ? text.substr(0, 40) + "..." : text;
}

absl::Status Unusable(absl::string_view why) { return absl::InvalidArgumentError(why); }

// Bytes: the base64url member `name` of `jwk`, decoded.
absl::StatusOr<std::string> Bytes(const json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) return Unusable(absl::StrCat("`", name, "` missing"));
  std::optional<std::string> bytes = Base64UrlDecode(it->get_ref<const std::string&>());
  if (!bytes.has_value() || bytes->empty())
    return Unusable(absl::StrCat("`", name, "` is not base64url"));
  return *std::move(bytes);
}

Bn ToBn(const std::string& bytes) {
  return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                      static_cast<int>(bytes.size()), nullptr));
}

// FromParams: the public key `params` describe, once OpenSSL has checked it (for EC, that the
// point is on the curve; for RSA, that n and e are odd and e > 1).
std::shared_ptr<EVP_PKEY> FromParams(const char* type, OSSL_PARAM* params) {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return nullptr;
  }
  std::shared_ptr<EVP_PKEY> key(raw, PkeyFree{});
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, raw, nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return key;
}

absl::StatusOr<std::shared_ptr<EVP_PKEY>> RsaKey(const json& jwk) {
  QAI_ASSIGN_OR_RETURN(std::string n, Bytes(jwk, "n"));
  QAI_ASSIGN_OR_RETURN(std::string e, Bytes(jwk, "e"));
  Bn bn_n = ToBn(n), bn_e = ToBn(e);
  if (bn_n == nullptr || bn_e == nullptr) return Unusable("out of memory");
  const int bits = BN_num_bits(bn_n.get());
  if (bits < kMinRsaBits || bits > kMaxRsaBits) {
    return Unusable(absl::StrCat("an RSA modulus of ", bits, " bits (", kMinRsaBits, " to ",
                                 kMaxRsaBits, " verify)"));
  }
  if (e.size() > 8) return Unusable("`e` longer than 8 bytes");
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> build(OSSL_PARAM_BLD_new());
  if (build == nullptr ||
      OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return Unusable("out of memory");
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(build.get()));
  std::shared_ptr<EVP_PKEY> key = params == nullptr ? nullptr : FromParams("RSA", params.get());
  if (key == nullptr) return Unusable("not a valid RSA public key");
  return key;
}

absl::StatusOr<std::shared_ptr<EVP_PKEY>> P256Key(const json& jwk) {
  QAI_ASSIGN_OR_RETURN(std::string x, Bytes(jwk, "x"));
  QAI_ASSIGN_OR_RETURN(std::string y, Bytes(jwk, "y"));
  if (x.size() != kP256CoordinateBytes || y.size() != kP256CoordinateBytes) {
    return Unusable("`x` and `y` must be 32 bytes each");
  }
  std::string point = absl::StrCat("\x04", x, y);  // uncompressed: 0x04 || x || y
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  std::shared_ptr<EVP_PKEY> key = FromParams("EC", params);
  if (key == nullptr) return Unusable("not a point on P-256");
  return key;
}

// StringMember: the string member `name`, "" when absent; nullopt when present but not a string.
std::optional<std::string> StringMember(const json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end()) return "";
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// KeyAlg: which algorithm a key of this `kty` (and `crv`, `alg`) verifies.
absl::StatusOr<JwsAlg> KeyAlg(const json& jwk) {
  std::optional<std::string> kty = StringMember(jwk, "kty"), alg = StringMember(jwk, "alg"),
                             crv = StringMember(jwk, "crv"), use = StringMember(jwk, "use");
  if (!kty || !alg || !crv || !use)
    return Unusable("`kty`, `alg`, `crv` and `use` must be strings");
  if (!use->empty() && *use != "sig")
    return Unusable(absl::StrCat("use ", Quoted(*use), ", not \"sig\""));
  JwsAlg wanted;
  if (*kty == "RSA") {
    wanted = JwsAlg::kRs256;
  } else if (*kty == "EC") {
    if (*crv != "P-256")
      return Unusable(absl::StrCat("crv ", Quoted(*crv), ": only P-256 keys verify tokens"));
    wanted = JwsAlg::kEs256;
  } else {
    return Unusable(absl::StrCat("kty ", Quoted(*kty), ": only RSA and EC keys verify tokens"));
  }
  if (!alg->empty() && *alg != JwsAlgName(wanted)) {
    return Unusable(absl::StrCat("alg ", Quoted(*alg), ": a ", *kty, " key verifies ",
                                 ToAbsl(JwsAlgName(wanted)), " only"));
  }
  return wanted;
}

absl::StatusOr<Jwk> ParseKey(const json& jwk) {
  if (!jwk.is_object()) return Unusable("not a JSON object");
  std::optional<std::string> kid = StringMember(jwk, "kid");
  if (!kid.has_value() || kid->size() > kMaxJwkKidChars)
    return Unusable("`kid` is not a string of at most 256 characters");
  QAI_ASSIGN_OR_RETURN(JwsAlg alg, KeyAlg(jwk));
  QAI_ASSIGN_OR_RETURN(std::shared_ptr<EVP_PKEY> key,
                       alg == JwsAlg::kRs256 ? RsaKey(jwk) : P256Key(jwk));
  return Jwk{.kid = *std::move(kid), .alg = alg, .key = std::move(key)};
}

std::string KeyName(size_t index, const json& jwk) {
  std::string name = absl::StrCat("key ", index + 1);
  if (jwk.is_object() && jwk.contains("kid"))
    absl::StrAppend(&name, " (kid ", Quoted(jwk["kid"]), ")");
  return name;
}

}  // namespace

absl::StatusOr<JwkSet> JwkSet::Parse(std::string_view text) {
  const json doc = ParseUntrustedJson(text);
  if (!doc.is_object()) return absl::InvalidArgumentError("JWKS is not a JSON object");
  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array())
    return absl::InvalidArgumentError("JWKS has no `keys` array");
  if (keys->size() > kMaxJwks)
    return absl::InvalidArgumentError(absl::StrCat("JWKS has more than ", kMaxJwks, " keys"));
  JwkSet set;
  for (size_t i = 0; i < keys->size(); ++i) {
    absl::StatusOr<Jwk> key = ParseKey((*keys)[i]);
    if (key.ok()) {
      set.keys_.push_back(*std::move(key));
    } else {
      set.skipped_.push_back(absl::StrCat(KeyName(i, (*keys)[i]), ": ", key.status().message()));
    }
  }
  if (set.keys_.empty()) {
    std::string why =
        set.skipped_.empty() ? "" : absl::StrCat(" (", absl::StrJoin(set.skipped_, "; "), ")");
    return absl::InvalidArgumentError(absl::StrCat("JWKS has no usable RS256 or ES256 key", why));
  }
  return set;
}

absl::StatusOr<const Jwk*> JwkSet::Find(const std::optional<std::string>& kid, JwsAlg alg) const {
  const Jwk* match = nullptr;
  int matches = 0;
  bool kid_known = false;
  for (const Jwk& key : keys_) {
    if (kid.has_value() && key.kid != *kid) continue;
    kid_known = true;
    if (key.alg != alg) continue;
    match = &key;
    ++matches;
  }
  if (kid.has_value() && !kid_known) return absl::NotFoundError("unknown token key");
  if (matches == 0) {
    return absl::UnauthenticatedError(kid.has_value() ? "token algorithm does not match its key"
                                                      : "unknown token key");
  }
  if (matches > 1) {
    return absl::UnauthenticatedError(kid.has_value()
                                          ? "several keys have the token's kid"
                                          : "token names no key (kid) and several could verify it");
  }
  return match;
}

}  // namespace qai::common
