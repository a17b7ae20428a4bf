#include "services/sandbox/disk_quota.h"

#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "services/sandbox/workspace.h"

namespace qai::sandbox {
namespace {

constexpr char kFsType[] = "tmpfs";
constexpr char kSource[] = "qai-workspace";

absl::Status ErrnoStatus(int error, const std::string& what) {
  return absl::ErrnoToStatus(error, what);
}

}  // namespace

absl::Status EnterPrivateMounts() {
  if (::unshare(CLONE_NEWNS) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot make a mount namespace of its own (", std::strerror(errno),
                     "): the workspaces' disk quotas need CAP_SYS_ADMIN (root; in Kubernetes, the "
                     "pod's own user "
                     "namespace and SYS_ADMIN)"));
  }
  // Nothing mounted here reaches the host, nor anything of the host's after this moment.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return ErrnoStatus(errno, "cannot make the mounts private");
  }
  return absl::OkStatus();
}

bool IsMountPoint(const std::string& dir) {
  struct stat self, parent;
  if (::lstat(dir.c_str(), &self) != 0 || !S_ISDIR(self.st_mode)) return false;
  if (::lstat((dir + "/..").c_str(), &parent) != 0) return false;
  return self.st_dev != parent.st_dev || self.st_ino == parent.st_ino;
}

absl::StatusOr<bool> MountQuota(const std::string& dir, const DiskQuota& quota,
                                std::optional<SandboxUser> owner) {
  if (IsMountPoint(dir)) return false;
  const uint32_t uid = owner ? owner->uid : ::geteuid();
  const uint32_t gid = owner ? owner->gid : ::getegid();
  const std::string options = absl::StrCat("size=", quota.bytes, ",nr_inodes=", quota.files,
                                           ",mode=0700,uid=", uid, ",gid=", gid, ",huge=never");
  if (::mount(kSource, dir.c_str(), kFsType, MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("workspace: cannot mount its quota on ", dir));
  }
  return true;
}

absl::Status UnmountQuota(const std::string& dir) {
  if (!IsMountPoint(dir)) return absl::OkStatus();
  // Detached: a process still inside (it is being killed) does not keep the workspace around.
  if (::umount2(dir.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, absl::StrCat("workspace: cannot unmount ", dir));
  }
  return absl::OkStatus();
}

uint64_t UsedBytes(const std::string& dir) {
  struct statvfs st;
  if (::statvfs(dir.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_blocks - st.f_bfree) * st.f_frsize;
}

std::string FullExplanation(const std::string& dir, const DiskQuota& quota) {
  // Nearly: a file system the size of a page or two from full fails the next write anyway.
  constexpr uint64_t kSlackBytes = 64 << 10;
  struct statvfs st;
  if (::statvfs(dir.c_str(), &st) != 0) return "";
  const bool no_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize < kSlackBytes;
  const bool no_files = st.f_favail == 0;
  if (!no_bytes && !no_files) return "";
  return absl::StrCat("[sandbox] the workspace is full: it may hold at most ", quota.bytes >> 20,
                      " MiB in ", quota.files,
                      " files and directories; remove what is not needed to go on\n");
}

absl::Status MountRootInMemory(const std::string& root) {
  if (IsMountPoint(root)) {
    struct statfs fs;
    if (::statfs(root.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC)
      return absl::OkStatus();  // mounted already
  }
  const std::string options =
      absl::StrCat("size=64m,mode=0711,uid=", ::geteuid(), ",gid=", ::getegid());
  if (::mount(kSource, root.c_str(), kFsType, MS_NOSUID | MS_NODEV | MS_NOEXEC, options.c_str()) !=
      0) {
    return ErrnoStatus(errno, absl::StrCat("sandbox root: cannot mount a tmpfs on ", root));
  }
  return PrepareRoot(root);
}

absl::Status ProbeDiskQuota(const std::string& root, const absl::Status& private_mounts) {
  if (!private_mounts.ok()) return private_mounts;
  QAI_RETURN_IF_ERROR(PrepareRoot(root));
  const std::string dir = absl::StrCat(root, "/state/disk-quota-probe");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return ErrnoStatus(errno, "disk quota probe");
  absl::StatusOr<bool> mounted = MountQuota(dir, {.bytes = 4096, .files = 8}, std::nullopt);
  absl::Status result = mounted.status();
  if (mounted.ok()) result = UnmountQuota(dir);
  ::rmdir(dir.c_str());
  if (!result.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("sandbox: the workspaces' disk quotas cannot be mounted (", result.message(),
                     "); QAI_SANDBOX_DISK=off runs without them"));
  }
  return absl::OkStatus();
}

}  // namespace qai::sandbox
