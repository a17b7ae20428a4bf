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

// GlobalFlags: --projects-addr, --messages-addr, --orchestrator-addr, --token, --api-key,
// --timeout, --json,
// --request-id, --verbose.
std::vector<FlagSpec> GlobalFlags();

// GlobalOptions: the resolved global flags of one invocation.
struct GlobalOptions {
  std::string projects_addr;
  std::string messages_addr;
  std::string orchestrator_addr;
  // Sent as `authorization: Bearer <token>` when non-empty.
  std::string token;
  // Sent as `x-api-key` when non-empty.
  std::string api_key;
  // Deadline of each call, not of the whole command (`list --all` makes several calls).
  absl::Duration timeout;
  bool json = false;
  bool verbose = false;
  // Sent as `x-request-id` on every call of the invocation and as the `request_id` of a
  // mutation: --request-id, or a random UUID v4. A fresh key is still worth sending: repeating
  // a command whose outcome is unknown with `--request-id <that key>` cannot apply it twice.
  std::string request_id;
};

// GlobalOptionsFrom: reads the global flags out of parsed arguments.
GlobalOptions GlobalOptionsFrom(const Args& args);

// NewUuidV4: a random RFC 4122 version-4 UUID in lowercase hex.
std::string NewUuidV4();

}  // namespace qai::cli
