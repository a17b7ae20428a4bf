#pragma once
// `qai token`: mints a development bearer token (HS256 JWT) for talking to the services
// without an identity provider. Anyone holding QAI_JWT_SECRET can do the same, which is why the
// secret must stay out of production clients. QAI_JWT_SECRET is read as the services read it: one
// secret, or `kid=secret` entries, of which --kid picks the signer (named in the token's header).
//
//   export QAI_TOKEN=$(qai token --sub user-42 --admin --ttl 1h)
//   export QAI_TOKEN=$(QAI_JWT_SECRET=2024=...,2025=... qai token --sub user-42 --kid 2025)

#include "tools/qai/args.h"

namespace qai::cli {

// TokenCommand: the `token` command's declaration and handler.
CommandSpec TokenCommand();

}  // namespace qai::cli
