#pragma once
// `qai token`: mints a development bearer token (HS256 JWT) for talking to the services
// without an identity provider. Anyone holding QAI_JWT_SECRET can do the same, which is why the
// secret must stay out of production clients.
//
//   export QAI_TOKEN=$(qai token --sub user-42 --admin --ttl 1h)

#include "tools/qai/args.h"

namespace qai::cli {

// TokenCommand: the `token` command's declaration and handler.
CommandSpec TokenCommand();

}  // namespace qai::cli
