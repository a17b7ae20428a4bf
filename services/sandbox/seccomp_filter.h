#pragma once
// CommandSeccompProgram: the seccomp filter every command runs under (bubblewrap loads it,
// `--seccomp`, right before it runs the command), as the compiled BPF program bubblewrap reads.
//
// bubblewrap builds the command's namespaces, then the command needs nothing of the kernel a
// build or a dev server does not use. What it refuses (EPERM) is the attack surface and the
// powers the runtime's default profile refuses too, and more: the kernel's keyrings, BPF,
// perf events, io_uring, userfaultfd, ptrace and process_vm_*, module and kexec loading,
// mounts and namespaces (setns, unshare), swap, clocks, reboot, quotas, handles to other
// files (open_by_handle_at), personality changes. clone3 gets ENOSYS, so libc falls back to
// clone, whose namespace flags bubblewrap's --disable-userns already governs.
//
//   absl::StatusOr<std::string> bpf = CommandSeccompProgram();   // once, at start-up

#include <string>

#include "absl/status/statusor.h"

namespace qai::sandbox {

[[nodiscard]] absl::StatusOr<std::string> CommandSeccompProgram();

}  // namespace qai::sandbox
