#include "services/sandbox/preview_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "common/ids.h"

namespace qai::sandbox {
namespace {

const std::string kSnapshot = common::NewUuid();
const std::string kBroken = common::NewUuid();  // its lookups fail with UNAVAILABLE

// FakeSnapshots: the Lookup, recording what it was asked for.
class FakeSnapshots {
 public:
  FakeSnapshots() {
    files_ = {
        {"index.html", "<html><script src=\"app.js\"></script></html>"},
        {"app.js", "document.title = 'hi';"},
        {"css/site.css", "body { color: red }"},
        {"data.json", "{\"a\": 1}"},
        {"logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>"},
        {"img/pixel.png", std::string("\x89PNG\r\n\x1a\n", 8)},
        {"notes.txt", "plain"},
        {"docs/index.html", "<h1>docs</h1>"},
        {"my page.html", "<p>spaces</p>"},
        {"blob.bin", "??"},
        {"Makefile", "all:"},
    };
  }

  PreviewServer::Lookup Lookup() {
    return [this](const std::string& snapshot, const std::string& path) -> absl::StatusOr<std::string> {
      {
        std::lock_guard lock(mu_);
        asked_.push_back(path);
      }
      if (snapshot == kBroken) return absl::UnavailableError("database down");
      if (snapshot != kSnapshot) return absl::NotFoundError("no such snapshot");
      auto it = files_.find(path);
      if (it == files_.end()) return absl::NotFoundError("no such file");
      return it->second;
    };
  }

  std::vector<std::string> asked() {
    std::lock_guard lock(mu_);
    return asked_;
  }

 private:
  std::map<std::string, std::string> files_;
  std::mutex mu_;
  std::vector<std::string> asked_;
};

class PreviewServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = PreviewServer::Start("127.0.0.1:0", snapshots_.Lookup());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_connection_timeout(std::chrono::seconds(5));
    client_->set_read_timeout(std::chrono::seconds(5));
  }

  static std::string Path(const std::string& file) { return "/" + kSnapshot + "/" + file; }

  void ExpectSecurityHeaders(const httplib::Result& res) {
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(res->get_header_value("Content-Security-Policy"), "sandbox allow-scripts allow-forms");
    EXPECT_EQ(res->get_header_value("Cache-Control"), "no-cache");
  }

  FakeSnapshots snapshots_;
  std::unique_ptr<PreviewServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(PreviewServerTest, ServesFilesWithTheirTypesAndHeaders) {
  const std::pair<std::string, std::string> cases[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"css/site.css", "text/css; charset=utf-8"},
      {"data.json", "application/json"},
      {"logo.svg", "image/svg+xml"},
      {"img/pixel.png", "image/png"},
      {"notes.txt", "text/plain; charset=utf-8"},
      {"blob.bin", "application/octet-stream"},
      {"Makefile", "application/octet-stream"},
  };
  for (const auto& [file, type] : cases) {
    auto res = client_->Get(Path(file).c_str());
    ASSERT_TRUE(res) << file << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200) << file;
    EXPECT_EQ(res->get_header_value("Content-Type"), type) << file;
    ExpectSecurityHeaders(res);
  }
  auto css = client_->Get(Path("css/site.css").c_str());
  ASSERT_TRUE(css);
  EXPECT_EQ(css->body, "body { color: red }");
  auto png = client_->Get(Path("img/pixel.png").c_str());
  ASSERT_TRUE(png);
  EXPECT_EQ(png->body, std::string("\x89PNG\r\n\x1a\n", 8));
  // Percent-encoding is decoded once; a query string is not part of the path.
  auto spaced = client_->Get(("/" + kSnapshot + "/my%20page.html?v=2").c_str());
  ASSERT_TRUE(spaced);
  EXPECT_EQ(spaced->status, 200);
  EXPECT_EQ(spaced->body, "<p>spaces</p>");
  // Snapshot ids in upper case are the same snapshot.
  auto upper = client_->Get(("/" + absl::AsciiStrToUpper(kSnapshot) + "/app.js").c_str());
  ASSERT_TRUE(upper);
  EXPECT_EQ(upper->status, 200);
}

TEST_F(PreviewServerTest, AnEmptyPathOrADirectoryMeansIndexHtml) {
  auto root = client_->Get(("/" + kSnapshot + "/").c_str());
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 200);
  EXPECT_EQ(root->body, "<html><script src=\"app.js\"></script></html>");
  EXPECT_EQ(root->get_header_value("Content-Type"), "text/html; charset=utf-8");
  auto docs = client_->Get(Path("docs/").c_str());
  ASSERT_TRUE(docs);
  EXPECT_EQ(docs->status, 200);
  EXPECT_EQ(docs->body, "<h1>docs</h1>");
}

TEST_F(PreviewServerTest, AnythingElseIsNotFoundWithoutReachingTheLookup) {
  const std::string other = common::NewUuid();
  const std::string refused[] = {
      "/",
      "/index.html",
      "/" + kSnapshot,                           // no slash after the id
      "/not-a-uuid/index.html",
      "/" + kSnapshot.substr(1) + "/index.html",
      "/../" + kSnapshot + "/index.html",
      Path("../" + other + "/index.html"),
      Path("css/../index.html"),
      Path("./index.html"),
      Path("%2e%2e/" + other + "/index.html"),
      Path("css/%2E%2E/index.html"),
      Path("/etc/passwd"),                       // a leading '/' after the id
      Path("css//site.css"),
      Path("a%00b.html"),
      Path("a%0ab.html"),
      Path("a%5cb.html"),                        // a backslash
      Path("%ff%fe.html"),                       // not UTF-8
  };
  for (const std::string& path : refused) {
    auto res = client_->Get(path.c_str());
    ASSERT_TRUE(res) << path << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 404) << path;
    ExpectSecurityHeaders(res);
  }
  EXPECT_TRUE(snapshots_.asked().empty()) << snapshots_.asked().front();

  // Well-formed, but unknown to the lookup.
  for (const std::string& path : {Path("missing.css"), "/" + other + "/index.html"}) {
    auto res = client_->Get(path.c_str());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404) << path;
  }
  EXPECT_EQ(snapshots_.asked(), (std::vector<std::string>{"missing.css", "index.html"}));
}

TEST_F(PreviewServerTest, LookupFailuresOtherThanNotFoundAreUnavailable) {
  auto res = client_->Get(("/" + kBroken + "/index.html").c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body.find("database"), std::string::npos) << "the cause is logged, not shown";
  ExpectSecurityHeaders(res);
}

TEST_F(PreviewServerTest, HeadAnswersWithTheHeadersOnly) {
  auto res = client_->Head(Path("app.js").c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(res->body.empty());
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(res->get_header_value("Content-Length"), std::to_string(std::string("document.title = 'hi';").size()));
  ExpectSecurityHeaders(res);
  auto missing = client_->Head(Path("missing.js").c_str());
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(PreviewServerTest, OnlyGetAndHeadAreServed) {
  auto post = client_->Post(Path("index.html").c_str(), "x=1", "application/x-www-form-urlencoded");
  ASSERT_TRUE(post) << httplib::to_string(post.error());
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
  ExpectSecurityHeaders(post);
  auto put = client_->Put(Path("index.html").c_str(), "<p>mine</p>", "text/html");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);
  auto del = client_->Delete(Path("index.html").c_str());
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 405);
  auto options = client_->Options(Path("index.html").c_str());
  ASSERT_TRUE(options);
  EXPECT_EQ(options->status, 405);
  EXPECT_TRUE(snapshots_.asked().empty());
  // The server is fine afterwards.
  auto get = client_->Get(Path("index.html").c_str());
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
}

// Raw: sends `request` on a new connection and returns everything until the server closes it.
std::string Raw(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "connect failed";
  }
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_F(PreviewServerTest, OneRequestPerConnectionSoABodyIsNeverTakenForARequest) {
  const std::string hidden = "GET " + Path("app.js") + " HTTP/1.1\r\nHost: x\r\n\r\n";
  // A GET whose body is a second request, and a refused POST whose body is one.
  for (const std::string& method : {std::string("GET"), std::string("POST")}) {
    const std::string out = Raw(server_->port(), method + " " + Path("index.html") + " HTTP/1.1\r\nHost: x\r\n" +
                                                     "Content-Length: " + std::to_string(hidden.size()) +
                                                     "\r\n\r\n" + hidden);
    EXPECT_EQ(Count(out, "HTTP/1.1 "), 1u) << out;
    EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
    EXPECT_EQ(out.find("document.title"), std::string::npos) << out;
  }
  // Pipelined requests: only the first is answered.
  const std::string out = Raw(server_->port(), hidden + hidden);
  EXPECT_EQ(Count(out, "HTTP/1.1 200"), 1u) << out;
}

TEST_F(PreviewServerTest, RangesAreHonoured) {
  auto res = client_->Get(Path("notes.txt").c_str(), {{"Range", "bytes=1-3"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 206);
  EXPECT_EQ(res->body, "lai");
}

TEST_F(PreviewServerTest, ServesConcurrentClientsOnItsBoundedThreads) {
  constexpr int kClients = 24;
  std::atomic<int> ok{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", server_->port());
      client.set_read_timeout(std::chrono::seconds(10));
      for (int j = 0; j < 5; ++j) {
        auto res = client.Get(Path("app.js").c_str());
        if (res && res->status == 200) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients * 5);
  // A burst beyond a shallow listen backlog would have connections retried after a second.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
}

TEST_F(PreviewServerTest, StopIsPromptAndIdempotent) {
  ASSERT_TRUE(client_->Get(Path("index.html").c_str()));
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  server_->Stop();
  auto res = client_->Get(Path("index.html").c_str());
  EXPECT_FALSE(res) << "nothing listens any more";
}

TEST(PreviewServerStartTest, RefusesBadAddressesAndBusyPorts) {
  auto lookup = [](const std::string&, const std::string&) -> absl::StatusOr<std::string> { return "x"; };
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536", "127.0.0.1:-1"}) {
    EXPECT_EQ(PreviewServer::Start(bad, lookup).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(PreviewServer::Start("127.0.0.1:0", nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  auto first = PreviewServer::Start("127.0.0.1:0", lookup);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = PreviewServer::Start("127.0.0.1:" + std::to_string((*first)->port()), lookup);
  EXPECT_FALSE(second.ok());
  auto v6 = PreviewServer::Start("[::1]:0", lookup);
  if (v6.ok()) {  // machines without IPv6 cannot bind it
    httplib::Client client("::1", (*v6)->port());
    auto res = client.Get(("/" + kSnapshot + "/a.txt").c_str());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body, "x");
  }
}

}  // namespace
}  // namespace qai::sandbox
