#pragma once
// The flags every `qai` command accepts (where the services are, credentials, deadline, output
// format, request id) and the settings they resolve to.
//
//   CliSpec cli{.program = "qai", .global_flags = GlobalFlags(), .commands = ...};
//   GlobalOptions options = GlobalOptionsFrom(invocation.args);

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tools/qai/args.h"

namespace qai::cli {

// GlobalFlags: --projects-addr, --token, --api-key, --timeout, --json, --request-id, --verbose.
std::vector<FlagSpec> GlobalFlags();

// GlobalOptions: the resolved global flags of one invocation.
struct GlobalOptions {
  std::string projects_addr;
  // Sent as `authorization: Bearer <token>` when non-empty.
  std::string token;
  // Sent as `x-api-key` when non-empty.
  std::string api_key;
  // Deadline of each call, not of the whole command (`list --all` makes several calls).
  absl::Duration timeout;
  bool json = false;
  bool verbose = false;
  // Sent as `x-request-id` on every call of the invocation: --request-id, or a random UUID v4.
  std::string request_id;
  // Whether --request-id was given; only then is it also the mutation's idempotency key, since
  // a fresh random key would protect nothing.
  bool request_id_given = false;
};

// GlobalOptionsFrom: reads the global flags out of parsed arguments.
GlobalOptions GlobalOptionsFrom(const Args& args);

// NewUuidV4: a random RFC 4122 version-4 UUID in lowercase hex.
std::string NewUuidV4();

}  // namespace qai::cli
