#pragma once
// Configuration: command-line flags with `QAI_*` environment-variable fallbacks.
//
// A program declares its options once; each option `--some-name` falls back to the variable
// `QAI_SOME_NAME`, then to its default. Parsing validates everything at start-up and the
// result describes itself with secrets masked, for the first log line.
//
//   auto config = qai::common::Config::Parse(
//       {{.name = "database-url", .help = "libpq URL", .secret = true, .required = true},
//        {.name = "listen-addr", .default_value = "0.0.0.0:50051", .help = "gRPC address"}},
//       argc, argv);
//   if (!config.ok()) { ... print config.status() and exit 2 ... }
//   std::string url = config->Get("database-url");

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace qai::common {

// Option: one setting, given as `--name=value`, `--name value`, or the variable EnvName(name).
struct Option {
  std::string name;
  std::string default_value;
  std::string help;
  // Masked when the configuration is printed.
  bool secret = false;
  // Parse fails when neither flag, variable nor default gives a non-empty value.
  bool required = false;
  // Extra check on the final value; returns an error message, or empty when valid.
  std::function<std::string(std::string_view)> validate;
};

// EnvName: the environment variable of an option, e.g. "database-url" -> "QAI_DATABASE_URL".
std::string EnvName(std::string_view option_name);

// EnvLookup: how Parse reads the environment (tests pass a map instead of the process's).
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
std::optional<std::string> ProcessEnv(const std::string& name);

// Config: the parsed, validated settings of one program.
class Config {
 public:
  // Parse: flags first, then environment, then defaults. Unknown flags, missing values,
  // required options left empty and failed validators are InvalidArgument errors naming the
  // option. `--help` yields a NotFound status whose message is the usage text.
  [[nodiscard]] static absl::StatusOr<Config> Parse(std::vector<Option> options, int argc,
                                                    const char* const* argv,
                                                    const EnvLookup& env = ProcessEnv);

  // Get: the value of a declared option (asserts it was declared: a typo is a bug).
  const std::string& Get(std::string_view name) const;
  // GetInt / GetDuration / GetBool: typed views; options using them should declare a
  // validator (IsInt, IsDuration, IsBool) so that a bad value fails at start-up, not here.
  int64_t GetInt(std::string_view name) const;
  absl::Duration GetDuration(std::string_view name) const;
  bool GetBool(std::string_view name) const;
  // GetList: a comma-separated value split into trimmed, non-empty items.
  std::vector<std::string> GetList(std::string_view name) const;

  // Describe: every option and its value, secrets shown as "***" (or "" when empty).
  nlohmann::json Describe() const;

 private:
  struct Entry {
    Option option;
    std::string value;
  };
  std::map<std::string, Entry, std::less<>> entries_;
};

// Validators for Option::validate.
std::string IsInt(std::string_view value);
std::string IsDuration(std::string_view value);  // absl form: "250ms", "5s", "1m"
std::string IsBool(std::string_view value);      // true/false/1/0/yes/no
std::string IsHostPort(std::string_view value);  // "host:port" with port 0..65535
// IsIntIn: a validator for integers from min to max inclusive.
std::function<std::string(std::string_view)> IsIntIn(int64_t min, int64_t max);

}  // namespace qai::common
