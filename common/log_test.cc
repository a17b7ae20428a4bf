#include "common/log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"

namespace qai::common {
namespace {

nlohmann::json ParseLine(const std::string& line) {
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << line;
  return parsed;
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { InitLogging("log-test", LogLevel::kDebug); }
  void TearDown() override { InitLogging("qai", LogLevel::kInfo); }
};

TEST_F(LogTest, LineIsJsonWithStandardFields) {
  nlohmann::json line = ParseLine(FormatLogLine(
      LogLevel::kWarn, "slow query", {{"duration_ms", 12.5}, {"table", "projects"}, {"n", 3}}));
  ASSERT_TRUE(line.is_object());
  EXPECT_EQ(line["level"], "warn");
  EXPECT_EQ(line["service"], "log-test");
  EXPECT_EQ(line["msg"], "slow query");
  EXPECT_EQ(line["duration_ms"], 12.5);
  EXPECT_EQ(line["table"], "projects");
  EXPECT_EQ(line["n"], 3);
  ASSERT_TRUE(line["time"].is_string());
  EXPECT_TRUE(std::regex_match(line["time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")))
      << line["time"];
  EXPECT_FALSE(line.contains("request_id"));
}

TEST_F(LogTest, LevelNames) {
  EXPECT_EQ(ParseLine(FormatLogLine(LogLevel::kDebug, "m", {}))["level"], "debug");
  EXPECT_EQ(ParseLine(FormatLogLine(LogLevel::kInfo, "m", {}))["level"], "info");
  EXPECT_EQ(ParseLine(FormatLogLine(LogLevel::kWarn, "m", {}))["level"], "warn");
  EXPECT_EQ(ParseLine(FormatLogLine(LogLevel::kError, "m", {}))["level"], "error");
}

TEST_F(LogTest, ParseLogLevel) {
  EXPECT_EQ(ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("info"), LogLevel::kInfo);
  EXPECT_EQ(ParseLogLevel("warn"), LogLevel::kWarn);
  EXPECT_EQ(ParseLogLevel("error"), LogLevel::kError);
  EXPECT_EQ(ParseLogLevel("bogus"), LogLevel::kInfo);
}

TEST_F(LogTest, SpecialCharactersAreEscaped) {
  const std::string msg = "quote \" backslash \\ newline \n tab \t ctrl \x01 end";
  nlohmann::json line =
      ParseLine(FormatLogLine(LogLevel::kInfo, msg, {{"k", "}\n{\"level\":\"x\"}"}}));
  EXPECT_EQ(line["msg"], msg);
  EXPECT_EQ(line["level"], "info");
}

TEST_F(LogTest, RequestIdOnlyInsideScope) {
  EXPECT_EQ(CurrentRequestId(), "");
  EXPECT_FALSE(ParseLine(FormatLogLine(LogLevel::kInfo, "before", {})).contains("request_id"));
  {
    RequestScope scope("req-1");
    EXPECT_EQ(CurrentRequestId(), "req-1");
    EXPECT_EQ(ParseLine(FormatLogLine(LogLevel::kInfo, "inside", {}))["request_id"], "req-1");
  }
  EXPECT_EQ(CurrentRequestId(), "");
  EXPECT_FALSE(ParseLine(FormatLogLine(LogLevel::kInfo, "after", {})).contains("request_id"));
}

TEST_F(LogTest, NestedScopesRestorePreviousId) {
  RequestScope outer("outer");
  {
    RequestScope inner("inner");
    EXPECT_EQ(ParseLine(FormatLogLine(LogLevel::kInfo, "m", {}))["request_id"], "inner");
    {
      RequestScope innermost("innermost");
      EXPECT_EQ(CurrentRequestId(), "innermost");
    }
    EXPECT_EQ(CurrentRequestId(), "inner");
  }
  EXPECT_EQ(CurrentRequestId(), "outer");
  EXPECT_EQ(ParseLine(FormatLogLine(LogLevel::kInfo, "m", {}))["request_id"], "outer");
}

TEST_F(LogTest, RequestIdIsPerThread) {
  RequestScope scope("main-thread");
  std::string seen_in_other = "unset";
  std::string seen_in_other_scope;
  std::thread other([&] {
    seen_in_other = CurrentRequestId();
    RequestScope own("other-thread");
    seen_in_other_scope = CurrentRequestId();
  });
  other.join();
  EXPECT_EQ(seen_in_other, "");
  EXPECT_EQ(seen_in_other_scope, "other-thread");
  EXPECT_EQ(CurrentRequestId(), "main-thread");
}

TEST_F(LogTest, InvalidUtf8StillYieldsJson) {
  const std::string broken = "bad \xff\xfe bytes \xc3";
  std::string text = FormatLogLine(LogLevel::kError, broken, {{"field", broken}, {"ok", "fine"}});
  nlohmann::json line = ParseLine(text);
  ASSERT_TRUE(line.is_object());
  EXPECT_EQ(line["ok"], "fine");
  ASSERT_TRUE(line["field"].is_string());
  const std::string field = line["field"].get<std::string>();
  EXPECT_EQ(field.find("bad "), 0u);
  EXPECT_NE(field.find("\xef\xbf\xbd"), std::string::npos) << "expected U+FFFD replacement";
  EXPECT_NE(line["msg"].get<std::string>().find(" bytes "), std::string::npos);
}

TEST_F(LogTest, InvalidUtf8InRequestIdStillYieldsJson) {
  RequestScope scope("id-\xff");
  EXPECT_TRUE(ParseLine(FormatLogLine(LogLevel::kInfo, "m", {})).contains("request_id"));
}

TEST_F(LogTest, LogWritesOneLineAndRespectsMinLevel) {
  InitLogging("log-test", LogLevel::kWarn);
  ::testing::internal::CaptureStderr();
  Log(LogLevel::kInfo, "dropped");
  Log(LogLevel::kDebug, "dropped too");
  Log(LogLevel::kError, "kept", {{"x", 1}});
  std::string out = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  nlohmann::json line = ParseLine(out.substr(0, out.size() - 1));
  EXPECT_EQ(line["msg"], "kept");
  EXPECT_EQ(line["level"], "error");
  EXPECT_EQ(line["x"], 1);
}

TEST_F(LogTest, ConcurrentLinesDoNotInterleave) {
  ::testing::internal::CaptureStderr();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 50; ++i)
        Log(LogLevel::kInfo, std::string(200, static_cast<char>('a' + t)), {{"i", i}});
    });
  }
  for (auto& t : threads) t.join();
  std::string out = ::testing::internal::GetCapturedStderr();
  size_t lines = 0;
  for (size_t start = 0; start < out.size();) {
    size_t end = out.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    nlohmann::json line = ParseLine(out.substr(start, end - start));
    ASSERT_TRUE(line.is_object());
    ++lines;
    start = end + 1;
  }
  EXPECT_EQ(lines, 400u);
}

}  // namespace
}  // namespace qai::common
