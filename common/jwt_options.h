#pragma once
// The options that say which bearer tokens a service accepts (README, "Running a service"):
// QAI_JWT_SECRET, QAI_JWT_ISSUER, QAI_JWT_AUDIENCE and QAI_JWT_MAX_LIFETIME.
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
// their option.
[[nodiscard]] absl::StatusOr<std::shared_ptr<const JwtVerifier>> JwtVerifierFrom(const Config& config, bool required);

}  // namespace qai::common
