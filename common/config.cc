#include "common/config.h"

#include <cassert>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/strings.h"

namespace qai::common {

std::string EnvName(std::string_view option_name) {
  std::string env = "QAI_";
  for (char c : option_name)
    env += c == '-' ? '_' : absl::ascii_toupper(static_cast<unsigned char>(c));
  return env;
}

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

namespace {

std::string Usage(const std::vector<Option>& options) {
  std::string usage = "options (each also read from its environment variable):\n";
  for (const Option& o : options) {
    absl::StrAppend(&usage, "  --", o.name, "  [", EnvName(o.name), "]  ", o.help);
    if (!o.default_value.empty()) absl::StrAppend(&usage, " (default ", o.default_value, ")");
    if (o.required) absl::StrAppend(&usage, " (required)");
    usage += "\n";
  }
  return usage;
}

std::optional<bool> ParseBool(std::string_view value) {
  std::string v = absl::AsciiStrToLower(ToAbsl(value));
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return std::nullopt;
}

}  // namespace

absl::StatusOr<Config> Config::Parse(std::vector<Option> options, int argc, const char* const* argv,
                                     const EnvLookup& env) {
  Config config;
  for (Option& o : options) {
    std::string name = o.name;
    config.entries_.emplace(name, Entry{std::move(o), ""});
  }
  std::map<std::string, std::string, std::less<>> given;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::vector<Option> declared;
      for (auto& [_, e] : config.entries_) declared.push_back(e.option);
      return absl::NotFoundError(Usage(declared));
    }
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    absl::string_view name = arg;
    std::optional<std::string> value;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
    }
    if (!config.entries_.contains(ToStd(name))) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!value) {
      // "--a --b=x" leaves --a without a value rather than taking "--b=x" as it.
      if (i + 1 >= argc || absl::StartsWith(argv[i + 1], "--")) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " (", EnvName(ToStd(name)), ") needs a value"));
      }
      value = argv[++i];
    }
    given[std::string(name)] = *value;
  }
  for (auto& [name, entry] : config.entries_) {
    const std::string env_name = EnvName(name);
    if (auto it = given.find(name); it != given.end()) {
      entry.value = it->second;
    } else if (auto from_env = env(env_name)) {
      entry.value = *from_env;
    } else {
      entry.value = entry.option.default_value;
    }
    if (entry.option.required && absl::StripAsciiWhitespace(entry.value).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " (", env_name, ") is required"));
    }
    if (entry.option.validate && !entry.value.empty()) {
      if (std::string why = entry.option.validate(entry.value); !why.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " (", env_name, "): ", why));
      }
    }
  }
  return config;
}

const std::string& Config::Get(std::string_view name) const {
  auto it = entries_.find(name);
  assert(it != entries_.end() && "option not declared");
  return it->second.value;
}

int64_t Config::GetInt(std::string_view name) const {
  int64_t v = 0;
  if (!absl::SimpleAtoi(Get(name), &v)) return 0;
  return v;
}

absl::Duration Config::GetDuration(std::string_view name) const {
  absl::Duration d;
  if (!absl::ParseDuration(Get(name), &d)) return absl::ZeroDuration();
  return d;
}

bool Config::GetBool(std::string_view name) const { return ParseBool(Get(name)).value_or(false); }

std::vector<std::string> Config::GetList(std::string_view name) const {
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(Get(name), ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) items.emplace_back(item);
  }
  return items;
}

nlohmann::json Config::Describe() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, entry] : entries_) {
    out[name] = entry.option.secret && !entry.value.empty() ? "***" : entry.value;
  }
  return out;
}

std::string IsInt(std::string_view value) {
  int64_t v;
  return absl::SimpleAtoi(ToAbsl(value), &v) ? "" : "must be an integer";
}

std::function<std::string(std::string_view)> IsIntIn(int64_t min, int64_t max) {
  return [min, max](std::string_view value) -> std::string {
    int64_t v;
    if (!absl::SimpleAtoi(ToAbsl(value), &v) || v < min || v > max) {
      return absl::StrCat("must be an integer from ", min, " to ", max);
    }
    return "";
  };
}

std::string IsDuration(std::string_view value) {
  absl::Duration d;
  if (!absl::ParseDuration(ToAbsl(value), &d)) return "must be a duration such as 500ms, 5s or 1m";
  return d < absl::ZeroDuration() ? "must not be negative" : "";
}

std::string IsBool(std::string_view value) {
  return ParseBool(value) ? "" : "must be true or false";
}

std::string IsHostPort(std::string_view value) {
  auto colon = value.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return "must be host:port";
  int port;
  if (!absl::SimpleAtoi(ToAbsl(value.substr(colon + 1)), &port) || port < 0 || port > 65535) {
    return "port must be a number from 0 to 65535";
  }
  return "";
}

}  // namespace qai::common
