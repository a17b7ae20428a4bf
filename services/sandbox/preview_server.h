#pragma once
// PreviewServer: the HTTP server that shows a fragment's files in a browser.
//
// A fragment's sandbox_url is `<base>/<snapshot id>/`; the server answers
// `GET /<snapshot id>/<path>` (an empty path or one ending in '/' means index.html) with that
// file of the snapshot, as stored when the run finished, so the preview keeps showing that
// version after later runs changed the project's workspace. Content types follow the
// extension; responses carry a restrictive Content-Security-Policy sandbox and nosniff, since
// the pages are model-written. Anything else is 404; only GET and HEAD are served.

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace qai::sandbox {

class PreviewServer {
 public:
  // Lookup: a file of a snapshot (NOT_FOUND when either is unknown; other errors are 503).
  using Lookup = std::function<absl::StatusOr<std::string>(const std::string& snapshot_id, const std::string& path)>;

  // Start: listens on host:port (port 0 picks one) and serves on its own threads.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PreviewServer>> Start(const std::string& listen_addr,
                                                                            Lookup lookup);
  ~PreviewServer();  // Stop()s
  int port() const { return port_; }
  void Stop();

 private:
  PreviewServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace qai::sandbox
