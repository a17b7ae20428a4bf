#include "common/jwt_options.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jwks_cache.h"
#include "common/jwks_fetch.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace qai::common {
namespace {

// A token may not be made to live longer than this, whatever the configuration says.
constexpr absl::Duration kLongestMaxLifetime = absl::Hours(24 * 30);

std::string IsMaxLifetime(std::string_view value) {
  if (std::string why = IsDuration(value); !why.empty()) return why;
  absl::Duration d;
  (void)absl::ParseDuration(std::string(value), &d);
  return d > absl::ZeroDuration() && d <= kLongestMaxLifetime
             ? ""
             : "must be longer than 0 and at most 720h";
}

// JwksFrom: the identity provider's keys (null when `source` is empty). A file must load at
// start; a URL that cannot be fetched yet is retried while the service runs (JwksCache).
absl::StatusOr<std::shared_ptr<JwksCache>> JwksFrom(const std::string& source,
                                                    const JwtPolicy& policy) {
  if (source.empty()) return std::shared_ptr<JwksCache>();
  // An identity provider signs tokens for every application it serves (and a shared key set,
  // such as a cloud's, for every tenant): without its issuer anyone's tokens would do.
  if (policy.issuer.empty()) {
    return absl::InvalidArgumentError(
        "QAI_JWT_ISSUER must be set with QAI_JWT_JWKS: the provider's issuer URL");
  }
  if (policy.audiences.empty()) {
    Log(LogLevel::kWarn,
        "QAI_JWT_AUDIENCE is empty: tokens the issuer made for other applications are accepted "
        "too");
  }
  QAI_ASSIGN_OR_RETURN(JwksLoader loader, JwksLoaderFor(source));
  absl::StatusOr<std::shared_ptr<JwksCache>> cache = JwksCache::Start(
      {.source = source, .load = std::move(loader)}, /*require_first=*/!IsJwksUrl(source));
  if (!cache.ok())
    return absl::InvalidArgumentError(absl::StrCat("QAI_JWT_JWKS: ", cache.status().message()));
  return cache;
}

}  // namespace

std::vector<Option> JwtOptions() {
  return {
      {.name = "jwt-secret",
       .help = "HS256 key of end users' bearer tokens (development): one secret, or kid=secret,... "
               "while one "
               "replaces another; each at least 32 bytes",
       .secret = true},
      {.name = "jwt-jwks",
       .help =
           "RS256/ES256 public keys of bearer tokens (an identity provider's): a JWKS file, or an "
           "https:// URL "
           "fetched and refreshed (Cache-Control max-age, and when a token names an unknown kid)"},
      {.name = "jwt-issuer",
       .help =
           "the `iss` every bearer token must carry (empty: not checked; required with jwt-jwks)"},
      {.name = "jwt-audience",
       .help =
           "comma-separated audiences; a bearer token's `aud` must name one (empty: not checked)"},
      {.name = "jwt-max-lifetime",
       .default_value = "24h",
       .help = "the longest a bearer token may live (exp - iat, or exp - now without iat)",
       .validate = IsMaxLifetime},
  };
}

absl::StatusOr<std::shared_ptr<const JwtVerifier>> JwtVerifierFrom(const Config& config,
                                                                   bool required) {
  QAI_ASSIGN_OR_RETURN(std::vector<HmacKey> hmac, ParseHmacKeys(config.Get("jwt-secret")));
  const std::string& jwks_source = config.Get("jwt-jwks");
  if (hmac.empty() && jwks_source.empty()) {
    if (!required) return std::shared_ptr<const JwtVerifier>();
    return absl::InvalidArgumentError(
        "QAI_JWT_JWKS or QAI_JWT_SECRET must be set: this service's users sign in with bearer "
        "tokens");
  }
  JwtPolicy policy{.issuer = config.Get("jwt-issuer"),
                   .audiences = config.GetList("jwt-audience"),
                   .max_lifetime = config.GetDuration("jwt-max-lifetime")};
  QAI_ASSIGN_OR_RETURN(std::shared_ptr<JwksCache> jwks, JwksFrom(jwks_source, policy));
  Log(LogLevel::kInfo, "bearer tokens",
      {{"hs256_keys", hmac.size()},
       {"jwks", jwks_source},
       {"issuer", policy.issuer},
       {"audiences", policy.audiences},
       {"max_lifetime", absl::FormatDuration(policy.max_lifetime)}});
  return JwtVerifier::Create(std::move(hmac), std::move(jwks), std::move(policy));
}

}  // namespace qai::common
