#include "tools/qai/token_command.h"

#include <ostream>

#include "absl/time/clock.h"
#include "common/jwt.h"
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

int RunToken(const Invocation& inv) {
  const absl::Time now = absl::Now();
  common::JwtClaims claims{
      .subject = inv.args.Get("sub"),
      .roles = {},
      .expires = now + inv.args.GetDuration("ttl"),
      .not_before = std::nullopt,
      .issued_at = now,
  };
  if (inv.args.Switch("admin")) claims.roles.push_back("admin");
  std::string token = common::SignJwt(claims, inv.args.Get("jwt-secret"));
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
              {.name = "sub", .value_name = "ID", .help = "principal id (the JWT subject)",
               .required = true},
              {.name = "admin", .help = "add the admin role"},
              {.name = "ttl", .value_name = "DURATION", .help = "lifetime of the token",
               .default_value = "24h", .validate = IsPositiveDuration},
              {.name = "jwt-secret", .value_name = "SECRET", .help = "HS256 signing key",
               .env = "QAI_JWT_SECRET", .required = true},
          },
      .summary = "print a development bearer token (HS256 JWT) for --token / QAI_TOKEN",
      .run = RunToken,
  };
}

}  // namespace qai::cli
