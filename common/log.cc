#include "common/log.h"

#include <cstdio>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace qai::common {
namespace {

struct LogState {
  std::string service = "qai";
  LogLevel min_level = LogLevel::kInfo;
};

LogState& State() {
  static LogState state;
  return state;
}

std::string& ThreadRequestId() {
  thread_local std::string id;
  return id;
}

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void InitLogging(std::string service, LogLevel min_level) {
  State().service = std::move(service);
  State().min_level = min_level;
}

LogLevel ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::string FormatLogLine(LogLevel level, std::string_view msg, const nlohmann::json& fields) {
  nlohmann::ordered_json line;
  line["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
  line["level"] = LevelName(level);
  line["service"] = State().service;
  line["msg"] = msg;
  if (!ThreadRequestId().empty()) line["request_id"] = ThreadRequestId();
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  }
  // Replacement keeps a line valid JSON even when a field carries broken UTF-8 from a caller.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool LogEnabled(LogLevel level) { return level >= State().min_level; }

void Log(LogLevel level, std::string_view msg, const nlohmann::json& fields) {
  if (!LogEnabled(level)) return;
  std::string line = FormatLogLine(level, msg, fields);
  line += '\n';
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

const std::string& CurrentRequestId() { return ThreadRequestId(); }

RequestScope::RequestScope(std::string request_id) : previous_(std::move(ThreadRequestId())) {
  ThreadRequestId() = std::move(request_id);
}

RequestScope::~RequestScope() { ThreadRequestId() = std::move(previous_); }

}  // namespace qai::common
