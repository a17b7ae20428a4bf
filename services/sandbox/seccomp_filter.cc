#include "services/sandbox/seccomp_filter.h"

#include <errno.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "services/sandbox/fd.h"

namespace qai::sandbox {
namespace {

constexpr const char* kRefused[] = {
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "personality",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
};

}  // namespace

absl::StatusOr<std::string> CommandSeccompProgram() {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_ALLOW),
                                                       seccomp_release);
  if (ctx == nullptr) return absl::InternalError("seccomp: cannot create a filter");
  for (const char* name : kRefused) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not a system call of this architecture
    if (int err = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0); err != 0) {
      return absl::InternalError(absl::StrCat("seccomp: cannot refuse ", name, ": error ", -err));
    }
  }
  if (const int clone3 = seccomp_syscall_resolve_name("clone3"); clone3 != __NR_SCMP_ERROR) {
    if (int err = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), clone3, 0); err != 0) {
      return absl::InternalError(absl::StrCat("seccomp: cannot refuse clone3: error ", -err));
    }
  }
  // seccomp_export_bpf writes to a descriptor: a memory file, read back whole.
  Fd out(::memfd_create("qai-seccomp", MFD_CLOEXEC));
  if (!out.valid()) return absl::ErrnoToStatus(errno, "seccomp: memfd_create");
  if (int err = seccomp_export_bpf(ctx.get(), out.get()); err != 0) {
    return absl::InternalError(absl::StrCat("seccomp: cannot export the filter: error ", -err));
  }
  std::string program;
  char buf[4096];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(out.get(), buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "seccomp: reading the filter");
    if (n == 0) break;
    program.append(buf, static_cast<size_t>(n));
    at += n;
  }
  if (program.empty()) return absl::InternalError("seccomp: the filter is empty");
  return program;
}

}  // namespace qai::sandbox
