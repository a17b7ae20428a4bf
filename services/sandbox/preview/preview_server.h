#pragma once
// PreviewServer: the HTTP server that shows a fragment's files in a browser.
//
// A fragment's sandbox_url is `<base>/<snapshot id>/`; the server answers
// `GET /<snapshot id>/<path>` with that file of the snapshot, as stored when the run finished,
// so the preview keeps showing that version after later runs changed the project's workspace.
// What a request is answered with is preview_response.h's (a static file host's answers:
// validators, 304s, ranges, precompressed bodies); where the files come from is
// preview_cache.h's (whole snapshots in memory, one load each).
//
//   auto server = PreviewServer::Start("0.0.0.0:8080", [&](const std::string& id) {
//     return store.PreviewSnapshot(id);  // NOT_FOUND -> 404, other errors -> 503
//   });
//
// Connections are kept alive (up to keep_alive_requests requests each, closed after
// keep_alive_timeout idle). A fixed set of threads serves them from one epoll set, and a
// connection holds a thread only while a request of it is being answered: an idle connection,
// or a slow client's half-sent request or half-read response, waits in the epoll set for its
// socket, up to its deadline. So slow or idle clients cost a file descriptor each (at most
// max_connections; beyond that new connections wait in the listen backlog) and never the
// threads.

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/sandbox/preview/preview_cache.h"
#include "services/sandbox/preview/preview_http.h"
#include "services/sandbox/preview/preview_response.h"

namespace qai::sandbox {

struct PreviewServerOptions {
  // The snapshot cache (see PreviewCache::Options).
  size_t cache_bytes = 256 << 20;
  absl::Duration cache_max_age = absl::Minutes(5);
  // Threads answering requests. More than the cores, since a snapshot's first request waits
  // for the database (and compresses a file or two) on its thread.
  int threads = 8;
  size_t max_connections = 512;
  int keep_alive_requests = 1000;  // then the connection is closed, so clients rebalance
  absl::Duration keep_alive_timeout = absl::Seconds(15);  // idle between requests
  absl::Duration read_timeout = absl::Seconds(10);        // a request head, from its first byte
  absl::Duration write_timeout = absl::Seconds(10);       // without progress writing a response
  HeadLimits head_limits;
  // Snapshots' archives (preview_response.h); none: a download is 404.
  DownloadOpener downloads;
};

class PreviewServer {
 public:
  using Loader = PreviewLoader;

  // Start: listens on host:port (port 0 picks one) and serves on its own threads.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PreviewServer>> Start(
      const std::string& listen_addr, Loader loader, PreviewServerOptions options = {});
  ~PreviewServer();  // Stop()s
  int port() const { return port_; }
  // Stop: stops listening and closes every connection, waiting for requests being answered.
  void Stop();
  // ForgetSnapshot: the snapshot was deleted; stop serving it from memory. ForgetAll: some
  // deletions may have gone unnoticed (see PreviewCache::Forget).
  void ForgetSnapshot(const std::string& snapshot_id);
  void ForgetAll();

  struct Stats {
    uint64_t connections_accepted = 0;
    size_t connections_open = 0;
    PreviewCache::Stats cache;
  };
  [[nodiscard]] Stats stats() const;

 private:
  PreviewServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace qai::sandbox
