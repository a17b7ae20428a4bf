#pragma once
// The options that say which bearer tokens a service accepts (docs/operations.md, "Running a
// service"): QAI_JWT_JWKS, QAI_JWT_SECRET, QAI_JWT_ISSUER, QAI_JWT_AUDIENCE and
// QAI_JWT_MAX_LIFETIME.
//
//   std::vector<Option> options = JwtOptions();            // part of ServiceOptions
//   absl::StatusOr<std::shared_ptr<const JwtVerifier>> tokens =
//       JwtVerifierFrom(config, /*required=*/true);

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/jwt_verifier.h"

namespace qai::common {

// JwtOptions: the options' declarations.
std::vector<Option> JwtOptions();

// JwtVerifierFrom: the verifier the options describe. With no key configured it is null (bearer
// tokens refused) when not `required`, and INVALID_ARGUMENT naming the options when it is, since a
// service whose users cannot sign in should not start. Bad values are INVALID_ARGUMENT naming
// their option: a short or repeated HS256 key, a JWKS without QAI_JWT_ISSUER, a JWKS URL that is
// not https, a JWKS file that does not load. A JWKS URL that cannot be fetched at start is not
// an error: the service starts, refuses provider tokens ("token keys not loaded yet") and logs
// each failed attempt while it retries (backoff up to 5 minutes, or at once when a token comes,
// at most every 30 s).
[[nodiscard]] absl::StatusOr<std::shared_ptr<const JwtVerifier>> JwtVerifierFrom(
    const Config& config, bool required);

}  // namespace qai::common
