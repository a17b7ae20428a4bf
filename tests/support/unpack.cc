#include "tests/support/unpack.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace qai::testing {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// TempDir: a new directory of this process's own.
fs::path TempDir() {
  static std::mt19937_64 random(std::random_device{}());
  const char* base = std::getenv("TMPDIR");
  fs::path dir = fs::path(base ? base : "/tmp") / absl::StrCat("qai-unpack-", random());
  fs::create_directories(dir);
  return dir;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> Unpack(const std::string& archive,
                                                          const std::string& extension) {
  const fs::path dir = TempDir(), file = dir / ("archive" + extension), out = dir / "out";
  fs::create_directories(out);
  std::ofstream(file, std::ios::binary) << archive;
  const std::string command =
      extension == ".zip" ? absl::StrCat("unzip -q '", file.string(), "' -d '", out.string(), "'")
                          : absl::StrCat("tar -xzf '", file.string(), "' -C '", out.string(), "'");
  if (int rc = std::system(command.c_str()); rc != 0) {
    fs::remove_all(dir);
    return absl::InvalidArgumentError(absl::StrCat(command, " failed: ", rc));
  }
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (e.is_regular_file()) files[fs::relative(e.path(), out).string()] = ReadFile(e.path());
  }
  fs::remove_all(dir);
  return files;
}

}  // namespace qai::testing
