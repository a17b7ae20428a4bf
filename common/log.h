#pragma once
// Structured logging: one JSON object per line on stderr.
//
// Every line has `time`, `level`, `service` and `msg`; lines written while a request is being
// handled also carry its `request_id` (see RequestScope). Extra fields are a JSON object:
//
//   qai::common::InitLogging("projects");
//   qai::common::Log(LogLevel::kInfo, "listening", {{"addr", "0.0.0.0:50051"}});
//   {
//     qai::common::RequestScope scope("3f0c...");  // lines below carry request_id
//     qai::common::Log(LogLevel::kWarn, "slow query", {{"duration_ms", 12.5}});
//   }

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace qai::common {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// InitLogging: names the service on every line and sets the lowest level written.
void InitLogging(std::string service, LogLevel min_level = LogLevel::kInfo);

// ParseLogLevel: "debug" | "info" | "warn" | "error"; anything else is kInfo.
LogLevel ParseLogLevel(std::string_view name);

// Log: writes one line atomically (lines from several threads never interleave).
void Log(LogLevel level, std::string_view msg,
         const nlohmann::json& fields = nlohmann::json::object());

// LogEnabled: whether a line at `level` would be written (to skip building its fields).
bool LogEnabled(LogLevel level);

// FormatLogLine: the line Log would write, without the newline (for tests).
std::string FormatLogLine(LogLevel level, std::string_view msg, const nlohmann::json& fields);

// CurrentRequestId: the request id of the scope active on this thread, or "".
const std::string& CurrentRequestId();

// RequestScope: while alive, this thread's log lines carry `request_id`. Scopes nest.
class RequestScope {
 public:
  explicit RequestScope(std::string request_id);
  ~RequestScope();
  RequestScope(const RequestScope&) = delete;
  RequestScope& operator=(const RequestScope&) = delete;

 private:
  std::string previous_;
};

}  // namespace qai::common
