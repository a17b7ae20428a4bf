#include "services/sandbox/preview_server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/validation.h"

namespace qai::sandbox {
namespace {

// Requests served at once, and accepted connections waiting for one of those threads; beyond
// that the accept loop waits, so further clients queue in the kernel's listen backlog.
constexpr size_t kThreads = 8;
constexpr size_t kMaxQueuedConnections = 64;
constexpr int kListenBacklog = 128;
// Only GET and HEAD are served, and they carry no body.
constexpr size_t kMaxPayload = 1024;
// One request per connection (see Start), so this is how long a connection may idle before its
// request starts; slow clients cannot hold the few threads for long.
constexpr time_t kIdleTimeoutSeconds = 2;
constexpr time_t kReadTimeoutSeconds = 5;
constexpr time_t kWriteTimeoutSeconds = 10;

// Model-written pages may run their own scripts and forms, but `sandbox` without
// allow-same-origin gives them an opaque origin: no cookies or storage of the preview origin,
// and no reach into other snapshots' pages.
constexpr char kContentSecurityPolicy[] = "sandbox allow-scripts allow-forms";

// BoundedThreadPool: httplib's ThreadPool (0.11) queues without limit; this one makes the
// accept loop wait while kMaxQueuedConnections are waiting.
class BoundedThreadPool : public httplib::TaskQueue {
 public:
  BoundedThreadPool(size_t threads, size_t max_queued) : max_queued_(max_queued) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~BoundedThreadPool() override = default;  // shutdown() joined the threads

  void enqueue(std::function<void()> fn) override {
    {
      std::unique_lock lock(mu_);
      // Only the accept loop enqueues, and it calls shutdown() after its last enqueue.
      room_.wait(lock, [&] { return jobs_.size() < max_queued_; });
      jobs_.push_back(std::move(fn));
    }
    work_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
    }
    work_.notify_all();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        work_.wait(lock, [&] { return shutdown_ || !jobs_.empty(); });
        // Queued connections are still run: each closes its socket (at once once the server
        // stopped).
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      room_.notify_one();
      fn();
    }
  }

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable work_;
  std::condition_variable room_;
  std::deque<std::function<void()>> jobs_;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

// HttpServer: httplib's server with a deeper listen backlog. 0.11 listens with a backlog of 5,
// so a burst of new connections (one per request here) would have SYNs dropped and retried a
// second later; Linux lets a listening socket be given a new backlog.
class HttpServer : public httplib::Server {
 public:
  bool DeepenBacklog(int backlog) {
    const socket_t sock = svr_sock_;
    return sock != INVALID_SOCKET && ::listen(sock, backlog) == 0;
  }
};

// ContentType: by the file's extension; unknown ones are downloads, never sniffed.
std::string ContentType(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"cjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/x-icon"},
      {"bmp", "image/bmp"},
      {"txt", "text/plain; charset=utf-8"},
      {"md", "text/markdown; charset=utf-8"},
      {"csv", "text/csv; charset=utf-8"},
      {"xml", "application/xml"},
      {"wasm", "application/wasm"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"otf", "font/otf"},
      {"mp3", "audio/mpeg"},
      {"wav", "audio/wav"},
      {"ogg", "audio/ogg"},
      {"mp4", "video/mp4"},
      {"webm", "video/webm"},
      {"pdf", "application/pdf"},
      // Sources a browser cannot run, shown as text.
      {"ts", "text/plain; charset=utf-8"},
      {"tsx", "text/plain; charset=utf-8"},
      {"jsx", "text/plain; charset=utf-8"},
      {"py", "text/plain; charset=utf-8"},
      {"sh", "text/plain; charset=utf-8"},
      {"yml", "text/plain; charset=utf-8"},
      {"yaml", "text/plain; charset=utf-8"},
      {"toml", "text/plain; charset=utf-8"},
  };
  const std::string_view name = path.substr(path.rfind('/') + 1);
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return "application/octet-stream";
  const std::string extension = absl::AsciiStrToLower(common::ToAbsl(name.substr(dot + 1)));
  for (const auto& [ext, type] : kTypes) {
    if (extension == ext) return std::string(type);
  }
  return "application/octet-stream";
}

struct Target {
  std::string snapshot_id;
  std::string path;
};

// ParseTarget: the snapshot file that a request path (percent-decoded by httplib) names:
// "/<uuid>/<relative path>", where the path's segments are non-empty, not "." or "..", and
// free of control characters and backslashes, and the whole is valid UTF-8. nullopt otherwise.
std::optional<Target> ParseTarget(std::string_view path) {
  if (path.size() < 2 || path[0] != '/') return std::nullopt;
  const size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view id = path.substr(1, slash - 1);
  if (!common::IsUuid(id)) return std::nullopt;
  std::string file(path.substr(slash + 1));
  if (file.empty() || file.back() == '/') file += "index.html";
  if (common::Utf8Length(file) < 0) return std::nullopt;
  for (absl::string_view segment : absl::StrSplit(file, '/')) {
    if (segment.empty() || segment == "." || segment == "..") return std::nullopt;
    for (unsigned char c : segment) {
      if (c < 0x20 || c == 0x7f || c == '\\') return std::nullopt;
    }
  }
  return Target{absl::AsciiStrToLower(common::ToAbsl(id)), std::move(file)};
}

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(std::string_view addr) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("preview address \"", common::ToAbsl(addr), "\" is not host:port"));
  }
  std::string host(addr.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  const std::string_view port_text = addr.substr(colon + 1);
  int port = -1;
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(common::ToAbsl(port_text), &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("preview address \"", common::ToAbsl(addr), "\" has no valid port"));
  }
  return std::make_pair(std::move(host), port);
}

void SetError(httplib::Response& res, int status, std::string_view text) {
  res.status = status;
  res.set_content(std::string(text), "text/plain; charset=utf-8");
}

// Serve: a GET or HEAD. Handled with the file (httplib then applies Range and compression and
// picks 200 or 206); failures are left unhandled with their status set, so httplib writes them
// as they are.
httplib::Server::HandlerResponse Serve(const PreviewServer::Lookup& lookup, const httplib::Request& req,
                                       httplib::Response& res) {
  std::optional<Target> target = ParseTarget(req.path);
  if (!target) {
    SetError(res, 404, "not found\n");
    return httplib::Server::HandlerResponse::Unhandled;
  }
  absl::StatusOr<std::string> content = lookup(target->snapshot_id, target->path);
  if (!content.ok()) {
    if (content.status().code() == absl::StatusCode::kNotFound) {
      SetError(res, 404, "not found\n");
    } else {
      common::Log(common::LogLevel::kWarn, "preview: lookup failed",
                  {{"snapshot_id", target->snapshot_id}, {"error", content.status().ToString()}});
      SetError(res, 503, "preview unavailable, try again\n");
      res.set_header("Retry-After", "1");
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }
  res.set_content(std::move(*content), ContentType(target->path));
  res.set_header("Vary", "Accept-Encoding");
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace

struct PreviewServer::Impl {
  HttpServer server;
  std::thread thread;
  std::atomic<bool> finished{false};
};

absl::StatusOr<std::unique_ptr<PreviewServer>> PreviewServer::Start(const std::string& listen_addr, Lookup lookup) {
  absl::StatusOr<std::pair<std::string, int>> addr = SplitHostPort(listen_addr);
  if (!addr.ok()) return addr.status();
  if (!lookup) return absl::InvalidArgumentError("preview server: no lookup");

  std::unique_ptr<PreviewServer> preview(new PreviewServer());
  preview->impl_ = std::make_unique<Impl>();
  HttpServer& server = preview->impl_->server;
  server.new_task_queue = [] { return new BoundedThreadPool(kThreads, kMaxQueuedConnections); };
  // One request per connection: the unread body of a refused request can never be taken for a
  // second request, and no idle keep-alive connection holds a thread.
  server.set_keep_alive_max_count(1);
  server.set_keep_alive_timeout(kIdleTimeoutSeconds);
  server.set_read_timeout(kReadTimeoutSeconds, 0);
  server.set_write_timeout(kWriteTimeoutSeconds, 0);
  server.set_payload_max_length(kMaxPayload);
  // httplib's default sets SO_REUSEPORT, which would let a second server share a busy port
  // (and its requests) instead of failing to start.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server.set_default_headers({
      {"X-Content-Type-Options", "nosniff"},
      {"Content-Security-Policy", kContentSecurityPolicy},
      {"Cache-Control", "no-cache"},
  });
  auto refuse = [](httplib::Response& res) {
    SetError(res, 405, "method not allowed\n");
    res.set_header("Allow", "GET, HEAD");
  };
  // Everything is answered here, before httplib would read a body or match its (std::regex)
  // routes.
  server.set_pre_routing_handler([lookup = std::move(lookup), refuse](const httplib::Request& req,
                                                                      httplib::Response& res) {
    if (req.method != "GET" && req.method != "HEAD") {
      refuse(res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return Serve(lookup, req, res);
  });
  // A client that waits for "100 Continue" before sending a body is refused up front.
  server.set_expect_100_continue_handler([refuse](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "GET" || req.method == "HEAD") return 100;
    refuse(res);
    return 405;
  });
  // httplib would otherwise put the exception's text into a response header.
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    SetError(res, 500, "internal error\n");
  });

  const auto& [host, port] = *addr;
  int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat("preview server: cannot listen on ", listen_addr));
  }
  if (!server.DeepenBacklog(kListenBacklog)) {
    common::Log(common::LogLevel::kWarn, "preview server: cannot deepen the listen backlog");
  }
  preview->port_ = bound;
  Impl* impl = preview->impl_.get();
  impl->thread = std::thread([impl] {
    impl->server.listen_after_bind();
    impl->finished = true;
  });
  // httplib's stop() does nothing until the accept loop runs, so Stop() must not come earlier.
  while (!impl->server.is_running() && !impl->finished.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (impl->finished.load()) {
    impl->thread.join();
    return absl::UnavailableError(absl::StrCat("preview server: accepting on ", listen_addr, " failed"));
  }
  common::Log(common::LogLevel::kInfo, "preview server listening", {{"addr", absl::StrCat(host, ":", bound)}});
  return preview;
}

PreviewServer::~PreviewServer() { Stop(); }

void PreviewServer::Stop() {
  if (impl_ == nullptr || !impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
}

}  // namespace qai::sandbox
