#pragma once
// ProcStat: what the sandbox reads of a process in /proc/<pid>/stat (its state, its parent,
// when it started), and the pids /proc lists. The process's name, which may hold spaces and
// parentheses, is skipped: the fields start after the last ')'.
//
//   for (pid_t pid : ProcPids()) {
//     std::optional<ProcStat> st = ReadProcStat(pid);   // nullopt: gone meanwhile
//     if (st && st->state == 'Z' && st->ppid == ::getpid()) ...
//   }

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace qai::sandbox {

struct ProcStat {
  char state = '?';  // R, S, D, Z, ...
  pid_t ppid = 0;
  uint64_t start_time = 0;  // clock ticks since boot (field 22)
};

// ParseProcStat: the fields of a /proc/<pid>/stat text; nullopt when it is not one.
std::optional<ProcStat> ParseProcStat(std::string_view text);
// ReadProcStat: /proc/<pid>/stat of pid; nullopt when there is no such process.
std::optional<ProcStat> ReadProcStat(pid_t pid);
// ProcPids: every pid /proc lists now.
std::vector<pid_t> ProcPids();

}  // namespace qai::sandbox
