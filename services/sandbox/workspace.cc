#include "services/sandbox/workspace.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/ids.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/utf8.h"
#include "common/validation.h"
#include "services/sandbox/fd.h"

namespace qai::sandbox {
using common::ToValidUtf8;
using common::TruncateUtf8;
namespace {

using common::ToAbsl;

constexpr size_t kMaxPathBytes = 512;
// Below the sandbox root: the workspaces, and the service's own state (version marks), which
// no project can reach.
constexpr char kWorkspacesDir[] = "workspaces";
constexpr char kStateDir[] = "state";
// Deeper trees are refused by Snapshot: every level holds a descriptor open while it is walked.
constexpr int kMaxSnapshotDepth = 64;
// What Snapshot reads of a file to decide whether it is text before reading all of it.
constexpr size_t kSniffBytes = 8 << 10;

absl::Status ErrnoStatus(int error, std::string_view what) {
  return absl::ErrnoToStatus(error, ToAbsl(what));
}

// SplitPath: the components of a path the model named, or INVALID_ARGUMENT. "." and empty
// components ("a//b", "./x") are dropped; what remains must name something below the root.
absl::StatusOr<std::vector<std::string>> SplitPath(std::string_view path) {
  auto refuse = [&](std::string_view why) {
    // The message must itself be valid text, whatever the path was.
    const std::string shown = ToValidUtf8(path.substr(0, 80));
    return absl::InvalidArgumentError(
        absl::StrCat("path \"", shown, path.size() > 80 ? "…" : "", "\" ", ToAbsl(why)));
  };
  if (path.empty()) return refuse("is empty");
  if (path.size() > kMaxPathBytes)
    return refuse(absl::StrCat("is longer than ", kMaxPathBytes, " bytes"));
  if (path.find('\0') != std::string_view::npos) return refuse("contains NUL");
  if (common::Utf8Length(path) < 0) return refuse("is not valid UTF-8");
  if (path.front() == '/') return refuse("is absolute");
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(ToAbsl(path), '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") return refuse("climbs out of the workspace");
    parts.emplace_back(part);
  }
  if (parts.empty()) return refuse("names no file");
  return parts;
}

// Owner: whom a workspace and its files belong to: the service, or, once a sandbox has had it
// handed over, the user its project's commands run as.
struct Owner {
  uid_t uid = 0;
  gid_t gid = 0;
};

// OpenDir: the workspace directory itself, not following a symlink put in its place.
absl::StatusOr<Fd> OpenDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("workspace ", dir));
  return fd;
}

absl::StatusOr<Owner> OwnerOf(int dir_fd) {
  struct stat st;
  if (::fstat(dir_fd, &st) != 0) return ErrnoStatus(errno, "workspace: cannot stat the workspace");
  return Owner{.uid = st.st_uid, .gid = st.st_gid};
}

// GiveTo: makes what fd names, which the service may have just created, owner's.
absl::Status GiveTo(int fd, const struct stat& st, const Owner& owner, std::string_view path) {
  if (st.st_uid == owner.uid && st.st_gid == owner.gid) return absl::OkStatus();
  if (::fchown(fd, owner.uid, owner.gid) != 0) {
    return ErrnoStatus(errno,
                       absl::StrCat("cannot give \"", ToAbsl(path), "\" to the workspace's owner"));
  }
  return absl::OkStatus();
}

// OpenChildDir: the directory `name` in `parent`, refusing a symlink. With `create_for`, a
// missing one is made first, owned by it.
absl::StatusOr<Fd> OpenChildDir(int parent, const std::string& name, const Owner* create_for,
                                std::string_view path) {
  const bool created = create_for != nullptr && ::mkdirat(parent, name.c_str(), 0755) == 0;
  if (create_for != nullptr && !created && errno != EEXIST) {
    return ErrnoStatus(errno,
                       absl::StrCat("cannot create directory \"", name, "\" of ", ToAbsl(path)));
  }
  Fd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.valid()) {
    struct stat st;
    if (created && ::fstat(fd.get(), &st) == 0) {
      QAI_RETURN_IF_ERROR(GiveTo(fd.get(), st, *create_for, path));
    }
    return fd;
  }
  const int error = errno;
  struct stat st;
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("path \"", ToAbsl(path), "\" passes through the symlink \"", name, "\""));
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("path \"", ToAbsl(path), "\": \"", name, "\" is not a directory"));
    }
  }
  if (error == ENOENT)
    return absl::NotFoundError(absl::StrCat("\"", ToAbsl(path), "\" does not exist"));
  return ErrnoStatus(error, absl::StrCat("cannot open directory \"", name, "\" of ", ToAbsl(path)));
}

// Parent: the directory that holds the last component of a path, and the workspace's owner.
struct Parent {
  Fd fd;
  Owner owner;
};

absl::StatusOr<Parent> OpenParent(const std::string& dir, const std::vector<std::string>& parts,
                                  bool create, std::string_view path) {
  QAI_ASSIGN_OR_RETURN(Fd current, OpenDir(dir));
  QAI_ASSIGN_OR_RETURN(Owner owner, OwnerOf(current.get()));
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    QAI_ASSIGN_OR_RETURN(current,
                         OpenChildDir(current.get(), parts[i], create ? &owner : nullptr, path));
  }
  return Parent{.fd = std::move(current), .owner = owner};
}

// FileOpenError: the status for a failed open of the file `name` (the last component).
absl::Status FileOpenError(int error, std::string_view path) {
  if (error == ELOOP)
    return absl::InvalidArgumentError(absl::StrCat("path \"", ToAbsl(path), "\" is a symlink"));
  if (error == ENOENT)
    return absl::NotFoundError(absl::StrCat("\"", ToAbsl(path), "\" does not exist"));
  if (error == EISDIR) {
    return absl::FailedPreconditionError(absl::StrCat("\"", ToAbsl(path), "\" is a directory"));
  }
  if (error == ENXIO) {  // a FIFO nobody reads
    return absl::FailedPreconditionError(
        absl::StrCat("\"", ToAbsl(path), "\" is not a regular file"));
  }
  return ErrnoStatus(error, absl::StrCat("cannot open \"", ToAbsl(path), "\""));
}

// IsForeignLink: a file with other hard links that the workspace's owner does not own, which
// may be a file from outside linked in (where the kernel lets users link others' files).
bool IsForeignLink(const struct stat& st, const Owner& owner) {
  return st.st_nlink > 1 && st.st_uid != owner.uid;
}

// RequireOwnRegular: fd is a regular file, and not a foreign link.
absl::Status RequireOwnRegular(int fd, const Owner& owner, std::string_view path, struct stat* st) {
  if (::fstat(fd, st) != 0)
    return ErrnoStatus(errno, absl::StrCat("cannot stat \"", ToAbsl(path), "\""));
  if (S_ISDIR(st->st_mode))
    return absl::FailedPreconditionError(absl::StrCat("\"", ToAbsl(path), "\" is a directory"));
  if (!S_ISREG(st->st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", ToAbsl(path), "\" is not a regular file"));
  }
  if (IsForeignLink(*st, owner)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "path \"", ToAbsl(path), "\" is a hard link to a file the workspace's owner does not own"));
  }
  return absl::OkStatus();
}

// ListDir: the names in a directory but "." and "..".
absl::StatusOr<std::vector<std::string>> ListDir(int dir_fd) {
  // fdopendir takes the descriptor; a duplicate keeps dir_fd the caller's.
  const int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return ErrnoStatus(errno, "workspace: dup");
  DIR* d = ::fdopendir(dup);
  if (d == nullptr) {
    ::close(dup);
    return ErrnoStatus(errno, "workspace: fdopendir");
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(d);
  return names;
}

// ChownTree: gives everything below dir_fd to user, except files with other hard links, which
// may be files from outside (ReadFile and WriteFile refuse them then). Levels deeper than
// Snapshot reads are left as they are.
absl::Status ChownTree(int dir_fd, const SandboxUser& user, int depth) {
  QAI_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir_fd));
  for (const std::string& name : names) {
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone since
    if (S_ISDIR(st.st_mode)) {
      if (depth >= kMaxSnapshotDepth) continue;
      Fd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) continue;
      QAI_RETURN_IF_ERROR(ChownTree(sub.get(), user, depth + 1));
      if (::fchown(sub.get(), user.uid, user.gid) != 0)
        return ErrnoStatus(errno, absl::StrCat("workspace: chown ", name));
      continue;
    }
    if (!S_ISLNK(st.st_mode) && st.st_nlink > 1) continue;
    if (::fchownat(dir_fd, name.c_str(), user.uid, user.gid, AT_SYMLINK_NOFOLLOW) != 0 &&
        errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("workspace: chown ", name));
    }
  }
  return absl::OkStatus();
}

// ReadUpTo: up to `limit` bytes from fd (fewer at end of file).
absl::StatusOr<std::string> ReadUpTo(int fd, size_t limit, std::string_view path) {
  std::string out;
  char buf[64 << 10];
  while (out.size() < limit) {
    const ssize_t n = ::read(fd, buf, std::min(sizeof buf, limit - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("cannot read \"", ToAbsl(path), "\""));
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::Status WriteAll(int fd, std::string_view content, std::string_view path) {
  while (!content.empty()) {
    const ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("cannot write \"", ToAbsl(path), "\""));
    content.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// IsText: what Snapshot keeps. Fragments store text, so NUL bytes and invalid UTF-8 mark a
// file as binary. A prefix may end inside a character, which is not held against it.
bool IsText(std::string_view content, bool is_prefix) {
  if (content.find('\0') != std::string_view::npos) return false;
  if (common::Utf8Length(content) >= 0) return true;
  if (!is_prefix) return false;
  for (size_t cut = 1; cut <= 3 && cut < content.size(); ++cut) {
    if (common::Utf8Length(content.substr(0, content.size() - cut)) >= 0) return true;
  }
  return false;
}

// RequireReachable: user can walk the path of dir down to it. Commands and the tools they run
// (node resolving a module, bwrap binding the workspace) use its full path.
absl::Status RequireReachable(const std::string& dir, const SandboxUser& user) {
  for (size_t slash = dir.find('/', 1); slash != std::string::npos;
       slash = dir.find('/', slash + 1)) {
    const std::string above = dir.substr(0, slash);
    struct stat st;
    if (::stat(above.c_str(), &st) != 0) return ErrnoStatus(errno, above);
    const mode_t bit = st.st_uid == user.uid ? S_IXUSR : st.st_gid == user.gid ? S_IXGRP : S_IXOTH;
    if ((st.st_mode & bit) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(above, " is not searchable by the sandbox's user (uid ", user.uid,
                       "): the directories above the sandbox root need o+x"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PrepareRoot(const std::string& root) {
  if (root.empty() || root.front() != '/')
    return absl::InvalidArgumentError("sandbox root: must be an absolute path");
  // mkdir -p; the components above the root are the operator's and may be symlinks.
  std::string prefix = "/";
  for (absl::string_view part : absl::StrSplit(root, '/', absl::SkipEmpty())) {
    absl::StrAppend(&prefix, part, "/");
    if (::mkdir(prefix.c_str(), 0711) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("sandbox root: cannot create ", prefix));
    }
  }
  QAI_ASSIGN_OR_RETURN(Fd fd, OpenDir(root));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, root);
  if (st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(absl::StrCat("sandbox root: ", root, " belongs to uid ",
                                                      st.st_uid, ", not to this service (uid ",
                                                      ::geteuid(), ")"));
  }
  // Searchable, but neither listable nor writable by anyone else: no project can see which
  // other workspaces exist, nor rename or plant one.
  if (::fchmod(fd.get(), 0711) != 0)
    return ErrnoStatus(errno, absl::StrCat("sandbox root: chmod ", root));
  for (auto [name, mode] :
       {std::pair{kWorkspacesDir, mode_t{0711}}, std::pair{kStateDir, mode_t{0700}}}) {
    if (::mkdirat(fd.get(), name, mode) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("sandbox root: cannot create ", name));
    }
    Fd sub(::openat(fd.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub.valid()) return ErrnoStatus(errno, absl::StrCat("sandbox root: ", root, "/", name));
    if (::fchown(sub.get(), ::geteuid(), ::getegid()) != 0 || ::fchmod(sub.get(), mode) != 0) {
      return ErrnoStatus(errno, absl::StrCat("sandbox root: cannot own ", root, "/", name));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ProjectsIn(const std::string& root) {
  const std::string dir = absl::StrCat(root, "/", kWorkspacesDir);
  struct Closer {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, Closer> d(::opendir(dir.c_str()));
  if (d == nullptr && errno == ENOENT) return std::vector<std::string>();
  if (d == nullptr) return ErrnoStatus(errno, absl::StrCat("workspaces: cannot list ", dir));
  std::vector<std::string> projects;
  while (const dirent* e = ::readdir(d.get())) {
    if (common::IsUuid(e->d_name)) projects.emplace_back(e->d_name);
  }
  return projects;
}

absl::StatusOr<std::unique_ptr<Workspace>> Workspace::Open(const std::string& root,
                                                           const std::string& project_id,
                                                           std::optional<SandboxUser> owner,
                                                           std::optional<DiskQuota> quota) {
  if (!common::IsUuid(project_id)) {
    return absl::InvalidArgumentError("workspace: project_id must be a UUID");
  }
  QAI_RETURN_IF_ERROR(PrepareRoot(root));
  // One directory per project whichever way its UUID was spelt; only its owner may enter it.
  const std::string id = absl::AsciiStrToLower(project_id);
  std::string dir = absl::StrCat(root, "/", kWorkspacesDir, "/", id);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, absl::StrCat("workspace: cannot create ", dir));
  }
  absl::StatusOr<Fd> fd = OpenDir(dir);  // refuses a symlink or a file in its place
  if (!fd.ok()) return fd.status();
  std::unique_ptr<Workspace> ws(
      new Workspace(id, std::move(dir), absl::StrCat(root, "/", kStateDir, "/", id), owner));
  if (quota && !IsMountPoint(ws->dir_)) {
    // What lay there (from before quotas, or a copy a crash left) would only hide beneath.
    QAI_RETURN_IF_ERROR(ws->Reset({}));
    QAI_RETURN_IF_ERROR(MountQuota(ws->dir_, *quota, owner));
    QAI_RETURN_IF_ERROR(ws->SetVersion(""));
  }
  // Handed over at once, before any file is written: never readable by another project.
  if (owner) {
    QAI_RETURN_IF_ERROR(ws->HandTo(*owner));
  }
  return ws;
}

absl::Status Workspace::WriteFile(std::string_view path, std::string_view content) {
  QAI_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitPath(path));
  QAI_ASSIGN_OR_RETURN(Parent parent, OpenParent(dir_, parts, /*create=*/true, path));
  // O_NOFOLLOW refuses a symlink (even a dangling one); O_NONBLOCK keeps a FIFO from blocking
  // the open; no O_TRUNC until the file is known to be a regular one.
  Fd fd(::openat(parent.fd.get(), parts.back().c_str(),
                 O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644));
  if (!fd.valid()) return FileOpenError(errno, path);
  struct stat st;
  QAI_RETURN_IF_ERROR(RequireOwnRegular(fd.get(), parent.owner, path, &st));
  QAI_RETURN_IF_ERROR(GiveTo(fd.get(), st, parent.owner, path));
  if (::ftruncate(fd.get(), 0) != 0)
    return ErrnoStatus(errno, absl::StrCat("cannot truncate \"", ToAbsl(path), "\""));
  return WriteAll(fd.get(), content, path);
}

absl::StatusOr<std::string> Workspace::ReadFile(std::string_view path, size_t max_bytes) const {
  QAI_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitPath(path));
  QAI_ASSIGN_OR_RETURN(Parent parent, OpenParent(dir_, parts, /*create=*/false, path));
  Fd fd(::openat(parent.fd.get(), parts.back().c_str(),
                 O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return FileOpenError(errno, path);
  struct stat st;
  QAI_RETURN_IF_ERROR(RequireOwnRegular(fd.get(), parent.owner, path, &st));
  auto too_big = [&] {
    return absl::OutOfRangeError(
        absl::StrCat("\"", ToAbsl(path), "\" is larger than ", max_bytes, " bytes"));
  };
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return too_big();
  // The file may grow between fstat and read: one byte more tells.
  absl::StatusOr<std::string> content =
      ReadUpTo(fd.get(), std::max(max_bytes, max_bytes + 1), path);
  if (content.ok() && content->size() > max_bytes) return too_big();
  return content;
}

CommandResult Workspace::Run(const std::string& command, const CommandOptions& options,
                             const std::function<bool()>& cancelled) const {
  auto fail = [](std::string message, int exit_code) {
    CommandResult result;
    result.output = std::move(message);
    result.exit_code = exit_code;
    return result;
  };
  if (command.find('\0') != std::string::npos)
    return fail("workspace: the command contains NUL\n", 2);
  const std::shared_ptr<const Sandbox> sandbox =
      options.sandbox != nullptr ? options.sandbox : Sandbox::Default();
  const std::optional<SandboxUser>& user = owner_;
  if (user) {
    if (absl::Status s = RequireReachable(dir_, *user); !s.ok()) {
      return fail(absl::StrCat("workspace: ", s.message(), "\n"), 126);
    }
    if (absl::Status s = HandTo(*user); !s.ok()) {
      return fail(absl::StrCat("workspace: cannot give the workspace to the sandbox's user: ",
                               s.message(), "\n"),
                  126);
    }
  }
  Cgroups* const cgroups = sandbox->cgroups();
  std::vector<std::string> join;
  uint64_t oom_kills = 0;
  if (cgroups != nullptr) {
    absl::StatusOr<std::vector<std::string>> procs = cgroups->Prepare(project_id_);
    if (!procs.ok()) return fail(absl::StrCat("workspace: ", procs.status().message(), "\n"), 126);
    join = *std::move(procs);
    oom_kills = cgroups->OomKills(project_id_);
  }
  ProcessSpec spec = sandbox->Wrap(dir_, user, command, join);
  spec.timeout = options.timeout;
  spec.max_output = options.max_output;
  spec.max_output_read = options.max_output_read;
  spec.on_output = options.on_output;
  if (cgroups != nullptr) spec.kill_rest = [cgroups, this] { cgroups->Kill(project_id_); };
  CommandResult result = RunProcess(spec, cancelled);
  if (cgroups != nullptr) oom_kills = cgroups->OomKills(project_id_) - oom_kills;
  result.explanation = sandbox->Explain(spec, result, oom_kills);
  if (!result.explanation.empty()) result.output.insert(0, result.explanation);
  return result;
}

absl::Status Workspace::HandTo(const SandboxUser& user) const {
  QAI_ASSIGN_OR_RETURN(Fd root, OpenDir(dir_));
  struct stat st;
  if (::fstat(root.get(), &st) != 0) return ErrnoStatus(errno, "cannot stat the workspace");
  if (st.st_uid == user.uid && st.st_gid == user.gid && (st.st_mode & 07777) == 0700)
    return absl::OkStatus();
  QAI_RETURN_IF_ERROR(ChownTree(root.get(), user, 0));
  // The directory last: its owner says the hand-over is complete. 0700: in mode none, other
  // projects' commands (other users) cannot even look in.
  if (::fchown(root.get(), user.uid, user.gid) != 0 || ::fchmod(root.get(), 0700) != 0) {
    return ErrnoStatus(errno, "cannot chown the workspace");
  }
  return absl::OkStatus();
}

namespace {

struct SnapshotWalk {
  const SnapshotLimits& limits;
  Owner owner;
  std::map<std::string, std::string> files;
  size_t bytes = 0;

  absl::Status Dir(int dir_fd, const std::string& prefix, int depth) {
    if (depth > kMaxSnapshotDepth) {
      return absl::FailedPreconditionError(absl::StrCat("snapshot: directories nest deeper than ",
                                                        kMaxSnapshotDepth, " levels at \"",
                                                        ToValidUtf8(prefix.substr(0, 200)), "\""));
    }
    QAI_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir_fd));
    for (const std::string& name : names) {
      QAI_RETURN_IF_ERROR(Entry(dir_fd, prefix, name, depth));
    }
    return absl::OkStatus();
  }

  absl::Status Entry(int dir_fd, const std::string& prefix, const std::string& name, int depth) {
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return absl::OkStatus();  // gone since
    const std::string path = prefix + name;
    if (S_ISDIR(st.st_mode)) {
      if (name == ".git" || name == "node_modules") return absl::OkStatus();
      Fd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return absl::OkStatus();  // replaced by a symlink meanwhile, or unreadable
      return Dir(sub.get(), path + "/", depth + 1);
    }
    if (!S_ISREG(st.st_mode)) return absl::OkStatus();  // symlinks, FIFOs, sockets
    // A name that is not UTF-8 cannot be a key of the fragment's files either.
    if (common::Utf8Length(path) < 0) return absl::OkStatus();
    Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) return absl::OkStatus();
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || IsForeignLink(st, owner))
      return absl::OkStatus();
    const size_t remaining = limits.max_bytes - bytes;
    // Sniff first, so a large binary file is skipped without being read in full.
    QAI_ASSIGN_OR_RETURN(std::string content,
                         ReadUpTo(fd.get(), std::min(kSniffBytes, remaining + 1), path));
    const bool short_read = content.size() < std::min(kSniffBytes, remaining + 1);
    if (!IsText(content, /*is_prefix=*/!short_read)) return absl::OkStatus();
    if (!short_read && content.size() <= remaining) {
      QAI_ASSIGN_OR_RETURN(std::string rest,
                           ReadUpTo(fd.get(), remaining + 1 - content.size(), path));
      content.append(rest);
    }
    if (content.size() > remaining) {
      return absl::FailedPreconditionError(absl::StrCat(
          "snapshot: the files come to more than ", limits.max_bytes,
          " bytes, the most a version holds (QAI_SNAPSHOT_MAX_MB), at \"", path, "\""));
    }
    if (!IsText(content, /*is_prefix=*/false)) return absl::OkStatus();
    if (files.size() >= limits.max_files) {
      return absl::FailedPreconditionError(
          absl::StrCat("snapshot: more than ", limits.max_files,
                       " files, the most a version holds (QAI_SNAPSHOT_MAX_FILES)"));
    }
    bytes += content.size();
    files.emplace(path, std::move(content));
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> Workspace::Snapshot(
    const SnapshotLimits& limits) const {
  QAI_ASSIGN_OR_RETURN(Fd root, OpenDir(dir_));
  QAI_ASSIGN_OR_RETURN(Owner owner, OwnerOf(root.get()));
  SnapshotWalk walk{.limits = limits, .owner = owner};
  QAI_RETURN_IF_ERROR(walk.Dir(root.get(), "", 0));
  return std::move(walk.files);
}

absl::Status Workspace::RemoveFile(std::string_view path) {
  QAI_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitPath(path));
  absl::StatusOr<Parent> parent = OpenParent(dir_, parts, /*create=*/false, path);
  if (absl::IsNotFound(parent.status())) return absl::OkStatus();
  if (!parent.ok()) return parent.status();
  if (::unlinkat(parent->fd.get(), parts.back().c_str(), 0) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("cannot remove \"", ToAbsl(path), "\""));
  }
  return absl::OkStatus();
}

absl::Status Workspace::Reset(const std::map<std::string, std::string>& files) {
  std::error_code error;
  // remove_all removes a symlink itself, never what it points to.
  for (const auto& entry : std::filesystem::directory_iterator(dir_, error)) {
    std::filesystem::remove_all(entry.path(), error);
    if (error)
      return absl::InternalError(
          absl::StrCat("workspace: cannot clear ", entry.path().string(), ": ", error.message()));
  }
  if (error)
    return absl::InternalError(
        absl::StrCat("workspace: cannot list ", dir_, ": ", error.message()));
  for (const auto& [path, content] : files) {
    QAI_RETURN_IF_ERROR(WriteFile(path, content));
  }
  return absl::OkStatus();
}

std::string Workspace::Version() const {
  Fd fd(::open(version_path_.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return "";
  absl::StatusOr<std::string> version = ReadUpTo(fd.get(), 128, version_path_);
  return version.ok() ? std::string(absl::StripTrailingAsciiWhitespace(*version)) : "";
}

bool Workspace::Empty() const {
  Fd fd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return false;
  DIR* dir = ::fdopendir(fd.get());
  if (dir == nullptr) return false;
  fd.release();  // the DIR owns it now
  bool empty = true;
  errno = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  if (errno != 0) empty = false;  // could not read it all
  ::closedir(dir);
  return empty;
}

absl::Status Workspace::SetVersion(std::string_view version) {
  // Rewritten in place, not replaced: a file created and deleted with every run makes the
  // filesystem (ext4) search ever longer for a free inode. A crash mid-write leaves a torn id,
  // which names no snapshot, so the workspace counts as unknown, as it should. The state
  // directory is the service's alone; O_NOFOLLOW and the regular-file check refuse anything
  // planted there all the same.
  const int flags =
      O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (version.empty() ? 0 : O_CREAT);
  Fd fd(::open(version_path_.c_str(), flags, 0600));
  if (!fd.valid()) {
    if (version.empty() && errno == ENOENT) return absl::OkStatus();  // no mark: nothing to clear
    return ErrnoStatus(errno, "workspace: cannot write its version");
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError("workspace: its version mark is not a regular file");
  }
  if (::ftruncate(fd.get(), 0) != 0)
    return ErrnoStatus(errno, "workspace: cannot clear its version");
  return WriteAll(fd.get(), version, version_path_);
}

absl::Status Workspace::Remove() {
  if (::unlink(version_path_.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "workspace: cannot remove its version mark");
  }
  QAI_RETURN_IF_ERROR(UnmountQuota(dir_));
  std::error_code error;
  // remove_all removes symlinks themselves, never what they point to.
  std::filesystem::remove_all(dir_, error);
  if (error)
    return absl::InternalError(
        absl::StrCat("workspace: cannot remove ", dir_, ": ", error.message()));
  return absl::OkStatus();
}

}  // namespace qai::sandbox
