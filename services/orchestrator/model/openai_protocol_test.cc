#include "services/orchestrator/model/openai_protocol.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "services/orchestrator/model/prompts.h"

namespace qai::orchestrator {
namespace {

using nlohmann::json;

// Stream: server-sent events from chunks, each "data: <chunk>\n\n".
std::string Stream(const std::vector<std::string>& chunks, bool done = true) {
  std::string out;
  for (const std::string& c : chunks) out += "data: " + c + "\n\n";
  if (done) out += "data: [DONE]\n\n";
  return out;
}

TEST(ChatRequestBodyTest, CarriesTheConversationToolsAndStreamingOptions) {
  std::vector<ChatMessage> conversation = {
      {.role = ChatMessage::Role::kSystem, .content = "be brief"},
      {.role = ChatMessage::Role::kUser, .content = "hi \xff"},  // not UTF-8: replaced, not thrown
      {.role = ChatMessage::Role::kAssistant,
       .tool_calls = {{.id = "call_1",
                       .name = "terminal",
                       .arguments_json = R"({"command":"ls"})"}}},
      {.role = ChatMessage::Role::kTool, .content = "index.html", .tool_call_id = "call_1"},
      {.role = ChatMessage::Role::kAssistant, .content = "done"},
  };
  json body = json::parse(ChatRequestBody("m1", conversation, AgentTools(), /*stream=*/true));
  EXPECT_EQ(body["model"], "m1");
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  ASSERT_EQ(body["messages"].size(), 5u);
  EXPECT_EQ(body["messages"][0], json({{"role", "system"}, {"content", "be brief"}}));
  EXPECT_EQ(body["messages"][1]["role"], "user");
  const json& call = body["messages"][2];
  EXPECT_TRUE(call["content"].is_null());
  EXPECT_EQ(call["tool_calls"][0],
            json({{"id", "call_1"},
                  {"type", "function"},
                  {"function", {{"name", "terminal"}, {"arguments", R"({"command":"ls"})"}}}}));
  EXPECT_EQ(body["messages"][3],
            json({{"role", "tool"}, {"content", "index.html"}, {"tool_call_id", "call_1"}}));
  EXPECT_EQ(body["messages"][4], json({{"role", "assistant"}, {"content", "done"}}));
  ASSERT_EQ(body["tools"].size(), 3u);
  EXPECT_EQ(body["tools"][0]["type"], "function");
  EXPECT_EQ(body["tools"][0]["function"]["name"], kToolTerminal);
  EXPECT_EQ(body["tools"][0]["function"]["parameters"]["required"], json::array({"command"}));

  json plain = json::parse(ChatRequestBody("m1", {conversation[0]}, {}, /*stream=*/false));
  EXPECT_EQ(plain["stream"], false);
  EXPECT_FALSE(plain.contains("stream_options"));
  EXPECT_FALSE(plain.contains("tools"));
}

TEST(ParseChatCompletionTest, ReadsTextToolCallsAndUsage) {
  auto reply =
      ParseChatCompletion(R"({"choices":[{"index":0,"message":{"role":"assistant","content":"ok",
      "tool_calls":[{"id":"c1","type":"function","function":{"name":"terminal","arguments":"{\"command\":\"ls\"}"}},
                    {"type":"function","function":{"name":"readFiles","arguments":{"files":["a"]}}}]},
      "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}})");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text, "ok");
  ASSERT_EQ(reply->tool_calls.size(), 2u);
  EXPECT_EQ(reply->tool_calls[0].id, "c1");
  EXPECT_EQ(reply->tool_calls[0].arguments_json, R"({"command":"ls"})");
  // No id: one is made up, since the result must name its call. Arguments sent as an object
  // come back as its JSON text.
  EXPECT_TRUE(reply->tool_calls[1].id.starts_with("call_"));
  EXPECT_EQ(reply->tool_calls[1].name, "readFiles");
  EXPECT_EQ(json::parse(reply->tool_calls[1].arguments_json), json({{"files", {"a"}}}));
  EXPECT_EQ(reply->usage.prompt_tokens, 12);
  EXPECT_EQ(reply->usage.completion_tokens, 7);

  auto null_content =
      ParseChatCompletion(R"({"choices":[{"message":{"role":"assistant","content":null}}]})");
  ASSERT_TRUE(null_content.ok());
  EXPECT_EQ(null_content->text, "");
  EXPECT_TRUE(null_content->usage.empty());
  auto parts = ParseChatCompletion(
      R"({"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]})");
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->text, "ab");
}

TEST(ParseChatCompletionTest, MalformedAnswersAreClearErrors) {
  auto not_json = ParseChatCompletion("<html>Bad gateway</html>");
  EXPECT_EQ(not_json.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(not_json.status().message().find("not JSON"), absl::string_view::npos)
      << not_json.status();
  EXPECT_EQ(ParseChatCompletion(R"({"choices":[]})").status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ParseChatCompletion(R"({"choices":[{"text":"legacy"}]})").status().code(),
            absl::StatusCode::kInternal);
  auto error = ParseChatCompletion(R"({"error":{"message":"model overloaded"}})");
  EXPECT_EQ(error.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(error.status().message().find("model overloaded"), absl::string_view::npos);
}

TEST(ChatStreamParserTest, AccumulatesDeltasAndToolCallsFedAByteAtATime) {
  const std::string stream =
      ": keep-alive\r\n\r\n" +
      Stream(
          {R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})",
           R"({"choices":[{"index":0,"delta":{"content":"Hel"}}]})",
           R"({"choices":[{"index":0,"delta":{"content":"lo ☕"}}]})",
           R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"terminal","arguments":""}}]}}]})",
           R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c2","function":{"name":"readFiles","arguments":"{\"fi"}}]}}]})",
           R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"command\":"}}]}}]})",
           R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"ls\"}"}}]}}]})",
           R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"les\":[]}"}}]}}]})",
           R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})",
           R"({"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":9,"total_tokens":39}})"});
  ChatStreamParser parser;
  std::string text;
  for (char c : stream) ASSERT_TRUE(parser.Feed(std::string_view(&c, 1), &text).ok());
  EXPECT_EQ(text, "Hello ☕");
  auto reply = parser.Finish();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text, "Hello ☕");
  ASSERT_EQ(reply->tool_calls.size(), 2u);
  EXPECT_EQ(reply->tool_calls[0].id, "c1");
  EXPECT_EQ(reply->tool_calls[0].name, "terminal");
  EXPECT_EQ(reply->tool_calls[0].arguments_json, R"({"command":"ls"})");
  EXPECT_EQ(reply->tool_calls[1].id, "c2");
  EXPECT_EQ(reply->tool_calls[1].arguments_json, R"({"files":[]})");
  EXPECT_EQ(reply->usage.prompt_tokens, 30);
  EXPECT_EQ(reply->usage.completion_tokens, 9);
}

TEST(ChatStreamParserTest, TextArrivesPerFeed) {
  ChatStreamParser parser;
  std::string first, second;
  ASSERT_TRUE(
      parser
          .Feed(Stream({R"({"choices":[{"delta":{"content":"a"}}]})"}, false) + "data: {\"choi",
                &first)
          .ok());
  EXPECT_EQ(first, "a");
  ASSERT_TRUE(
      parser.Feed("ces\":[{\"delta\":{\"content\":\"b\"}}]}\n\ndata: [DONE]\n\n", &second).ok());
  EXPECT_EQ(second, "b");
  auto reply = parser.Finish();
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->text, "ab");
  EXPECT_TRUE(reply->tool_calls.empty());
}

TEST(ChatStreamParserTest, AStreamCutShortIsUnavailable) {
  ChatStreamParser parser;
  std::string text;
  ASSERT_TRUE(
      parser
          .Feed(Stream({R"({"choices":[{"delta":{"content":"par"}}]})"}, false) + "data: {\"cho",
                &text)
          .ok());
  auto reply = parser.Finish();
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(reply.status().message().find("cut short"), absl::string_view::npos);

  // A server that closes after the finish_reason without [DONE] has said everything.
  ChatStreamParser no_done;
  ASSERT_TRUE(
      no_done
          .Feed(
              Stream({R"({"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]})"}, false),
              &text)
          .ok());
  EXPECT_TRUE(no_done.Finish().ok());

  // ... even when its last event lacks the blank line: Finish reads it.
  ChatStreamParser unterminated;
  text.clear();
  ASSERT_TRUE(
      unterminated
          .Feed(R"(data: {"choices":[{"delta":{"content":"end"},"finish_reason":"stop"}]})", &text)
          .ok());
  EXPECT_EQ(text, "");
  auto last = unterminated.Finish();
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->text, "end");
}

// A tool call whose arguments are an object nested 100,000 deep once took the orchestrator
// down (the stack overflowed re-serialising them): now a clear error, whichever way it comes.
TEST(ParseChatCompletionTest, ArgumentsNestedTooDeepAreAClearErrorNotACrash) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string call =
      R"({"id":"c1","type":"function","function":{"name":"terminal","arguments":{"x":)" + deep +
      "}}}";
  auto whole = ParseChatCompletion(R"({"choices":[{"message":{"role":"assistant","tool_calls":[)" +
                                   call + "]}}]}");
  EXPECT_EQ(whole.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(whole.status().message().find("nested deeper than 100 levels"), absl::string_view::npos)
      << whole.status();
  ChatStreamParser streamed;
  std::string text;
  absl::Status s = streamed.Feed(
      Stream(
          {R"({"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"terminal","arguments":)" +
           deep + "}}]}}]}"},
          false),
      &text);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("nested deeper"), absl::string_view::npos) << s;
}

TEST(ChatStreamParserTest, BadEventsAndReportedErrors) {
  ChatStreamParser bad;
  std::string text;
  absl::Status s = bad.Feed("data: {not json\n\n", &text);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("not JSON"), absl::string_view::npos);

  ChatStreamParser error;
  s = error.Feed(Stream({R"({"error":{"message":"upstream died"}})"}, false), &text);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("upstream died"), absl::string_view::npos);
}

// FeedUntilRefused: feeds `piece` again and again; the status that ends it and the bytes fed.
std::pair<absl::Status, size_t> FeedUntilRefused(ChatStreamParser& parser, const std::string& piece,
                                                 size_t give_up_after) {
  std::string text;
  size_t fed = 0;
  for (absl::Status s; fed < give_up_after;) {
    s = parser.Feed(piece, &text);
    fed += piece.size();
    if (!s.ok()) return {s, fed};
  }
  return {absl::OkStatus(), fed};
}

// An endless line, or an endless event of many lines, once grew the orchestrator by hundreds
// of megabytes: what the parser holds is now one event of at most kMaxEventBytes.
TEST(ChatStreamParserTest, AnEndlessLineOrEventIsRefusedPastTheEventCap) {
  ChatStreamParser line;
  auto [s, fed] = FeedUntilRefused(line, std::string(64 << 10, 'x'), 4 * kMaxEventBytes);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("too large: an event of over 4 MiB"), absl::string_view::npos) << s;
  EXPECT_LE(fed, kMaxEventBytes + (64 << 10));

  ChatStreamParser event;
  std::tie(s, fed) =
      FeedUntilRefused(event, "data: " + std::string(1000, 'y') + "\n", 4 * kMaxEventBytes);
  EXPECT_NE(s.message().find("an event of over 4 MiB"), absl::string_view::npos) << s;
  EXPECT_LE(fed, kMaxEventBytes + kMaxEventBytes / 100);  // each line's "data: " is not held

  // Keep-alive comments are not kept, however many come.
  ChatStreamParser comments;
  std::tie(s, fed) = FeedUntilRefused(comments, ": keep-alive\n\n", 2 * kMaxEventBytes);
  EXPECT_TRUE(s.ok()) << s;
}

// Many events, each small, add up to an answer: its text and the calls' arguments together stay
// under kMaxAnswerBytes.
TEST(ChatStreamParserTest, AnAnswerPastTheCapIsRefused) {
  const std::string piece(1 << 20, 'a');
  ChatStreamParser text;
  auto [s, fed] = FeedUntilRefused(
      text, Stream({R"({"choices":[{"delta":{"content":")" + piece + "\"}}]}"}, false),
      2 * kMaxAnswerBytes);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("too large: over 32 MiB"), absl::string_view::npos) << s;
  EXPECT_LE(fed, kMaxAnswerBytes + 2 * piece.size());

  ChatStreamParser arguments;
  std::tie(s, fed) = FeedUntilRefused(
      arguments,
      Stream({R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":")" +
              piece + "\"}}]}}]}"},
             false),
      2 * kMaxAnswerBytes);
  EXPECT_NE(s.message().find("too large: over 32 MiB"), absl::string_view::npos) << s;
  EXPECT_LE(fed, kMaxAnswerBytes + 2 * piece.size());
}

// Every new `index` once made a new call, any integer at all: an answer holds kMaxToolCalls.
TEST(ChatStreamParserTest, ToolCallsAreCappedWhateverTheirIndex) {
  ChatStreamParser parser;
  std::string text;
  absl::Status s;
  size_t calls = 0;
  for (int64_t index = INT64_MIN; s.ok() && calls <= kMaxToolCalls;
       index += int64_t{1} << 56, ++calls) {
    s = parser.Feed(
        Stream({absl::StrCat(R"({"choices":[{"delta":{"tool_calls":[{"index":)", index,
                             R"(,"function":{"name":"terminal","arguments":"{}"}}]}}]})")},
               false),
        &text);
  }
  EXPECT_EQ(calls, kMaxToolCalls + 1);
  EXPECT_NE(s.message().find("more than 128 tool calls"), absl::string_view::npos) << s;

  std::string many = R"({"choices":[{"message":{"tool_calls":[)";
  for (size_t i = 0; i <= kMaxToolCalls; ++i)
    many += std::string(i ? "," : "") + R"({"function":{"name":"terminal"}})";
  auto whole = ParseChatCompletion(many + "]}}]}");
  EXPECT_NE(whole.status().message().find("more than 128 tool calls"), absl::string_view::npos)
      << whole.status();
}

// An unnumbered call with a new id after a call numbered INT64_MAX once took the number past it:
// a signed overflow, undefined behaviour (UBSan's report, on tests/fuzz/corpus/model_sse/
// index_overflow, is how it showed).
TEST(ChatStreamParserTest, AnUnnumberedCallAfterTheLargestIndexIsMalformed) {
  ChatStreamParser parser;
  std::string text;
  absl::Status s = parser.Feed(
      Stream({R"({"choices":[{"delta":{"tool_calls":[{"index":9223372036854775807,"id":"a"}]}}]})",
              R"({"choices":[{"delta":{"tool_calls":[{"id":"b"}]}}]})"},
             false),
      &text);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("malformed: a new tool call after the largest index"),
            absl::string_view::npos)
      << s;

  // The same call again (no id, or its own) still adds to it.
  ChatStreamParser same;
  s = same.Feed(
      Stream(
          {R"({"choices":[{"delta":{"tool_calls":[{"index":9223372036854775807,"id":"a"}]}}]})",
           R"({"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{}"}}]}}]})",
           R"({"choices":[{"delta":{"tool_calls":[{"id":"a","function":{"name":"terminal"}}]}}]})"}),
      &text);
  ASSERT_TRUE(s.ok()) << s;
  auto reply = same.Finish();
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_EQ(reply->tool_calls.size(), 1u);
  EXPECT_EQ(reply->tool_calls[0].name, "terminal");
  EXPECT_EQ(reply->tool_calls[0].arguments_json, "{}");
}

TEST(ErrorMessageTest, ReadsTheShapesServersUse) {
  EXPECT_EQ(ErrorMessage(R"({"error":{"message":"Invalid model","type":"invalid_request_error"}})"),
            "Invalid model");
  EXPECT_EQ(ErrorMessage(R"({"error":"model not found"})"), "model not found");
  EXPECT_EQ(ErrorMessage(R"({"object":"error","message":"too long","code":400})"), "too long");
  EXPECT_EQ(ErrorMessage(R"({"detail":"Not Found"})"), "Not Found");
  EXPECT_EQ(ErrorMessage("  plain text\n"), "plain text");
  EXPECT_LE(ErrorMessage(std::string(10000, 'x')).size(), 500u);
}

}  // namespace
}  // namespace qai::orchestrator
