#pragma once
// Sandbox setup: the start-up check that qai-sandbox isolates, on the options of
// sandbox_options.h.
//
// It fails closed: the default, bwrap, must really run a command here (bubblewrap installed,
// user namespaces allowed) or the service refuses to start. Running without isolation is a
// development-only mode that must be named, QAI_SANDBOX=unsafe-none, and is loud about it.
//
// The projects' cgroups (cgroups.h) fail closed the same way: QAI_SANDBOX_CGROUPS=required,
// the default, refuses to start where no cgroup hierarchy can be written (not root, a
// read-only /sys/fs/cgroup, controllers not delegated), and `off` must be named, logged as an
// error. Why not quietly without: the rlimits hold per process, so without cgroups one
// project's commands can take all the memory the service may use (the kernel then kills
// whatever it picks, another project's command or the service itself), all its CPUs, and in
// unsafe-none mode leave processes running after their command. An operator who accepts that
// (a laptop without root, a cluster that cannot give the pod a writable cgroup) says so.
//
//   ... ServiceBase::Init("sandbox", argc, argv, WithSandboxOptions({...the others...})) ...
//   auto choice = ChooseSandbox(config.Get("sandbox"), SandboxOptionsFrom(config), sandbox_root,
//                               CgroupRequestFrom(config));
//   if (!choice.ok()) return ExitCodeFor(choice.status());  // no bwrap or no cgroups here: no
//   service

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "services/sandbox/disk_quota.h"
#include "services/sandbox/sandbox.h"
#include "services/sandbox/sandbox_options.h"

namespace qai::sandbox {

// SandboxChoice: what commands run in.
struct SandboxChoice {
  std::shared_ptr<const Sandbox> sandbox;
  // It isolates nothing (unsafe-none): health says so too.
  bool unsafe = false;
};

// ChooseSandbox: for "bwrap", a bwrap sandbox that ran a probe command under root, or
// FAILED_PRECONDITION saying why not (never a fallback); for "unsafe-none", mode unsafe-none
// (probed too), with an error-level log line saying what it does not isolate. Anything else
// is INVALID_ARGUMENT. With cgroups required, they are set up first (Cgroups::SetUp; logged:
// which version, where, what limits) and the probe runs in a project cgroup; where they cannot
// be, FAILED_PRECONDITION saying why. With cgroups off, an error-level log line says what that
// leaves unbounded. Warns too when the service is not root (commands then run as its own
// user, and the processes limit counts the service's own threads).
[[nodiscard]] absl::StatusOr<SandboxChoice> ChooseSandbox(std::string_view requested,
                                                          SandboxOptions options,
                                                          const std::string& root,
                                                          const CgroupRequest& cgroups);

// ChooseDiskQuota: the workspaces' disk quota of --sandbox-disk (tmpfs, the default: probed
// under root, FAILED_PRECONDITION saying why where it cannot be mounted, never a silent
// fallback; off: none, with an error-level log line saying what that leaves unbounded),
// --sandbox-disk-mb and --sandbox-disk-files. private_mounts: what EnterPrivateMounts said.
[[nodiscard]] absl::StatusOr<std::optional<DiskQuota>> ChooseDiskQuota(
    const common::Config& config, const std::string& root, const absl::Status& private_mounts);

// ProbeSandbox: OK when sandbox runs a command that writes and reads a file in a workspace of
// its own under root (removed again), else why not, with what the command printed.
[[nodiscard]] absl::Status ProbeSandbox(const std::shared_ptr<const Sandbox>& sandbox,
                                        const std::string& root);

}  // namespace qai::sandbox
