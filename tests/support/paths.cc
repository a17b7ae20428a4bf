#include "tests/support/paths.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace qai::testing {
namespace {

std::string DirFromEnv(const char* variable, const char* fallback) {
  const char* value = std::getenv(variable);
  return (value != nullptr && *value != '\0') ? value : fallback;
}

std::string Join(std::string dir, std::string_view relative) {
  while (!relative.empty() && relative.front() == '/') relative.remove_prefix(1);
  while (!dir.empty() && dir.back() == '/') dir.pop_back();
  return absl::StrCat(dir, "/", std::string(relative));
}

}  // namespace

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::perror("FreePort: socket");
    std::abort();
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("FreePort: bind");
    std::abort();
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string BinaryPath(std::string_view relative) {
  return Join(DirFromEnv("QAI_BUILD_DIR", QAI_DEFAULT_BUILD_DIR), relative);
}

std::string SourcePath(std::string_view relative) {
  return Join(DirFromEnv("QAI_SOURCE_DIR", QAI_DEFAULT_SOURCE_DIR), relative);
}

std::string TempRoot() {
  std::string root = DirFromEnv("TMPDIR", "/tmp");
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
      ::access(root.c_str(), W_OK | X_OK) != 0) {
    return "/tmp";
  }
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root;
}

absl::StatusOr<std::string> MakeTempDir(std::string_view prefix) {
  std::string pattern = absl::StrCat(TempRoot(), "/", std::string(prefix), "XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", pattern, ": ", std::strerror(errno)));
  }
  return std::string(buffer.data());
}

}  // namespace qai::testing
