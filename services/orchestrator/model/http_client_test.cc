#include "services/orchestrator/model/http_client.h"

#include <gtest/gtest.h>

#include "absl/time/clock.h"

namespace qai::orchestrator {
namespace {

HttpHead With(std::map<std::string, std::string> headers) {
  return HttpHead{.status = 429, .headers = std::move(headers)};
}

TEST(RetryAfterTest, SecondsDatesAndMilliseconds) {
  const absl::Time now = absl::FromUnixSeconds(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(RetryAfter(With({{"retry-after", "3"}}), now), absl::Seconds(3));
  EXPECT_EQ(RetryAfter(With({{"retry-after", "1.5"}}), now), absl::Milliseconds(1500));
  EXPECT_EQ(RetryAfter(With({{"retry-after", "Sun, 06 Nov 1994 08:49:57 GMT"}}), now),
            absl::Seconds(20));
  // A date in the past means now.
  EXPECT_EQ(RetryAfter(With({{"retry-after", "Sun, 06 Nov 1994 08:00:00 GMT"}}), now),
            absl::ZeroDuration());
  // OpenAI's finer header wins.
  EXPECT_EQ(RetryAfter(With({{"retry-after", "1"}, {"retry-after-ms", "250"}}), now),
            absl::Milliseconds(250));
  EXPECT_EQ(RetryAfter(With({}), now), std::nullopt);
  EXPECT_EQ(RetryAfter(With({{"retry-after", "soon"}}), now), std::nullopt);
  EXPECT_EQ(RetryAfter(With({{"retry-after", "-5"}}), now), std::nullopt);
}

TEST(HttpPostTest, TransportFaultsNameNoHost) {
  // A port nothing listens on (port 1 needs root to listen, and nobody does here).
  auto refused = HttpPost(
      {.url = "http://127.0.0.1:1/v1/chat/completions", .timeout = absl::Seconds(5)},
      [](const HttpHead&, std::string_view) { return true; }, [] { return false; });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_EQ(refused.status().message().find("127.0.0.1"), absl::string_view::npos)
      << refused.status();

  auto bad_url = HttpPost(
      {.url = "ftp://example.invalid/x"}, [](const HttpHead&, std::string_view) { return true; },
      [] { return false; });
  EXPECT_EQ(bad_url.status().code(), absl::StatusCode::kInvalidArgument) << bad_url.status();
}

}  // namespace
}  // namespace qai::orchestrator
