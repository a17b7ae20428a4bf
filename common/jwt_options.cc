#include "common/jwt_options.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace qai::common {
namespace {

// A token may not be made to live longer than this, whatever the configuration says.
constexpr absl::Duration kLongestMaxLifetime = absl::Hours(24 * 30);

std::string IsMaxLifetime(std::string_view value) {
  if (std::string why = IsDuration(value); !why.empty()) return why;
  absl::Duration d;
  (void)absl::ParseDuration(std::string(value), &d);
  return d > absl::ZeroDuration() && d <= kLongestMaxLifetime ? "" : "must be longer than 0 and at most 720h";
}

}  // namespace

std::vector<Option> JwtOptions() {
  return {
      {.name = "jwt-secret",
       .help = "HS256 key of end users' bearer tokens (development): one secret, or kid=secret,... while one "
               "replaces another; each at least 32 bytes",
       .secret = true},
      {.name = "jwt-issuer", .help = "the `iss` every bearer token must carry (empty: not checked)"},
      {.name = "jwt-audience",
       .help = "comma-separated audiences; a bearer token's `aud` must name one (empty: not checked)"},
      {.name = "jwt-max-lifetime", .default_value = "24h",
       .help = "the longest a bearer token may live (exp - iat, or exp - now without iat)", .validate = IsMaxLifetime},
  };
}

absl::StatusOr<std::shared_ptr<const JwtVerifier>> JwtVerifierFrom(const Config& config, bool required) {
  absl::StatusOr<std::vector<HmacKey>> hmac = ParseHmacKeys(config.Get("jwt-secret"));
  if (!hmac.ok()) return hmac.status();
  if (hmac->empty()) {
    if (!required) return std::shared_ptr<const JwtVerifier>();
    return absl::InvalidArgumentError("QAI_JWT_SECRET must be set: this service's users sign in with bearer tokens");
  }
  JwtPolicy policy{.issuer = config.Get("jwt-issuer"),
                   .audiences = config.GetList("jwt-audience"),
                   .max_lifetime = config.GetDuration("jwt-max-lifetime")};
  Log(LogLevel::kInfo, "bearer tokens",
      {{"hs256_keys", hmac->size()}, {"issuer", policy.issuer}, {"audiences", policy.audiences},
       {"max_lifetime", absl::FormatDuration(policy.max_lifetime)}});
  return JwtVerifier::Create(*std::move(hmac), std::move(policy));
}

}  // namespace qai::common
