#include "tools/qai/args.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace qai::cli {

const std::string& Args::Get(std::string_view name) const {
  auto it = values_.find(name);
  assert(it != values_.end() && "flag not declared by this command");
  static const std::string kEmpty;
  return it == values_.end() ? kEmpty : it->second;
}

int64_t Args::GetInt(std::string_view name) const {
  int64_t value = 0;
  return absl::SimpleAtoi(Get(name), &value) ? value : 0;
}

absl::Duration Args::GetDuration(std::string_view name) const {
  absl::Duration value;
  return absl::ParseDuration(Get(name), &value) ? value : absl::ZeroDuration();
}

std::string IsInt32(std::string_view value) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(std::string(value), &n)) return "must be an integer";
  if (n < std::numeric_limits<int32_t>::min() || n > std::numeric_limits<int32_t>::max()) {
    return "is out of range";
  }
  return "";
}

namespace {

bool StartsWith(const std::vector<std::string>& path, const std::vector<std::string>& prefix) {
  return path.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), path.begin());
}

const FlagSpec* FindFlag(std::string_view name, std::span<const FlagSpec> global,
                         const CommandSpec* command) {
  for (const FlagSpec& f : global) {
    if (f.name == name) return &f;
  }
  if (command != nullptr) {
    for (const FlagSpec& f : command->flags) {
      if (f.name == name) return &f;
    }
  }
  return nullptr;
}

std::string Quoted(const std::string& program, const std::vector<std::string>& words) {
  return absl::StrCat("\"", program, words.empty() ? "" : " ", absl::StrJoin(words, " "), "\"");
}

// Resolves one flag (line, environment, default) and checks it; returns why it is unusable.
std::string Resolve(const FlagSpec& flag, const std::map<std::string, std::string>& given,
                    const common::EnvLookup& env, Args& args) {
  std::string value = flag.default_value;
  if (auto it = given.find(flag.name); it != given.end()) {
    value = it->second;
  } else if (!flag.env.empty()) {
    if (std::optional<std::string> from_env = env(flag.env)) value = *from_env;
  }
  std::string where = absl::StrCat("--", flag.name);
  if (!flag.env.empty()) absl::StrAppend(&where, " (", flag.env, ")");
  if (flag.required && value.empty()) return absl::StrCat("missing ", where);
  if (flag.validate && !value.empty()) {
    if (std::string why = flag.validate(value); !why.empty()) {
      return absl::StrCat(where, ": ", why);
    }
  }
  args.Set(flag.name, std::move(value));
  return "";
}

}  // namespace

CommandLine ParseCommandLine(const CliSpec& cli, std::span<const std::string> args,
                             const common::EnvLookup& env) {
  CommandLine line;
  std::map<std::string, std::string> given;
  bool flags_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_ended || arg.size() < 2 || arg[0] != '-') {
      if (line.command != nullptr) {
        line.args.AddPositional(arg);
        continue;
      }
      std::vector<std::string> words = line.words;
      words.push_back(arg);
      auto it = std::find_if(cli.commands.begin(), cli.commands.end(),
                             [&](const CommandSpec& c) { return StartsWith(c.path, words); });
      if (it == cli.commands.end()) {
        line.error = absl::StrCat("unknown command ", Quoted(cli.program, words));
        return line;
      }
      line.words = std::move(words);
      if (it->path == line.words) line.command = &*it;
      continue;
    }
    if (arg == "--") {
      flags_ended = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      line.help = true;
      continue;
    }
    std::string_view name = arg;
    name.remove_prefix(name.starts_with("--") ? 2 : 1);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string_view::npos) {
      value = std::string(name.substr(eq + 1));
      name = name.substr(0, eq);
    }
    const FlagSpec* flag = FindFlag(name, cli.global_flags, line.command);
    if (flag == nullptr) {
      line.error = absl::StrCat("unknown flag ", arg.substr(0, arg.find('=')));
      if (line.command == nullptr && !line.words.empty()) {
        absl::StrAppend(&line.error, " (command flags go after the command)");
      }
      return line;
    }
    if (flag->value_name.empty()) {
      if (value) {
        line.error = absl::StrCat("--", flag->name, " takes no value");
        return line;
      }
      value = "true";
    } else if (!value) {
      if (i + 1 >= args.size()) {
        line.error = absl::StrCat("--", flag->name, " needs a value (", flag->value_name, ")");
        return line;
      }
      value = args[++i];
    }
    given[flag->name] = *std::move(value);
  }
  if (line.help) return line;

  if (line.command == nullptr) {
    line.error = line.words.empty()
                     ? "missing command"
                     : absl::StrCat(Quoted(cli.program, line.words), " needs a subcommand");
    return line;
  }
  const CommandSpec& command = *line.command;
  const std::vector<std::string>& positionals = line.args.positionals();
  if (positionals.size() < command.positionals.size()) {
    line.error = absl::StrCat("missing ", command.positionals[positionals.size()]);
    return line;
  }
  if (positionals.size() > command.positionals.size()) {
    line.error =
        absl::StrCat("unexpected argument \"", positionals[command.positionals.size()], "\"");
    return line;
  }
  for (const auto* flags : {&cli.global_flags, &command.flags}) {
    for (const FlagSpec& flag : *flags) {
      if (std::string why = Resolve(flag, given, env, line.args); !why.empty()) {
        line.error = std::move(why);
        return line;
      }
    }
  }
  return line;
}

namespace {

std::string FlagSynopsis(const FlagSpec& flag) {
  std::string s = absl::StrCat("--", flag.name);
  if (!flag.value_name.empty()) absl::StrAppend(&s, " ", flag.value_name);
  // A required flag that the environment or a default can supply is optional on the line.
  bool must_type = flag.required && flag.env.empty() && flag.default_value.empty();
  return must_type ? s : absl::StrCat("[", s, "]");
}

std::string CommandSynopsis(const CommandSpec& command) {
  std::vector<std::string> parts = command.path;
  parts.insert(parts.end(), command.positionals.begin(), command.positionals.end());
  for (const FlagSpec& flag : command.flags) parts.push_back(FlagSynopsis(flag));
  return absl::StrJoin(parts, " ");
}

void AppendFlags(std::string& out, const char* title, std::span<const FlagSpec> flags) {
  if (flags.empty()) return;
  absl::StrAppend(&out, "\n", title, ":\n");
  size_t width = 0;
  for (const FlagSpec& f : flags) width = std::max(width, f.name.size() + f.value_name.size() + 3);
  for (const FlagSpec& f : flags) {
    std::string left = absl::StrCat("--", f.name, f.value_name.empty() ? "" : " ", f.value_name);
    absl::StrAppend(&out, "  ", left, std::string(width - left.size() + 2, ' '), f.help);
    if (!f.env.empty()) absl::StrAppend(&out, " [", f.env, "]");
    if (!f.default_value.empty()) absl::StrAppend(&out, " (default ", f.default_value, ")");
    if (f.required && f.default_value.empty()) absl::StrAppend(&out, " (required)");
    out += "\n";
  }
}

}  // namespace

std::string Usage(const CliSpec& cli, std::span<const std::string> words) {
  std::vector<std::string> prefix(words.begin(), words.end());
  std::string out;
  auto leaf = std::find_if(cli.commands.begin(), cli.commands.end(),
                           [&](const CommandSpec& c) { return c.path == prefix; });
  if (leaf != cli.commands.end()) {
    absl::StrAppend(&out, "usage: ", cli.program, " ", CommandSynopsis(*leaf),
                    " [global options]\n\n", leaf->summary, "\n");
    AppendFlags(out, "options", leaf->flags);
  } else {
    absl::StrAppend(&out, "usage: ", cli.program, prefix.empty() ? "" : " ",
                    absl::StrJoin(prefix, " "), " COMMAND [ARGS] [global options]\n\ncommands:\n");
    for (const CommandSpec& c : cli.commands) {
      if (!StartsWith(c.path, prefix)) continue;
      absl::StrAppend(&out, "  ", CommandSynopsis(c), "\n      ", c.summary, "\n");
    }
  }
  AppendFlags(out, "global options (anywhere on the line)", cli.global_flags);
  return out;
}

}  // namespace qai::cli
