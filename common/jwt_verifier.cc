#include "common/jwt_verifier.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base64url.h"
#include "common/jwt_signature.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace qai::common {
namespace {

constexpr size_t kMaxHmacKidChars = 24;

bool IsHmacKid(absl::string_view kid) {
  if (kid.empty() || kid.size() > kMaxHmacKidChars) return false;
  for (char c : kid) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return false;
  }
  return true;
}

// NamedEntries: the `kid=secret` entries of `value`, or nullopt when it is not such a list.
std::optional<std::vector<HmacKey>> NamedEntries(std::string_view value) {
  std::vector<HmacKey> keys;
  for (absl::string_view entry : absl::StrSplit(ToAbsl(value), ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos || !IsHmacKid(entry.substr(0, eq)) ||
        eq + 1 == entry.size()) {
      return std::nullopt;
    }
    keys.push_back({std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1))});
  }
  return keys;
}

absl::Status CheckHmacKeys(const std::vector<HmacKey>& keys) {
  if (keys.size() > kMaxHmacKeys) {
    return absl::InvalidArgumentError(
        absl::StrCat("QAI_JWT_SECRET has more than ", kMaxHmacKeys, " keys"));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string which =
        keys.size() == 1 ? "QAI_JWT_SECRET" : absl::StrCat("QAI_JWT_SECRET entry ", i + 1);
    if (keys[i].secret.size() < kMinHmacKeyBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(which, " is shorter than ", kMinHmacKeyBytes,
                       " bytes (make one with: openssl rand -hex 32)"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (keys[j].kid == keys[i].kid) {
        return absl::InvalidArgumentError(absl::StrCat(which, " has the key id of entry ", j + 1));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<HmacKey>> ParseHmacKeys(std::string_view value) {
  if (value.empty()) return std::vector<HmacKey>();
  std::vector<HmacKey> keys =
      NamedEntries(value).value_or(std::vector<HmacKey>{{"", std::string(value)}});
  QAI_RETURN_IF_ERROR(CheckHmacKeys(keys));
  return keys;
}

absl::StatusOr<HmacKey> ChooseSigningKey(const std::vector<HmacKey>& keys, std::string_view kid) {
  if (keys.empty()) return absl::InvalidArgumentError("QAI_JWT_SECRET holds no key");
  if (kid.empty()) {
    if (keys.size() > 1)
      return absl::InvalidArgumentError("QAI_JWT_SECRET holds several keys: name one (kid)");
    return keys.front();
  }
  for (const HmacKey& key : keys) {
    if (key.kid == kid) return key;
  }
  return absl::InvalidArgumentError(keys.front().kid.empty()
                                        ? "QAI_JWT_SECRET names no key: give it as kid=secret"
                                        : "QAI_JWT_SECRET has no key of that name (kid)");
}

absl::StatusOr<std::shared_ptr<const JwtVerifier>> JwtVerifier::Create(
    std::vector<HmacKey> hmac_keys, std::shared_ptr<JwksCache> jwks, JwtPolicy policy) {
  QAI_RETURN_IF_ERROR(CheckHmacKeys(hmac_keys));
  if (hmac_keys.empty() && jwks == nullptr) {
    return absl::InvalidArgumentError("no token keys: set QAI_JWT_SECRET or QAI_JWT_JWKS");
  }
  return std::shared_ptr<const JwtVerifier>(
      new JwtVerifier(std::move(hmac_keys), std::move(jwks), std::move(policy)));
}

uint64_t JwtVerifier::keys_version() const { return jwks_ == nullptr ? 0 : jwks_->version(); }

absl::Status JwtVerifier::VerifyHmac(const JwtParts& parts) const {
  const HmacKey* key = nullptr;
  if (parts.kid.has_value()) {
    for (const HmacKey& k : hmac_keys_) {
      if (!k.kid.empty() && k.kid == *parts.kid) key = &k;
    }
    if (key == nullptr) return absl::UnauthenticatedError("unknown token key");
  } else {
    if (hmac_keys_.size() > 1) {
      return absl::UnauthenticatedError("token names no key (kid) and several could verify it");
    }
    key = &hmac_keys_.front();
  }
  if (!VerifyHs256(parts.signing_input, parts.signature, key->secret)) {
    return absl::UnauthenticatedError("bad token signature");
  }
  return absl::OkStatus();
}

absl::Status JwtVerifier::VerifyPublic(const JwtParts& parts, JwsAlg alg) const {
  std::optional<std::string> signature = Base64UrlDecode(parts.signature);
  if (!signature.has_value()) return absl::UnauthenticatedError("bad token signature");
  std::shared_ptr<const JwkSet> keys = jwks_->Keys();
  absl::StatusOr<const Jwk*> key = absl::NotFoundError("no keys yet");
  if (keys != nullptr) key = keys->Find(parts.kid, alg);
  if (absl::IsNotFound(key.status())) {
    // A key the set lacks may be a new one (the provider rotated): the set is reloaded, rarely.
    keys = jwks_->KeysAfterMiss();
    if (keys == nullptr) return absl::UnauthenticatedError("token keys not loaded yet");
    key = keys->Find(parts.kid, alg);
  }
  if (!key.ok()) return absl::UnauthenticatedError(key.status().message());
  if (!VerifyWithPublicKey(alg, (*key)->key.get(), parts.signing_input, *signature)) {
    return absl::UnauthenticatedError("bad token signature");
  }
  return absl::OkStatus();
}

absl::StatusOr<JwtClaims> JwtVerifier::Verify(std::string_view token, absl::Time now) const {
  QAI_ASSIGN_OR_RETURN(JwtParts parts, SplitJwt(token));
  // Each algorithm has its own keys; nothing from the payload is trusted until one verifies.
  const std::optional<JwsAlg> alg = ParseJwsAlg(parts.alg);
  absl::Status signature = absl::UnauthenticatedError("unsupported token algorithm");
  if (alg == JwsAlg::kHs256 && !hmac_keys_.empty()) signature = VerifyHmac(parts);
  if ((alg == JwsAlg::kRs256 || alg == JwsAlg::kEs256) && jwks_ != nullptr)
    signature = VerifyPublic(parts, *alg);
  if (!signature.ok()) return signature;
  return ReadClaims(parts.payload, policy_, now);
}

}  // namespace qai::common
