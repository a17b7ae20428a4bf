#pragma once
// Sandbox setup: the orchestrator's sandbox options, and the start-up choice between bwrap and
// none, made by trying each: bubblewrap is used when it really runs a command here.
//
//   ... ServiceBase::Init("orchestrator", argc, argv, WithSandboxOptions({...the others...})) ...
//   auto choice = ChooseSandbox(config.Get("sandbox"), SandboxOptionsFrom(config), sandbox_root);
//   if (!choice.ok()) return ExitCodeFor(choice.status());  // e.g. QAI_SANDBOX=bwrap without bwrap
//   worker_options.limits.command.sandbox = choice->sandbox;

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "services/orchestrator/sandbox.h"

namespace qai::orchestrator {

// WithSandboxOptions: options and --sandbox (QAI_SANDBOX: auto, bwrap or none),
// --sandbox-cpu-time, --sandbox-memory-mb, --sandbox-processes, --sandbox-file-size-mb and
// --sandbox-uids.
std::vector<common::Option> WithSandboxOptions(std::vector<common::Option> options);

// SandboxOptionsFrom: the limits and uids of a configuration that declared those options
// (the mode is ChooseSandbox's).
SandboxOptions SandboxOptionsFrom(const common::Config& config);

// ParseUidRange: "FIRST-LAST" or a single uid; false when it is neither, or not within
// 1..4294967294.
bool ParseUidRange(std::string_view text, uint32_t* first, uint32_t* count);

// SandboxChoice: what commands run in, and, when auto could not have bwrap, why.
struct SandboxChoice {
  std::shared_ptr<const Sandbox> sandbox;
  std::string fallback_reason;
};

// ChooseSandbox: for requested "bwrap", a bwrap sandbox that ran a probe command under root,
// or FAILED_PRECONDITION saying why not; for "none", mode none (probed too); for "auto", bwrap
// when its probe succeeds, else mode none and the reason. Logs the choice, with a warning for
// any sandbox without bwrap, and one when the service is not root (commands then run as its
// own user, and the processes limit counts the service's own threads).
[[nodiscard]] absl::StatusOr<SandboxChoice> ChooseSandbox(std::string_view requested, SandboxOptions options,
                                                          const std::string& root);

// ProbeSandbox: OK when sandbox runs a command that writes and reads a file in a workspace of
// its own under root (removed again), else why not, with what the command printed.
[[nodiscard]] absl::Status ProbeSandbox(const std::shared_ptr<const Sandbox>& sandbox, const std::string& root);

}  // namespace qai::orchestrator
