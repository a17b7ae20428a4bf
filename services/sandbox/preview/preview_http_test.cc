#include "services/sandbox/preview/preview_http.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/ascii.h"

namespace qai::sandbox {
namespace {

HeadParse Parse(std::string_view in, RequestHead& head, const HeadLimits& limits = {}) {
  return ParseRequestHead(in, limits, head);
}

TEST(PreviewHttpTest, ParsesARequestHeadAndLeavesThePipelinedRest) {
  const std::string in =
      "GET /a/b?c=1 HTTP/1.1\r\nHost: x\r\nAccept-Encoding:  gzip, br \r\nX-Empty:\r\n\r\nGET "
      "/next HTTP/1.1\r\n";
  RequestHead head;
  ASSERT_EQ(Parse(in, head), HeadParse::kComplete);
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.target, "/a/b?c=1");
  EXPECT_EQ(head.minor_version, 1);
  EXPECT_EQ(head.Field("accept-encoding"), "gzip, br");
  EXPECT_EQ(head.Field("X-EMPTY"), "");
  EXPECT_EQ(head.Field("Range"), std::nullopt);
  EXPECT_EQ(head.FieldCount("host"), 1u);
  EXPECT_EQ(in.substr(head.length), "GET /next HTTP/1.1\r\n");

  // Bare LF line ends, a leading empty line, HTTP/1.0.
  ASSERT_EQ(Parse("\r\nHEAD / HTTP/1.0\nHost: x\n\n", head), HeadParse::kComplete);
  EXPECT_EQ(head.method, "HEAD");
  EXPECT_EQ(head.minor_version, 0);
}

TEST(PreviewHttpTest, AnIncompleteHeadAsksForMore) {
  RequestHead head;
  for (std::string_view in : {"", "GE", "GET / HTTP/1.1", "GET / HTTP/1.1\r\n",
                              "GET / HTTP/1.1\r\nHost: x\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r"}) {
    EXPECT_EQ(Parse(in, head), HeadParse::kIncomplete) << in;
  }
}

TEST(PreviewHttpTest, RefusesMalformedHeads) {
  RequestHead head;
  const std::string_view bad[] = {
      "GET /\r\n\r\n",               // no version
      "GET  / HTTP/1.1\r\n\r\n",     // two spaces
      "G(T / HTTP/1.1\r\n\r\n",      // not a token
      "GET / HTTP/1.1 \r\n\r\n",     // trailing space
      "GET /a\rb HTTP/1.1\r\n\r\n",  // bare CR in the target
      "GET / FTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost x\r\n\r\n",              // no colon
      "GET / HTTP/1.1\r\nHost : x\r\n\r\n",            // space before the colon
      "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  // obsolete folding
      "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",           // control character
  };
  for (std::string_view in : bad) EXPECT_EQ(Parse(in, head), HeadParse::kBadRequest) << in;
  EXPECT_EQ(Parse("GET / HTTP/2.0\r\n\r\n", head), HeadParse::kVersionNotSupported);
  EXPECT_EQ(HeadParseStatus(HeadParse::kVersionNotSupported), 505);
  EXPECT_EQ(HeadParseStatus(HeadParse::kBadRequest), 400);
}

TEST(PreviewHttpTest, BoundsTheRequestLineTheHeadAndTheFieldCount) {
  const HeadLimits limits{.max_request_line = 64, .max_head = 256, .max_fields = 3};
  RequestHead head;
  // Too long a request line: refused before its end arrives, and when it has.
  const std::string long_target = "GET /" + std::string(100, 'a');
  EXPECT_EQ(Parse(long_target, head, limits), HeadParse::kUriTooLong);
  EXPECT_EQ(Parse(long_target + " HTTP/1.1\r\n\r\n", head, limits), HeadParse::kUriTooLong);
  EXPECT_EQ(HeadParseStatus(HeadParse::kUriTooLong), 414);
  // Too large a head, also before its end arrives.
  const std::string big = "GET / HTTP/1.1\r\nX: " + std::string(300, 'b');
  EXPECT_EQ(Parse(big, head, limits), HeadParse::kFieldsTooLarge);
  EXPECT_EQ(Parse(big + "\r\n\r\n", head, limits), HeadParse::kFieldsTooLarge);
  EXPECT_EQ(HeadParseStatus(HeadParse::kFieldsTooLarge), 431);
  // Too many fields.
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", head, limits),
            HeadParse::kComplete);
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", head, limits),
            HeadParse::kFieldsTooLarge);
}

TEST(PreviewHttpTest, DecodesTargetPaths) {
  EXPECT_EQ(DecodeTargetPath("/a%20b.html?x=%zz#f"), "/a b.html");
  EXPECT_EQ(DecodeTargetPath("/%2e%2E/x"), "/../x");
  EXPECT_EQ(DecodeTargetPath("http://host:8080/a/b?q"), "/a/b");
  EXPECT_EQ(DecodeTargetPath("HTTPS://host"), "/");
  EXPECT_EQ(DecodeTargetPath("*"), std::nullopt);
  EXPECT_EQ(DecodeTargetPath("a/b"), std::nullopt);
  EXPECT_EQ(DecodeTargetPath("/a%2"), std::nullopt);
  EXPECT_EQ(DecodeTargetPath("/a%zz"), std::nullopt);
}

TEST(PreviewHttpTest, SnapshotPathsStayInsideTheirSnapshot) {
  const std::string id = "3F2504E0-4F89-11D3-9A0C-0305E82C3301";
  std::optional<SnapshotPath> p = ParseSnapshotPath("/" + id + "/css/site.css");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->snapshot_id, "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
  EXPECT_EQ(p->file, "css/site.css");
  EXPECT_EQ(ParseSnapshotPath("/" + id + "/")->file, "index.html");
  EXPECT_EQ(ParseSnapshotPath("/" + id + "/docs/")->file, "docs/index.html");
  for (const std::string& bad : {"/" + id, std::string("/x/index.html"), "/" + id + "/../a",
                                 "/" + id + "/a//b", "/" + id + "/./a", "/" + id + "//etc/passwd",
                                 "/" + id + "/a\\b", "/" + id + "/a\nb", "/" + id + "/\xff.html"}) {
    EXPECT_EQ(ParseSnapshotPath(bad), std::nullopt) << bad;
  }
}

TEST(PreviewHttpTest, ConnectionTokens) {
  EXPECT_TRUE(HasToken("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(HasToken("Close", "close"));
  EXPECT_FALSE(HasToken("closed", "close"));
}

TEST(PreviewHttpTest, SingleByteRanges) {
  using K = ByteRangeRequest;
  auto check = [](std::string_view value, uint64_t length, K::Kind kind, uint64_t first = 0,
                  uint64_t last = 0) {
    const ByteRangeRequest r = ParseByteRange(value, length);
    EXPECT_EQ(r.kind, kind) << value;
    if (kind == K::kSatisfiable) {
      EXPECT_EQ(r.first, first) << value;
      EXPECT_EQ(r.last, last) << value;
    }
  };
  check("bytes=0-4", 10, K::kSatisfiable, 0, 4);
  check("bytes=5-", 10, K::kSatisfiable, 5, 9);
  check("bytes=-3", 10, K::kSatisfiable, 7, 9);
  check("bytes=-30", 10, K::kSatisfiable, 0, 9);    // more than there is: all of it
  check("bytes=8-100", 10, K::kSatisfiable, 8, 9);  // past the end: to the end
  check("Bytes = 2-3", 10, K::kSatisfiable, 2, 3);
  check("bytes=2-3,", 10, K::kSatisfiable, 2, 3);  // an empty list member
  check("bytes=9-9", 10, K::kSatisfiable, 9, 9);
  check("bytes=0-99999999999999999999999", 10, K::kSatisfiable, 0, 9);
  check("bytes=10-", 10, K::kUnsatisfiable);
  check("bytes=10-20", 10, K::kUnsatisfiable);
  check("bytes=-0", 10, K::kUnsatisfiable);
  check("bytes=0-", 0, K::kUnsatisfiable);
  check("bytes=-5", 0, K::kUnsatisfiable);
  check("bytes=99999999999999999999999-", 10, K::kUnsatisfiable);
  // Ignored: another unit, bad syntax, a backwards range, several ranges.
  for (std::string_view ignored : {"", "items=0-1", "bytes=", "bytes=a-b", "bytes=1", "bytes=5-1",
                                   "bytes=-", "bytes=0-1,3-4", "bytes=+1-2", "bytes=1-2-3"}) {
    check(ignored, 10, K::kIgnore);
  }
  EXPECT_EQ(ContentRange(2, 5, 10), "bytes 2-5/10");
}

TEST(PreviewHttpTest, IfNoneMatchUsesTheWeakComparison) {
  const std::string etag = "\"abc\"";
  EXPECT_TRUE(IfNoneMatchMatches("\"abc\"", etag));
  EXPECT_TRUE(IfNoneMatchMatches("W/\"abc\"", etag));
  EXPECT_TRUE(IfNoneMatchMatches("\"x\", W/\"y\" ,\"abc\"", etag));
  EXPECT_TRUE(IfNoneMatchMatches(" * ", etag));
  EXPECT_FALSE(IfNoneMatchMatches("\"abcd\"", etag));
  EXPECT_FALSE(IfNoneMatchMatches("abc", etag));
  EXPECT_FALSE(IfNoneMatchMatches("\"x\" \"abc\"", etag));  // not a list
  EXPECT_FALSE(IfNoneMatchMatches("\"abc", etag));
  EXPECT_FALSE(IfNoneMatchMatches("", etag));
}

TEST(PreviewHttpTest, IfRangeNeedsAStrongMatch) {
  const absl::Time modified = absl::FromUnixSeconds(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_TRUE(IfRangeMatches("\"abc\"", "\"abc\"", modified));
  EXPECT_FALSE(IfRangeMatches("W/\"abc\"", "\"abc\"", modified));
  EXPECT_FALSE(IfRangeMatches("\"abd\"", "\"abc\"", modified));
  EXPECT_TRUE(IfRangeMatches("Sun, 06 Nov 1994 08:49:37 GMT", "\"abc\"", modified));
  EXPECT_FALSE(IfRangeMatches("Sun, 06 Nov 1994 08:49:38 GMT", "\"abc\"", modified));
  EXPECT_FALSE(IfRangeMatches("Sun, 06 Nov 1994 08:49:37 GMT", "\"abc\"", std::nullopt));
  EXPECT_FALSE(IfRangeMatches("yesterday", "\"abc\"", modified));
}

TEST(PreviewHttpTest, AcceptEncodingWeights) {
  auto weights = [](std::optional<std::string_view> v) {
    const CodingWeights w = ParseAcceptEncoding(v);
    return std::vector<int>{w.brotli, w.gzip, w.identity};
  };
  EXPECT_EQ(weights(std::nullopt), (std::vector<int>{0, 0, 1}));
  EXPECT_EQ(weights(""), (std::vector<int>{0, 0, 1}));
  EXPECT_EQ(weights("gzip, deflate, br"), (std::vector<int>{1000, 1000, 1}));
  EXPECT_EQ(weights("br;q=0.5, gzip;q=0.8"), (std::vector<int>{500, 800, 1}));
  EXPECT_EQ(weights("BR;Q=1.0, X-GZIP"), (std::vector<int>{1000, 1000, 1}));
  EXPECT_EQ(weights("br;q=0, gzip"), (std::vector<int>{0, 1000, 1}));
  EXPECT_EQ(weights("*"), (std::vector<int>{1000, 1000, 1000}));
  EXPECT_EQ(weights("*;q=0.2, br;q=0"), (std::vector<int>{0, 200, 200}));
  EXPECT_EQ(weights("gzip;q=0.3, identity"), (std::vector<int>{0, 300, 1000}));
  EXPECT_EQ(weights("identity;q=0, *;q=0"), (std::vector<int>{0, 0, 0}));
  // Members with a qvalue that is not one say nothing.
  EXPECT_EQ(weights("br;q=2, gzip;q=0.0001, gzip;q=abc"), (std::vector<int>{0, 0, 1}));
}

TEST(PreviewHttpTest, HttpDates) {
  const absl::Time t = absl::FromUnixSeconds(784111777);
  EXPECT_EQ(FormatHttpDate(t), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), t);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), t);
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994"), t);
  EXPECT_EQ(ParseHttpDate("06 Nov 1994"), std::nullopt);
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT trailing"), std::nullopt);
  EXPECT_EQ(ParseHttpDate(""), std::nullopt);
}

TEST(PreviewHttpTest, ADownloadPathNamesASnapshotAndAnArchive) {
  const std::string id = "0B7C9A54-2F43-4F0E-9C55-1B2F1A9E8D10";
  std::optional<DownloadPath> zip = ParseDownloadPath("/download/" + id + "/bakery-v3.zip");
  ASSERT_TRUE(zip);
  EXPECT_EQ(zip->snapshot_id, absl::AsciiStrToLower(id));
  EXPECT_EQ(zip->file_name, "bakery-v3.zip");
  EXPECT_EQ(zip->folder, "bakery-v3");
  EXPECT_EQ(zip->format, ArchiveFormat::kZip);
  std::optional<DownloadPath> tgz = ParseDownloadPath("/download/" + id + "/a.b-v1.tar.gz");
  ASSERT_TRUE(tgz);
  EXPECT_EQ(tgz->folder, "a.b-v1");
  EXPECT_EQ(tgz->format, ArchiveFormat::kTarGz);
  for (const std::string& bad : std::vector<std::string>{
           "/download/" + id + "/x.rar", "/download/" + id + "/.zip", "/download/" + id + "/..zip",
           "/download/" + id + "/a/b.zip", "/download/" + id + "/a b.zip",
           "/download/" + id + "/a\"b.zip", "/download/not-a-uuid/a.zip", "/" + id + "/a.zip",
           "/download/" + id + "/" + std::string(200, 'a') + ".zip"}) {
    EXPECT_FALSE(ParseDownloadPath(bad)) << bad;
  }
}

}  // namespace
}  // namespace qai::sandbox
