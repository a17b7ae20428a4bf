#pragma once
// Disk quotas: each workspace is a filesystem of its own, a tmpfs whose size and inode count
// the kernel enforces (a command past either gets ENOSPC, whatever it writes with; the service
// too). Workspaces are a cache rebuilt from snapshots, so living in memory costs nothing but
// that memory: pages a command writes count against its project's cgroup, pages the service
// writes (restores, the file tools) against the service's.
//
// The mounts live in a mount namespace of the service's own (EnterPrivateMounts, first thing
// in main, before any thread): the host never sees them, and they go when the process does, so
// a restarted replica starts with empty workspaces (Workspace::Open then forgets what a
// workspace was marked as holding). Mounting needs CAP_SYS_ADMIN in the user namespace that
// owns the mount namespace: root on a host, or a Kubernetes pod with its own user namespace
// (hostUsers: false) and SYS_ADMIN, which is then the pod's alone.
//
//   absl::Status private_mounts = EnterPrivateMounts();      // top of main
//   ... if (absl::Status s = ProbeDiskQuota(root, private_mounts); !s.ok()) refuse to start ...
//   MountQuota(dir, {.bytes = 256 << 20, .files = 20000}, owner);

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "services/sandbox/sandbox.h"

namespace qai::sandbox {

struct DiskQuota {
  uint64_t bytes = uint64_t{256} << 20;  // per workspace
  uint64_t files = 20000;                // per workspace: files, directories and links together
  // All of a replica's workspaces together (see Workspaces::MakeRoom); 0: no bound.
  uint64_t total_bytes = uint64_t{4096} << 20;
};

// EnterPrivateMounts: moves this process (which must not have started a thread yet) into a
// mount namespace of its own whose mounts propagate nowhere. FAILED_PRECONDITION saying why
// when it may not (no CAP_SYS_ADMIN).
[[nodiscard]] absl::Status EnterPrivateMounts();

// IsMountPoint: whether dir is the root of a filesystem mounted on it.
bool IsMountPoint(const std::string& dir);

// MountQuota: mounts a tmpfs of `quota` on the directory `dir` (mode 0700, owned by owner or
// by the service), unless one is mounted there already; whether it mounted one.
[[nodiscard]] absl::StatusOr<bool> MountQuota(const std::string& dir, const DiskQuota& quota,
                                              std::optional<SandboxUser> owner);

// UnmountQuota: unmounts what MountQuota mounted on dir (nothing when nothing is).
[[nodiscard]] absl::Status UnmountQuota(const std::string& dir);

// UsedBytes: what the filesystem of dir holds.
uint64_t UsedBytes(const std::string& dir);

// FullExplanation: when the filesystem of dir (a quota of `quota`) is full, or nearly, what
// to tell the model ("[sandbox] ...\n"); "" otherwise.
std::string FullExplanation(const std::string& dir, const DiskQuota& quota);

// MountRootInMemory: mounts a tmpfs (owned by the service, 0711) on root, so that what the
// service keeps beside the workspaces (their mount points, the marks of what they hold) lives
// in memory too. Worth nothing once the workspaces' filesystems are gone, it goes with them;
// and making a file or directory per project on a disk filesystem costs more and more under
// churn (ext4 searches past every recently deleted inode for a free one).
[[nodiscard]] absl::Status MountRootInMemory(const std::string& root);

// ProbeDiskQuota: OK when a quota can be mounted under root (state/, prepared by PrepareRoot),
// given what EnterPrivateMounts said; else FAILED_PRECONDITION saying why and what to do.
[[nodiscard]] absl::Status ProbeDiskQuota(const std::string& root,
                                          const absl::Status& private_mounts);

}  // namespace qai::sandbox
