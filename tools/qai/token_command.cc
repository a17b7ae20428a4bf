#include "tools/qai/token_command.h"

#include <ostream>

#include "absl/time/clock.h"
#include "common/jwt.h"
#include "common/jwt_verifier.h"
#include "nlohmann/json.hpp"

namespace qai::cli {
namespace {

std::string IsPositiveDuration(std::string_view value) {
  if (std::string why = common::IsDuration(value); !why.empty()) return why;
  absl::Duration d;
  return absl::ParseDuration(std::string(value), &d) && d > absl::ZeroDuration()
             ? ""
             : "must be longer than zero";
}

// IsHmacKeys: QAI_JWT_SECRET as the services read it (common/jwt_verifier.h).
std::string IsHmacKeys(std::string_view value) {
  absl::StatusOr<std::vector<common::HmacKey>> keys = common::ParseHmacKeys(value);
  return keys.ok() ? "" : std::string(keys.status().message());
}

int RunToken(const Invocation& inv) {
  absl::StatusOr<std::vector<common::HmacKey>> keys =
      common::ParseHmacKeys(inv.args.Get("jwt-secret"));
  absl::StatusOr<common::HmacKey> key =
      keys.ok() ? common::ChooseSigningKey(*keys, inv.args.Get("kid")) : keys.status();
  if (!key.ok()) {
    inv.err << "error: " << key.status().message() << "\n";
    return kExitUsage;
  }
  const absl::Time now = absl::Now();
  common::JwtClaims claims{
      .subject = inv.args.Get("sub"),
      .roles = {},
      .expires = now + inv.args.GetDuration("ttl"),
      .not_before = std::nullopt,
      .issued_at = now,
      .issuer = inv.args.Get("issuer"),
      .audience = {},
  };
  if (inv.args.Switch("admin")) claims.roles.push_back("admin");
  if (!inv.args.Get("audience").empty()) claims.audience.push_back(inv.args.Get("audience"));
  std::string token = common::SignJwt(claims, key->secret, key->kid);
  if (inv.args.Switch("json")) {
    inv.out << nlohmann::json{{"token", token}}.dump() << "\n";
  } else {
    inv.out << token << "\n";
  }
  return kExitOk;
}

}  // namespace

CommandSpec TokenCommand() {
  return {
      .path = {"token"},
      .positionals = {},
      .flags =
          {
              {.name = "sub",
               .value_name = "ID",
               .help = "principal id (the JWT subject)",
               .required = true},
              {.name = "admin", .help = "add the admin role"},
              {.name = "ttl",
               .value_name = "DURATION",
               .help = "lifetime of the token",
               .default_value = "24h",
               .validate = IsPositiveDuration},
              {.name = "jwt-secret",
               .value_name = "SECRET",
               .help = "HS256 signing key: the services' QAI_JWT_SECRET (one secret, or "
                       "kid=secret,...)",
               .env = "QAI_JWT_SECRET",
               .required = true,
               .validate = IsHmacKeys},
              {.name = "kid",
               .value_name = "KID",
               .help = "which of QAI_JWT_SECRET's named keys signs, named in the token's header"},
              {.name = "issuer",
               .value_name = "ISS",
               .help = "the token's `iss` (QAI_JWT_ISSUER, when the services check one)",
               .env = "QAI_JWT_ISSUER"},
              {.name = "audience",
               .value_name = "AUD",
               .help = "the token's `aud` (one of QAI_JWT_AUDIENCE, when the services check them)"},
          },
      .summary = "print a development bearer token (HS256 JWT) for --token / QAI_TOKEN",
      .run = RunToken,
  };
}

}  // namespace qai::cli
