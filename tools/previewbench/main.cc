// qai-previewbench: the real PreviewServer, serving one snapshot made of a directory's files,
// for tools/bench/preview_bench.sh to measure next to nginx. The loader is the only thing
// that differs from qai-sandbox: it answers from memory instead of PostgreSQL, which the
// server asks once per snapshot anyway.
//
//   qai-previewbench --dir DIR [--listen 127.0.0.1:0] [--snapshot-id UUID] [--threads N]
//
// Prints one JSON line on stdout once listening: {"msg":"listening","port":P,"snapshot_id":ID},
// so the files are at http://127.0.0.1:P/ID/<path>. Serves until SIGINT or SIGTERM. Exit
// status: 0 after a signal, 1 when it cannot start, 2 for bad flags.

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "common/ids.h"
#include "common/log.h"
#include "nlohmann/json.hpp"
#include "services/sandbox/preview/preview_server.h"

namespace {

// ReadTree: every regular file under `dir`, by its relative path with '/'.
std::map<std::string, std::string> ReadTree(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    files.emplace(std::filesystem::relative(entry.path(), dir).generic_string(), content.str());
  }
  return files;
}

int Usage(const char* why) {
  std::cerr << "qai-previewbench: " << why
            << "\nusage: qai-previewbench --dir DIR [--listen HOST:PORT] [--snapshot-id UUID] "
               "[--threads N]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, listen = "127.0.0.1:0", snapshot_id = "00000000-0000-4000-8000-000000000000";
  qai::sandbox::PreviewServerOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return Usage(("no value for " + flag).c_str());
    const std::string value = argv[++i];
    if (flag == "--dir") {
      dir = value;
    } else if (flag == "--listen") {
      listen = value;
    } else if (flag == "--snapshot-id") {
      snapshot_id = value;
    } else if (flag == "--threads") {
      if (!absl::SimpleAtoi(value, &options.threads)) return Usage("--threads is not a number");
    } else {
      return Usage(("unknown flag " + flag).c_str());
    }
  }
  if (dir.empty() || !std::filesystem::is_directory(dir)) return Usage("--dir is not a directory");
  if (!qai::common::IsUuid(snapshot_id)) return Usage("--snapshot-id is not a UUID");
  qai::common::InitLogging("previewbench");

  auto snapshot = std::make_shared<const qai::sandbox::PreviewSnapshot>(
      qai::sandbox::PreviewSnapshot{.files = ReadTree(dir), .created = absl::Now()});
  auto loader = [snapshot, snapshot_id](const std::string& id)
      -> absl::StatusOr<std::shared_ptr<const qai::sandbox::PreviewSnapshot>> {
    if (id != snapshot_id) return absl::NotFoundError("no such snapshot");
    return snapshot;
  };

  // Blocked before the server's threads start, so they inherit the mask and sigwait gets them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = qai::sandbox::PreviewServer::Start(listen, loader, options);
  if (!server.ok()) {
    std::cerr << "qai-previewbench: " << server.status() << "\n";
    return 1;
  }
  std::cout << nlohmann::json{{"msg", "listening"},
                              {"port", (*server)->port()},
                              {"snapshot_id", snapshot_id},
                              {"files", snapshot->files.size()}}
                   .dump()
            << std::endl;
  int signal = 0;
  sigwait(&signals, &signal);
  (*server)->Stop();
  return 0;
}
