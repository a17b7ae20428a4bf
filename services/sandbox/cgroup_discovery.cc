#include "services/sandbox/cgroup_discovery.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_split.h"
#include "common/strings.h"

namespace qai::sandbox {
namespace {

using common::ToAbsl;

// Unescape: mountinfo writes a space, tab, newline and backslash in a path as \ooo.
std::string Unescape(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    auto octal = [&](size_t at) { return text[at] >= '0' && text[at] <= '7'; };
    if (text[i] == '\\' && i + 3 < text.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 +
                               (text[i + 3] - '0'));
      i += 3;
    } else {
      out += text[i];
    }
  }
  return out;
}

struct Mount {
  std::string root;   // what of the hierarchy is mounted ("/" for all of it)
  std::string point;  // where
  bool unified = false;
  std::set<std::string> options;  // v1: its super options, the controllers among them
};

std::vector<Mount> CgroupMounts(std::string_view mountinfo) {
  std::vector<Mount> mounts;
  for (absl::string_view line : absl::StrSplit(ToAbsl(mountinfo), '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    // id parent major:minor root point options [optional...] - type source super-options
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 10 || dash == fields.end() || fields.end() - dash < 4 ||
        dash - fields.begin() < 6)
      continue;
    const absl::string_view type = dash[1];
    if (type != "cgroup" && type != "cgroup2") continue;
    Mount m{
        .root = Unescape(fields[3]), .point = Unescape(fields[4]), .unified = type == "cgroup2"};
    for (absl::string_view option : absl::StrSplit(dash[3], ',')) m.options.emplace(option);
    mounts.push_back(std::move(m));
  }
  return mounts;
}

// Below: path as seen below a mount of root; false when the mount does not reach it.
bool Below(const std::string& root, const std::string& path, std::string* relative) {
  if (root == "/") {
    *relative = path;
    return true;
  }
  if (path == root) {
    *relative = "/";
    return true;
  }
  if (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
      path[root.size()] == '/') {
    *relative = path.substr(root.size());
    return true;
  }
  return false;
}

std::string Join(const std::string& point, const std::string& relative) {
  if (relative == "/") return point;
  if (point == "/") return relative;
  return point + relative;
}

}  // namespace

std::vector<CgroupPlace> OwnCgroups(std::string_view mountinfo, std::string_view self_cgroup) {
  const std::vector<Mount> mounts = CgroupMounts(mountinfo);
  std::vector<CgroupPlace> places;
  for (absl::string_view line : absl::StrSplit(ToAbsl(self_cgroup), '\n', absl::SkipEmpty())) {
    // hierarchy-id:controllers:path (the path may itself hold colons)
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3 || parts[2].empty() || parts[2].front() != '/') continue;
    const bool unified = parts[0] == "0" && parts[1].empty();
    std::vector<std::string> controllers;
    if (!unified) {
      for (absl::string_view c : absl::StrSplit(parts[1], ',', absl::SkipEmpty()))
        controllers.emplace_back(c);
      if (controllers.empty()) continue;
    }
    const std::string path(parts[2]);
    for (const Mount& m : mounts) {
      if (m.unified != unified) continue;
      if (!unified && !std::all_of(controllers.begin(), controllers.end(),
                                   [&](const std::string& c) { return m.options.contains(c); })) {
        continue;
      }
      std::string relative;
      if (!Below(m.root, path, &relative)) continue;
      places.push_back(
          {.dir = Join(m.point, relative), .controllers = controllers, .unified = unified});
      break;
    }
  }
  return places;
}

}  // namespace qai::sandbox
