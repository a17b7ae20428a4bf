#include "services/sandbox/preview/preview_server.h"

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
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "services/sandbox/preview/preview_http.h"
#include "services/sandbox/preview/preview_test_decoders.h"

namespace qai::sandbox {
namespace {

using testing::Gunzip;
using testing::Unbrotli;

const std::string kSnapshot = common::NewUuid();
const std::string kBroken = common::NewUuid();  // its loads fail with UNAVAILABLE
const absl::Time kCreated = absl::FromUnixSeconds(1700000000);

// A page big enough to be sent compressed.
std::string BigPage() {
  std::string out = "<html><body>\n";
  for (int i = 0; out.size() < 20000; ++i) {
    absl::StrAppend(&out, "<p class=\"row\">Row ", i, " of the table, with <a href=\"#r", i,
                    "\">a link</a></p>\n");
  }
  return out + "</body></html>\n";
}

// FakeSnapshots: the Loader, counting its loads per snapshot.
class FakeSnapshots {
 public:
  FakeSnapshots() {
    Put(kSnapshot, {
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
                       {"big.html", BigPage()},
                       {"empty.txt", ""},
                   });
  }

  void Put(const std::string& id, std::map<std::string, std::string> files) {
    std::lock_guard lock(mu_);
    snapshots_[id] =
        std::make_shared<const PreviewSnapshot>(PreviewSnapshot{std::move(files), kCreated});
  }
  void SetDelay(std::chrono::milliseconds delay) { delay_ = delay; }
  void SetBroken(bool broken) { broken_ = broken; }

  PreviewServer::Loader Loader() {
    return [this](const std::string& id) -> absl::StatusOr<std::shared_ptr<const PreviewSnapshot>> {
      {
        std::lock_guard lock(mu_);
        ++loads_[id];
      }
      std::this_thread::sleep_for(delay_.load());
      if (id == kBroken && broken_) return absl::UnavailableError("database down");
      std::lock_guard lock(mu_);
      auto it = snapshots_.find(id);
      if (it == snapshots_.end()) return absl::NotFoundError("no such snapshot");
      return it->second;
    };
  }

  int loads(const std::string& id) {
    std::lock_guard lock(mu_);
    return loads_[id];
  }
  int total_loads() {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& [id, count] : loads_) n += count;
    return n;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const PreviewSnapshot>> snapshots_;
  std::map<std::string, int> loads_;
  std::atomic<std::chrono::milliseconds> delay_{std::chrono::milliseconds(0)};
  std::atomic<bool> broken_{true};
};

// RawResponse: a response as RawConnection read it.
struct RawResponse {
  int status = 0;
  std::string head;
  std::string body;

  std::string Header(const std::string& name) const {
    for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
      const size_t colon = line.find(':');
      if (colon != absl::string_view::npos && absl::EqualsIgnoreCase(line.substr(0, colon), name)) {
        return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      }
    }
    return "";
  }
};

// RawConnection: one TCP connection to speak HTTP on byte by byte, where httplib's client
// would hide what happens (reconnects, framing).
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~RawConnection() { close(fd_); }

  bool connected() const { return connected_; }

  bool Send(std::string_view data) {
    return send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // FinishSending: tells the server nothing more comes.
  void FinishSending() { shutdown(fd_, SHUT_WR); }

  // Read: the next response (its body by Content-Length; none when `no_body`, for HEAD and
  // 304); nullopt when the connection ends first.
  std::optional<RawResponse> Read(bool no_body = false) {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    RawResponse out;
    out.head = buffer_.substr(0, end + 4);
    buffer_.erase(0, end + 4);
    if (!absl::SimpleAtoi(absl::string_view(out.head).substr(9, 3), &out.status))
      return std::nullopt;
    size_t length = 0;
    if (!no_body && out.status != 304 && !absl::SimpleAtoi(out.Header("Content-Length"), &length))
      return std::nullopt;
    while (buffer_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    out.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return out;
  }

  // Closed: whether the server ends the connection (within the receive timeout) with nothing
  // more sent.
  bool Closed() {
    while (Fill()) {
    }
    return eof_ && buffer_.empty();
  }

  // ReadAll: everything until the server closes the connection.
  std::string ReadAll() {
    while (Fill()) {
    }
    return std::exchange(buffer_, "");
  }

 private:
  bool Fill() {
    char buf[16384];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof_ = n == 0;
      return false;
    }
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  bool connected_ = false;
  bool eof_ = false;
  std::string buffer_;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string Path(const std::string& file) { return "/" + kSnapshot + "/" + file; }

std::string Get(const std::string& path, const std::string& fields = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n";
}

class PreviewServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}); }

  void StartServer(PreviewServerOptions options) {
    server_.reset();
    auto server = PreviewServer::Start("127.0.0.1:0", snapshots_.Loader(), options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_connection_timeout(std::chrono::seconds(5));
    client_->set_read_timeout(std::chrono::seconds(5));
    // The bodies as sent, to check their encoding here.
    client_->set_decompress(false);
  }

  void ExpectSecurityHeaders(const httplib::Result& res) {
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(res->get_header_value("Content-Security-Policy"),
              "sandbox allow-scripts allow-forms");
    EXPECT_TRUE(res->has_header("Date"));
  }
  void ExpectFileHeaders(const httplib::Result& res) {
    ExpectSecurityHeaders(res);
    EXPECT_EQ(res->get_header_value("Cache-Control"), "public, max-age=31536000, immutable");
    EXPECT_EQ(res->get_header_value("Last-Modified"), FormatHttpDate(kCreated));
    EXPECT_EQ(res->get_header_value("Accept-Ranges"), "bytes");
    // A quoted hash, "-gzip" or "-br" appended for those bodies.
    const std::string etag = res->get_header_value("ETag");
    EXPECT_TRUE(etag.size() >= 34 && etag.front() == '"' && etag.back() == '"') << etag;
  }
  void ExpectErrorHeaders(const httplib::Result& res) {
    ExpectSecurityHeaders(res);
    EXPECT_EQ(res->get_header_value("Cache-Control"), "no-cache");
    EXPECT_FALSE(res->has_header("ETag"));
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
    ExpectFileHeaders(res);
  }
  auto css = client_->Get(Path("css/site.css").c_str());
  ASSERT_TRUE(css);
  EXPECT_EQ(css->body, "body { color: red }");
  EXPECT_EQ(css->get_header_value("Content-Length"), "19");
  auto png = client_->Get(Path("img/pixel.png").c_str());
  ASSERT_TRUE(png);
  EXPECT_EQ(png->body, std::string("\x89PNG\r\n\x1a\n", 8));
  auto empty = client_->Get(Path("empty.txt").c_str());
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 200);
  EXPECT_EQ(empty->get_header_value("Content-Length"), "0");
  // Percent-encoding is decoded once; a query string is not part of the path.
  auto spaced = client_->Get(("/" + kSnapshot + "/my%20page.html?v=2").c_str());
  ASSERT_TRUE(spaced);
  EXPECT_EQ(spaced->status, 200);
  EXPECT_EQ(spaced->body, "<p>spaces</p>");
  // Snapshot ids in upper case are the same snapshot.
  auto upper = client_->Get(("/" + absl::AsciiStrToUpper(kSnapshot) + "/app.js").c_str());
  ASSERT_TRUE(upper);
  EXPECT_EQ(upper->status, 200);
  // Two files, two tags.
  EXPECT_NE(css->get_header_value("ETag"), png->get_header_value("ETag"));
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

TEST_F(PreviewServerTest, AnythingElseIsNotFoundWithoutReachingTheLoader) {
  const std::string other = common::NewUuid();
  const std::string refused[] = {
      "/",
      "/index.html",
      "/" + kSnapshot,  // no slash after the id
      "/not-a-uuid/index.html",
      "/" + kSnapshot.substr(1) + "/index.html",
      "/../" + kSnapshot + "/index.html",
      Path("../" + other + "/index.html"),
      Path("css/../index.html"),
      Path("./index.html"),
      Path("%2e%2e/" + other + "/index.html"),
      Path("css/%2E%2E/index.html"),
      Path("/etc/passwd"),  // a leading '/' after the id
      Path("css//site.css"),
      Path("a%00b.html"),
      Path("a%0ab.html"),
      Path("a%5cb.html"),   // a backslash
      Path("%ff%fe.html"),  // not UTF-8
  };
  for (const std::string& path : refused) {
    auto res = client_->Get(path.c_str());
    ASSERT_TRUE(res) << path << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 404) << path;
    ExpectErrorHeaders(res);
  }
  EXPECT_EQ(snapshots_.total_loads(), 0);

  // Well-formed, but unknown: a file the snapshot lacks, a snapshot nobody wrote.
  for (const std::string& path : {Path("missing.css"), "/" + other + "/index.html"}) {
    auto res = client_->Get(path.c_str());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404) << path;
    EXPECT_EQ(res->body, "not found\n");
  }
  EXPECT_EQ(snapshots_.loads(kSnapshot), 1);
  EXPECT_EQ(snapshots_.loads(other), 1);
}

TEST_F(PreviewServerTest, LoaderFailuresAreUnavailableAndNotRemembered) {
  auto res = client_->Get(("/" + kBroken + "/index.html").c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  EXPECT_EQ(res->body.find("database"), std::string::npos) << "the cause is logged, not shown";
  ExpectErrorHeaders(res);
  // The database is back.
  snapshots_.Put(kBroken, {{"index.html", "back"}});
  snapshots_.SetBroken(false);
  auto again = client_->Get(("/" + kBroken + "/index.html").c_str());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(again->body, "back");
}

TEST_F(PreviewServerTest, ASnapshotIsLoadedOnceForAllItsFiles) {
  for (const char* file : {"index.html", "app.js", "css/site.css", "index.html", "missing.png"}) {
    auto res = client_->Get(Path(file).c_str());
    ASSERT_TRUE(res);
  }
  EXPECT_EQ(snapshots_.loads(kSnapshot), 1);
  EXPECT_EQ(server_->stats().cache.snapshots, 1u);
}

TEST_F(PreviewServerTest, ConcurrentFirstRequestsShareOneLoad) {
  snapshots_.SetDelay(std::chrono::milliseconds(300));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client client("127.0.0.1", server_->port());
      auto res = client.Get(Path(i % 2 == 0 ? "index.html" : "app.js").c_str());
      if (res && res->status == 200) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_EQ(snapshots_.loads(kSnapshot), 1);
}

TEST_F(PreviewServerTest, AForgottenSnapshotIsLoadedAgain) {
  ASSERT_TRUE(client_->Get(Path("index.html").c_str()));
  server_->ForgetSnapshot(kSnapshot);
  ASSERT_TRUE(client_->Get(Path("index.html").c_str()));
  EXPECT_EQ(snapshots_.loads(kSnapshot), 2);
  server_->ForgetAll();
  ASSERT_TRUE(client_->Get(Path("index.html").c_str()));
  EXPECT_EQ(snapshots_.loads(kSnapshot), 3);
}

TEST_F(PreviewServerTest, TheCacheBoundEvictsTheLeastRecentlyUsedSnapshot) {
  StartServer({.cache_bytes = 100 << 10});
  const std::string a = common::NewUuid(), b = common::NewUuid();
  snapshots_.Put(a, {{"index.html", std::string(40 << 10, 'a')}});
  snapshots_.Put(b, {{"index.html", std::string(70 << 10, 'b')}});
  for (const std::string& id : {a, a, b, b, a}) {
    auto res = client_->Get(("/" + id + "/").c_str());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body.size(), id == a ? 40u << 10 : 70u << 10);
  }
  EXPECT_EQ(snapshots_.loads(a), 2) << "a was evicted to make room for b";
  EXPECT_EQ(snapshots_.loads(b), 1);
  EXPECT_LE(server_->stats().cache.bytes, 100u << 10);
}

TEST_F(PreviewServerTest, ConditionalRequestsAreAnsweredNotModified) {
  auto first = client_->Get(Path("app.js").c_str());
  ASSERT_TRUE(first);
  const std::string etag = first->get_header_value("ETag");
  const std::string modified = first->get_header_value("Last-Modified");
  ASSERT_FALSE(etag.empty());

  const std::vector<std::pair<httplib::Headers, int>> cases = {
      {{{"If-None-Match", etag}}, 304},
      {{{"If-None-Match", "W/" + etag}}, 304},
      {{{"If-None-Match", "\"other\", " + etag}}, 304},
      {{{"If-None-Match", "*"}}, 304},
      {{{"If-None-Match", "\"other\""}}, 200},
      {{{"If-Modified-Since", modified}}, 304},
      {{{"If-Modified-Since", FormatHttpDate(kCreated + absl::Hours(1))}}, 304},
      {{{"If-Modified-Since", FormatHttpDate(kCreated - absl::Seconds(1))}}, 200},
      {{{"If-Modified-Since", "not a date"}}, 200},
      // If-None-Match decides when both are sent.
      {{{"If-None-Match", "\"other\""}, {"If-Modified-Since", modified}}, 200},
  };
  for (const auto& [headers, status] : cases) {
    auto res = client_->Get(Path("app.js").c_str(), headers);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, status) << headers.begin()->first << ": " << headers.begin()->second;
    if (status == 304) {
      EXPECT_TRUE(res->body.empty());
      EXPECT_EQ(res->get_header_value("ETag"), etag);
      EXPECT_EQ(res->get_header_value("Cache-Control"), "public, max-age=31536000, immutable");
      ExpectSecurityHeaders(res);
    } else {
      EXPECT_EQ(res->body, "document.title = 'hi';");
    }
  }
}

TEST_F(PreviewServerTest, CompressesByAcceptEncodingOncePerFile) {
  const std::string page = BigPage();
  struct Case {
    std::string accept;
    std::string encoding;
  };
  const Case cases[] = {
      {"gzip, deflate, br", "br"},      {"gzip", "gzip"},       {"x-gzip", "gzip"},
      {"br;q=0.5, gzip;q=0.8", "gzip"}, {"gzip;q=0, br", "br"}, {"br;q=0, gzip;q=0", ""},
      {"gzip;q=0.5, identity", ""},     {"deflate", ""},        {"", ""},
  };
  std::map<std::string, std::string> tags;
  for (const Case& c : cases) {
    httplib::Headers headers;
    if (!c.accept.empty()) headers.emplace("Accept-Encoding", c.accept);
    auto res = client_->Get(Path("big.html").c_str(), headers);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Encoding"), c.encoding) << c.accept;
    EXPECT_EQ(res->get_header_value("Vary"), "Accept-Encoding");
    EXPECT_EQ(res->get_header_value("Content-Length"), std::to_string(res->body.size()));
    ExpectFileHeaders(res);
    std::optional<std::string> decoded = c.encoding == "br" ? Unbrotli(res->body)
                                         : c.encoding == "gzip"
                                             ? Gunzip(res->body)
                                             : std::optional<std::string>(res->body);
    EXPECT_EQ(decoded, page) << c.accept;
    if (!c.encoding.empty()) {
      EXPECT_LT(res->body.size(), page.size() / 3) << c.accept;
    }
    tags[c.encoding] = res->get_header_value("ETag");
  }
  // Each coding's body has its own tag, and a revalidation with it is a 304.
  ASSERT_EQ(tags.size(), 3u);
  EXPECT_NE(tags["br"], tags["gzip"]);
  EXPECT_NE(tags["br"], tags[""]);
  auto revalidated = client_->Get(Path("big.html").c_str(),
                                  {{"Accept-Encoding", "gzip"}, {"If-None-Match", tags["gzip"]}});
  ASSERT_TRUE(revalidated);
  EXPECT_EQ(revalidated->status, 304);
  EXPECT_EQ(revalidated->get_header_value("ETag"), tags["gzip"]);

  // Small files and images go as they are, with no Vary.
  auto small = client_->Get(Path("app.js").c_str(), {{"Accept-Encoding", "br, gzip"}});
  ASSERT_TRUE(small);
  EXPECT_FALSE(small->has_header("Content-Encoding"));
  EXPECT_FALSE(small->has_header("Vary"));
}

TEST_F(PreviewServerTest, HeadAnswersWithTheHeadersOnly) {
  for (const std::string& accept : {std::string(""), std::string("br")}) {
    httplib::Headers headers;
    if (!accept.empty()) headers.emplace("Accept-Encoding", accept);
    auto get = client_->Get(Path("big.html").c_str(), headers);
    auto head = client_->Head(Path("big.html").c_str(), headers);
    ASSERT_TRUE(get);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_TRUE(head->body.empty());
    EXPECT_EQ(head->get_header_value("Content-Length"), get->get_header_value("Content-Length"))
        << accept;
    EXPECT_EQ(head->get_header_value("Content-Encoding"),
              get->get_header_value("Content-Encoding"));
    EXPECT_EQ(head->get_header_value("ETag"), get->get_header_value("ETag"));
    ExpectFileHeaders(head);
  }
  // On the wire: no body follows, so a second request on the connection is read right.
  RawConnection raw(server_->port());
  ASSERT_TRUE(
      raw.Send("HEAD " + Path("app.js") + " HTTP/1.1\r\nHost: x\r\n\r\n" + Get(Path("notes.txt"))));
  std::optional<RawResponse> head = raw.Read(/*no_body=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->Header("Content-Length"), "22");
  std::optional<RawResponse> next = raw.Read();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "plain");
  auto missing = client_->Head(Path("missing.js").c_str());
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(PreviewServerTest, SingleByteRanges) {
  struct Case {
    std::string range;
    int status;
    std::string content_range;
    std::string body;
  };
  const Case cases[] = {
      {"bytes=1-3", 206, "bytes 1-3/5", "lai"},
      {"bytes=3-", 206, "bytes 3-4/5", "in"},
      {"bytes=-2", 206, "bytes 3-4/5", "in"},
      {"bytes=0-100", 206, "bytes 0-4/5", "plain"},
      {"bytes=-100", 206, "bytes 0-4/5", "plain"},
      {"bytes=5-", 416, "bytes */5", "range not satisfiable\n"},
      {"bytes=-0", 416, "bytes */5", "range not satisfiable\n"},
      {"bytes=0-0,2-3", 200, "", "plain"},  // several: the whole file
      {"bytes=3-1", 200, "", "plain"},      // not a range
      {"lines=1-2", 200, "", "plain"},
  };
  for (const Case& c : cases) {
    auto res = client_->Get(Path("notes.txt").c_str(), {{"Range", c.range}});
    ASSERT_TRUE(res) << c.range;
    EXPECT_EQ(res->status, c.status) << c.range;
    EXPECT_EQ(res->get_header_value("Content-Range"), c.content_range) << c.range;
    EXPECT_EQ(res->body, c.body) << c.range;
    EXPECT_EQ(res->get_header_value("Content-Length"), std::to_string(c.body.size())) << c.range;
  }
  auto empty = client_->Get(Path("empty.txt").c_str(), {{"Range", "bytes=0-"}});
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 416);
  EXPECT_EQ(empty->get_header_value("Content-Range"), "bytes */0");
}

TEST_F(PreviewServerTest, RangesAreOfTheUncompressedBodyAndFollowIfRange) {
  const std::string page = BigPage();
  auto full = client_->Get(Path("big.html").c_str());
  ASSERT_TRUE(full);
  const std::string etag = full->get_header_value("ETag");
  const std::string length = std::to_string(page.size());
  // A client that accepts brotli still gets identity bytes for a range.
  auto part = client_->Get(Path("big.html").c_str(),
                           {{"Range", "bytes=100-199"}, {"Accept-Encoding", "br, gzip"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_FALSE(part->has_header("Content-Encoding"));
  EXPECT_EQ(part->get_header_value("Content-Range"), "bytes 100-199/" + length);
  EXPECT_EQ(part->body, page.substr(100, 100));
  EXPECT_EQ(part->get_header_value("ETag"), etag);

  const std::vector<std::pair<std::string, int>> if_ranges = {
      {etag, 206},
      {"W/" + etag, 200},  // weak tags never match
      {"\"stale\"", 200},
      {FormatHttpDate(kCreated), 206},
      {FormatHttpDate(kCreated + absl::Seconds(1)), 200},
  };
  for (const auto& [if_range, status] : if_ranges) {
    auto res =
        client_->Get(Path("big.html").c_str(), {{"Range", "bytes=0-9"}, {"If-Range", if_range}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, status) << if_range;
    EXPECT_EQ(res->body, status == 206 ? page.substr(0, 10) : page) << if_range;
  }
  // HEAD ignores Range.
  auto head = client_->Head(Path("big.html").c_str(), {{"Range", "bytes=0-9"}});
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->get_header_value("Content-Length"), length);
}

TEST_F(PreviewServerTest, OnlyGetAndHeadAreServed) {
  auto post = client_->Post(Path("index.html").c_str(), "x=1", "application/x-www-form-urlencoded");
  ASSERT_TRUE(post) << httplib::to_string(post.error());
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
  ExpectErrorHeaders(post);
  auto put = client_->Put(Path("index.html").c_str(), "<p>mine</p>", "text/html");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);
  auto del = client_->Delete(Path("index.html").c_str());
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 405);
  auto options = client_->Options(Path("index.html").c_str());
  ASSERT_TRUE(options);
  EXPECT_EQ(options->status, 405);
  EXPECT_EQ(snapshots_.total_loads(), 0);
  // The server is fine afterwards.
  auto get = client_->Get(Path("index.html").c_str());
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
}

TEST_F(PreviewServerTest, KeepsConnectionsAlive) {
  client_->set_keep_alive(true);
  for (const char* file : {"index.html", "app.js", "css/site.css"}) {
    auto res = client_->Get(Path(file).c_str());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_FALSE(res->has_header("Connection"));
  }
  EXPECT_EQ(server_->stats().connections_accepted, 1u);

  // Pipelined requests are answered in order on the one connection.
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.Send(Get(Path("app.js")) + Get(Path("notes.txt")) + Get(Path("missing.txt"))));
  std::optional<RawResponse> a = raw.Read(), b = raw.Read(), c = raw.Read();
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->body, "document.title = 'hi';");
  EXPECT_EQ(b->body, "plain");
  EXPECT_EQ(c->status, 404);
  // Errors keep the connection too.
  ASSERT_TRUE(raw.Send(Get(Path("index.html"))));
  std::optional<RawResponse> d = raw.Read();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status, 200);
}

TEST_F(PreviewServerTest, ClosesWhenAskedOrAtItsRequestQuota) {
  StartServer({.keep_alive_requests = 2});
  {
    RawConnection raw(server_->port());
    ASSERT_TRUE(raw.Send(Get(Path("app.js"), "Connection: close\r\n")));
    std::optional<RawResponse> res = raw.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->Header("Connection"), "close");
    EXPECT_TRUE(raw.Closed());
  }
  {
    // HTTP/1.0 closes unless it asks for keep-alive.
    RawConnection raw(server_->port());
    ASSERT_TRUE(raw.Send("GET " + Path("app.js") + " HTTP/1.0\r\n\r\n"));
    ASSERT_TRUE(raw.Read());
    EXPECT_TRUE(raw.Closed());
    RawConnection kept(server_->port());
    ASSERT_TRUE(kept.Send("GET " + Path("app.js") + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    std::optional<RawResponse> res = kept.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->Header("Connection"), "keep-alive");
  }
  {
    RawConnection raw(server_->port());
    ASSERT_TRUE(raw.Send(Get(Path("app.js")) + Get(Path("app.js")) + Get(Path("app.js"))));
    std::optional<RawResponse> first = raw.Read();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->Header("Connection"), "");
    std::optional<RawResponse> second = raw.Read();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->Header("Connection"), "close");
    EXPECT_TRUE(raw.Closed()) << "the third request is not answered";
  }
}

TEST_F(PreviewServerTest, ARequestWithABodyIsAnsweredAndItsConnectionClosed) {
  const std::string hidden = Get(Path("app.js"));
  // A GET whose body is a second request, and a refused POST whose body is one.
  for (const std::string& method : {std::string("GET"), std::string("POST")}) {
    RawConnection raw(server_->port());
    ASSERT_TRUE(raw.Send(method + " " + Path("index.html") +
                         " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                         std::to_string(hidden.size()) + "\r\n\r\n" + hidden));
    const std::string out = raw.ReadAll();
    EXPECT_EQ(Count(out, "HTTP/1.1 "), 1u) << out;
    EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
    EXPECT_EQ(out.find("document.title"), std::string::npos) << out;
  }
  // Chunked bodies too.
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.Send("GET " + Path("index.html") +
                       " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                       absl::StrCat(absl::Hex(hidden.size())) + "\r\n" + hidden + "\r\n0\r\n\r\n"));
  const std::string out = raw.ReadAll();
  EXPECT_EQ(Count(out, "HTTP/1.1 "), 1u) << out;
  EXPECT_EQ(out.find("document.title"), std::string::npos) << out;
  // A body the client is still sending when the answer comes is read and dropped, so the
  // answer is not lost to a reset.
  RawConnection slow(server_->port());
  ASSERT_TRUE(slow.Send("POST " + Path("index.html") +
                        " HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n"));
  std::optional<RawResponse> refused = slow.Read();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 405);
  ASSERT_TRUE(slow.Send(std::string(300000, 'x')));
  slow.FinishSending();
  EXPECT_TRUE(slow.Closed());
}

TEST_F(PreviewServerTest, RefusesMalformedAndOversizedHeads) {
  struct Case {
    std::string request;
    int status;
  };
  const Case cases[] = {
      {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + std::string(20000, 'c') + "\r\n\r\n", 431},
      {[] {
         std::string r = "GET / HTTP/1.1\r\nHost: x\r\n";
         for (int i = 0; i < 150; ++i) absl::StrAppend(&r, "X-", i, ": y\r\n");
         return r + "\r\n";
       }(),
       431},
      {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
      {"GET " + Path("app.js") + " HTTP/1.1\r\n\r\n", 400},                        // no Host
      {"GET " + Path("app.js") + " HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},  // two
      {"GET " + Path("app.js") + " HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400},
      {"GET " + Path("app.js") + " HTTP/2.0\r\nHost: a\r\n\r\n", 505},
  };
  for (const Case& c : cases) {
    RawConnection raw(server_->port());
    ASSERT_TRUE(raw.Send(c.request));
    std::optional<RawResponse> res = raw.Read();
    ASSERT_TRUE(res) << c.request.substr(0, 60);
    EXPECT_EQ(res->status, c.status) << c.request.substr(0, 60);
    EXPECT_EQ(res->Header("Connection"), "close");
    EXPECT_EQ(res->Header("X-Content-Type-Options"), "nosniff");
    EXPECT_TRUE(raw.Closed());
  }
  // A head that never ends is refused once it passes the limit, without waiting for its end.
  RawConnection endless(server_->port());
  ASSERT_TRUE(endless.Send("GET / HTTP/1.1\r\nHost: x\r\n"));
  for (int i = 0; i < 40; ++i) endless.Send("X-Filler: " + std::string(1000, 'f') + "\r\n");
  std::optional<RawResponse> res = endless.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 431);
}

TEST_F(PreviewServerTest, IdleAndSlowClientsHoldNoThread) {
  StartServer({.threads = 2,
               .keep_alive_timeout = absl::Milliseconds(400),
               .read_timeout = absl::Milliseconds(400)});
  // Many more connections than threads: idle ones, and ones stuck in the middle of a head.
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 20; ++i) {
    idle.push_back(std::make_unique<RawConnection>(server_->port()));
    if (i % 2 == 0) {
      ASSERT_TRUE(idle.back()->Send("GET " + Path("app.js") + " HTTP/1.1\r\nHo"));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  auto res = client_->Get(Path("app.js").c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200));
  // And their deadlines close them.
  for (auto& c : idle) EXPECT_TRUE(c->Closed());
  EXPECT_EQ(server_->stats().connections_open, 0u);
  // A kept-alive connection too, once idle for the timeout.
  RawConnection kept(server_->port());
  ASSERT_TRUE(kept.Send(Get(Path("app.js"))));
  ASSERT_TRUE(kept.Read());
  const auto idle_start = std::chrono::steady_clock::now();
  EXPECT_TRUE(kept.Closed());
  EXPECT_GT(std::chrono::steady_clock::now() - idle_start, std::chrono::milliseconds(300));
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
      client.set_keep_alive(true);
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
  client_->set_keep_alive(true);
  ASSERT_TRUE(client_->Get(Path("index.html").c_str()));
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  server_->Stop();
  httplib::Client fresh("127.0.0.1", server_->port());
  auto res = fresh.Get(Path("index.html").c_str());
  EXPECT_FALSE(res) << "nothing listens any more";
}

// FakeDownloads: kSnapshot's archive is `pieces`, then an error when `cut` (a purge midway);
// kBroken is over the cap; any other snapshot is unknown.
struct FakeDownloads {
  std::vector<std::string> pieces = {std::string(100000, 'a'), std::string(70000, 'b'), "c"};
  bool cut = false;
  std::atomic<int> opened{0};

  DownloadOpener Opener() {
    return [this](const DownloadPath& d) -> absl::StatusOr<BodySource> {
      ++opened;
      if (d.snapshot_id == kBroken) return absl::ResourceExhaustedError("too many downloads");
      if (d.snapshot_id != kSnapshot) return absl::NotFoundError("no such snapshot");
      auto next = std::make_shared<size_t>(0);
      return [this, next]() -> absl::StatusOr<std::string> {
        if (*next == pieces.size()) return std::string();
        if (cut && *next == 1) return absl::NotFoundError("purged");
        return pieces[(*next)++];
      };
    };
  }
};

std::string DownloadPathOf(const std::string& snapshot, const std::string& name) {
  return "/download/" + snapshot + "/" + name;
}

TEST_F(PreviewServerTest, ADownloadStreamsInChunksUnderItsFileName) {
  FakeDownloads downloads;
  StartServer({.downloads = downloads.Opener()});
  httplib::Result res = client_->Get(DownloadPathOf(kSnapshot, "bakery-v2.zip"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, downloads.pieces[0] + downloads.pieces[1] + downloads.pieces[2]);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/zip");
  EXPECT_EQ(res->get_header_value("Content-Disposition"), "attachment; filename=\"bakery-v2.zip\"");
  EXPECT_EQ(res->get_header_value("Transfer-Encoding"), "chunked");
  EXPECT_EQ(res->get_header_value("Cache-Control"), "no-store");
  ExpectSecurityHeaders(res);
  httplib::Result tgz = client_->Get(DownloadPathOf(kSnapshot, "bakery-v2.tar.gz"));
  ASSERT_TRUE(tgz);
  EXPECT_EQ(tgz->get_header_value("Content-Type"), "application/gzip");
  EXPECT_EQ(client_->Head(DownloadPathOf(kSnapshot, "bakery-v2.zip"))->body, "");

  // On the wire: one chunk per piece, the last chunk, and the connection kept for the next.
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.Send(Get(DownloadPathOf(kSnapshot, "b.zip"))));
  ASSERT_TRUE(raw.Send(Get(Path("notes.txt"))));
  raw.FinishSending();
  const std::string wire = raw.ReadAll();
  EXPECT_NE(wire.find("\r\n\r\n186a0\r\naaaa"), std::string::npos) << "100000 bytes, in hex";
  EXPECT_NE(wire.find("\r\n1\r\nc\r\n0\r\n\r\nHTTP/1.1 200 OK"), std::string::npos)
      << "the last chunk, then the next response";
  EXPECT_TRUE(wire.ends_with("plain"));
}

TEST_F(PreviewServerTest, ADownloadCutShortEndsItsConnectionWithoutTheLastChunk) {
  FakeDownloads downloads;
  downloads.cut = true;
  StartServer({.downloads = downloads.Opener()});
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.Send(Get(DownloadPathOf(kSnapshot, "bakery-v2.zip"))));
  const std::string wire = raw.ReadAll();
  EXPECT_NE(wire.find(downloads.pieces[0]), std::string::npos);
  EXPECT_EQ(wire.find("\r\n0\r\n\r\n"), std::string::npos)
      << "a client must see the archive is incomplete";
  EXPECT_TRUE(raw.Closed());
}

TEST_F(PreviewServerTest, DownloadsOfUnknownSnapshotsOrPastTheCapAreRefused) {
  FakeDownloads downloads;
  StartServer({.downloads = downloads.Opener()});
  EXPECT_EQ(client_->Get(DownloadPathOf(common::NewUuid(), "a.zip"))->status, 404);
  httplib::Result busy = client_->Get(DownloadPathOf(kBroken, "a.zip"));
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
  for (const std::string& bad :
       std::vector<std::string>{DownloadPathOf(kSnapshot, "a.rar"),
                                DownloadPathOf(kSnapshot, "a%22b.zip"), "/download/x/a.zip"}) {
    EXPECT_EQ(client_->Get(bad)->status, 404) << bad;
  }
  EXPECT_EQ(downloads.opened, 2) << "a bad name never reaches the store";
  StartServer({});
  EXPECT_EQ(client_->Get(DownloadPathOf(kSnapshot, "a.zip"))->status, 404) << "no downloads here";
}

TEST(PreviewServerStartTest, RefusesBadAddressesAndBusyPorts) {
  auto loader = [](const std::string&) -> absl::StatusOr<std::shared_ptr<const PreviewSnapshot>> {
    return std::make_shared<const PreviewSnapshot>(PreviewSnapshot{.files = {{"a.txt", "x"}}});
  };
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536", "127.0.0.1:-1"}) {
    EXPECT_EQ(PreviewServer::Start(bad, loader).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(PreviewServer::Start("127.0.0.1:0", nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PreviewServer::Start("127.0.0.1:0", loader, {.threads = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto first = PreviewServer::Start("127.0.0.1:0", loader);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = PreviewServer::Start("127.0.0.1:" + std::to_string((*first)->port()), loader);
  EXPECT_FALSE(second.ok());
  auto v6 = PreviewServer::Start("[::1]:0", loader);
  if (v6.ok()) {  // machines without IPv6 cannot bind it
    httplib::Client client("::1", (*v6)->port());
    auto res = client.Get(("/" + kSnapshot + "/a.txt").c_str());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body, "x");
    // No Last-Modified when the loader does not know when the snapshot was written.
    EXPECT_FALSE(res->has_header("Last-Modified"));
  }
}

}  // namespace
}  // namespace qai::sandbox
