#include "services/sandbox/proc_stat.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/strings.h"

namespace qai::sandbox {

std::optional<ProcStat> ParseProcStat(std::string_view text) {
  const size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  // fields[0] is field 3 (the state), so field N is fields[N - 3].
  std::vector<absl::string_view> fields =
      absl::StrSplit(common::ToAbsl(text.substr(close + 1)), ' ', absl::SkipEmpty());
  ProcStat st;
  if (fields.size() < 20 || fields[0].size() != 1 || !absl::SimpleAtoi(fields[1], &st.ppid) ||
      !absl::SimpleAtoi(fields[19], &st.start_time)) {
    return std::nullopt;
  }
  st.state = fields[0][0];
  return st;
}

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/stat");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];  // a stat line is a few hundred bytes
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  return ParseProcStat(std::string_view(buf, static_cast<size_t>(n)));
}

std::vector<pid_t> ProcPids() {
  std::vector<pid_t> pids;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = ::readdir(d)) {
    pid_t pid = 0;
    if (absl::SimpleAtoi(e->d_name, &pid) && pid > 0) pids.push_back(pid);
  }
  ::closedir(d);
  return pids;
}

}  // namespace qai::sandbox
