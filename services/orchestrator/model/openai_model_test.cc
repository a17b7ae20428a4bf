// OpenAiModel against the scripted fake endpoint: whole and streamed answers, retries and
// what they report, errors, timeouts and cancels.

#include "services/orchestrator/model/openai_model.h"

#include <gtest/gtest.h>

#include <atomic>

#include "absl/time/clock.h"
#include "common/status.h"
#include "services/orchestrator/model/prompts.h"
#include "tests/support/fake_openai.h"

namespace qai::orchestrator {
namespace {

using testing::FakeOpenAi;

// Recorder: what a call reported, with when.
class Recorder : public ModelObserver {
 public:
  struct Retry {
    int attempt;
    std::string reason;
    absl::Duration delay;
  };
  void OnDelta(std::string_view text) override {
    if (text.empty()) return;
    deltas.emplace_back(text);
    delta_times.push_back(absl::Now());
  }
  void OnRetry(int attempt, std::string_view reason, absl::Duration delay) override {
    retries.push_back({attempt, std::string(reason), delay});
  }
  bool Cancelled() override { return cancel_at && absl::Now() >= *cancel_at; }

  std::string Text() const {
    std::string out;
    for (const std::string& d : deltas) out += d;
    return out;
  }

  std::vector<std::string> deltas;
  std::vector<absl::Time> delta_times;
  std::vector<Retry> retries;
  std::optional<absl::Time> cancel_at;
};

const std::vector<ChatMessage> kConversation = {
    {.role = ChatMessage::Role::kSystem, .content = "sys"},
    {.role = ChatMessage::Role::kUser, .content = "Build a page"}};

class OpenAiModelTest : public ::testing::Test {
 protected:
  OpenAiOptions Options() {
    return {.base_url = fake_.base_url() + "/",  // a trailing slash is fine
            .api_key = "sk-test-0123456789",
            .model = "fake-model",
            .timeout = absl::Seconds(10),
            .max_retries = 3,
            .base_backoff = absl::Milliseconds(20),
            .max_backoff = absl::Seconds(2)};
  }
  absl::StatusOr<ModelReply> Call(OpenAiOptions options) {
    OpenAiModel model(std::move(options));
    return model.Stream(kConversation, AgentTools(), recorder_);
  }

  FakeOpenAi fake_;
  Recorder recorder_;
};

TEST_F(OpenAiModelTest, AWholeAnswerWithToolCallsAndUsage) {
  fake_.Push(FakeOpenAi::Json(
      "Reading first.", {{"call_a", kToolReadFiles, R"({"files":["index.html"]})"}}, {120, 30}));
  OpenAiOptions options = Options();
  options.stream = false;
  auto reply = Call(options);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text, "Reading first.");
  ASSERT_EQ(reply->tool_calls.size(), 1u);
  EXPECT_EQ(reply->tool_calls[0].id, "call_a");
  EXPECT_EQ(reply->tool_calls[0].name, kToolReadFiles);
  EXPECT_EQ(reply->tool_calls[0].arguments_json, R"({"files":["index.html"]})");
  EXPECT_EQ(reply->usage.prompt_tokens, 120);
  EXPECT_EQ(reply->usage.completion_tokens, 30);
  EXPECT_EQ(recorder_.Text(), "Reading first.");  // a whole answer is one delta

  ASSERT_EQ(fake_.calls(), 1u);
  const FakeOpenAi::Request request = fake_.requests()[0];
  EXPECT_EQ(request.path, "/v1/chat/completions");
  EXPECT_EQ(request.headers.at("Authorization"), "Bearer sk-test-0123456789");
  EXPECT_EQ(request.json["model"], "fake-model");
  EXPECT_EQ(request.json["stream"], false);
  EXPECT_EQ(request.json["messages"].size(), 2u);
  EXPECT_EQ(request.json["tools"].size(), 3u);
}

TEST_F(OpenAiModelTest, ForModelAsksTheSameEndpointForAnotherModel) {
  fake_.Push(FakeOpenAi::Json("first"));
  fake_.Push(FakeOpenAi::Json("second"));
  OpenAiModel configured(Options());
  EXPECT_EQ(configured.ForModel(""), nullptr) << "the configured model: this instance";
  EXPECT_EQ(configured.ForModel("fake-model"), nullptr);
  std::unique_ptr<Model> other = configured.ForModel("fake-large");
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->Complete(kConversation, AgentTools()).ok());
  ASSERT_TRUE(configured.Complete(kConversation, AgentTools()).ok());
  const std::vector<FakeOpenAi::Request> requests = fake_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].json["model"], "fake-large");
  EXPECT_EQ(requests[0].headers.at("Authorization"), "Bearer sk-test-0123456789");
  EXPECT_EQ(requests[1].json["model"], "fake-model") << "the provider itself is unchanged";
}

TEST_F(OpenAiModelTest, AStreamedAnswerArrivesInOrderAsItComes) {
  FakeOpenAi::Reply streamed = FakeOpenAi::Streamed(
      {"Let ", "me ", "write ", "it."},
      {{"call_w", kToolWriteFiles, R"({"files":[{"path":"a","content":"b"}]})"},
       {"call_t", kToolTerminal, R"({"command":"ls"})"}},
      {200, 40});
  streamed.chunk_delay = absl::Milliseconds(40);
  fake_.Push(streamed);
  const absl::Time start = absl::Now();
  auto reply = Call(Options());
  const absl::Time end = absl::Now();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(recorder_.deltas, (std::vector<std::string>{"Let ", "me ", "write ", "it."}));
  EXPECT_EQ(reply->text, "Let me write it.");
  // The first words came long before the answer was complete (11 more chunks, 40 ms apart).
  ASSERT_FALSE(recorder_.delta_times.empty());
  EXPECT_LT(recorder_.delta_times.front() - start, end - start - absl::Milliseconds(200));
  ASSERT_EQ(reply->tool_calls.size(), 2u);
  EXPECT_EQ(reply->tool_calls[0].id, "call_w");
  EXPECT_EQ(reply->tool_calls[0].arguments_json, R"({"files":[{"path":"a","content":"b"}]})");
  EXPECT_EQ(reply->tool_calls[1].name, kToolTerminal);
  EXPECT_EQ(reply->usage.prompt_tokens, 200);
  EXPECT_EQ(reply->usage.completion_tokens, 40);
  const FakeOpenAi::Request request = fake_.requests()[0];
  EXPECT_EQ(request.json["stream"], true);
  EXPECT_EQ(request.json["stream_options"]["include_usage"], true);
}

TEST_F(OpenAiModelTest, PlainJsonToAStreamedRequestIsReadToo) {
  fake_.Push(FakeOpenAi::Json("no streaming here"));
  auto reply = Call(Options());
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text, "no streaming here");
  EXPECT_EQ(recorder_.Text(), "no streaming here");
}

TEST_F(OpenAiModelTest, ServerErrorsAreRetriedWithBackoffThenRecover) {
  fake_.Push(FakeOpenAi::Error(500, "internal hiccup"));
  fake_.Push(FakeOpenAi::Error(502, "bad gateway"));
  fake_.Push(FakeOpenAi::Streamed({"fine now"}));
  auto reply = Call(Options());
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text, "fine now");
  ASSERT_EQ(recorder_.retries.size(), 2u);
  EXPECT_EQ(recorder_.retries[0].attempt, 1);
  EXPECT_EQ(recorder_.retries[1].attempt, 2);
  EXPECT_NE(recorder_.retries[0].reason.find("HTTP 500: internal hiccup"), std::string::npos)
      << recorder_.retries[0].reason;
  EXPECT_NE(recorder_.retries[1].reason.find("HTTP 502"), std::string::npos);
  // Exponential with jitter: 10..20 ms, then 20..40 ms; each wait honoured.
  EXPECT_GE(recorder_.retries[0].delay, absl::Milliseconds(10));
  EXPECT_LE(recorder_.retries[0].delay, absl::Milliseconds(20));
  EXPECT_GE(recorder_.retries[1].delay, absl::Milliseconds(20));
  EXPECT_LE(recorder_.retries[1].delay, absl::Milliseconds(40));
  const std::vector<FakeOpenAi::Request> requests = fake_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_GE(requests[1].time - requests[0].time, recorder_.retries[0].delay);
  EXPECT_GE(requests[2].time - requests[1].time, recorder_.retries[1].delay);
  EXPECT_EQ(requests[2].body, requests[0].body);  // the same request again
}

TEST_F(OpenAiModelTest, RetryAfterIsHonoured) {
  fake_.Push(FakeOpenAi::Error(429, "Rate limit reached", "1"));
  fake_.Push(FakeOpenAi::Json("ok"));
  auto reply = Call(Options());
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_EQ(recorder_.retries.size(), 1u);
  EXPECT_EQ(recorder_.retries[0].delay, absl::Seconds(1));
  EXPECT_NE(recorder_.retries[0].reason.find("HTTP 429: Rate limit reached"), std::string::npos);
  const std::vector<FakeOpenAi::Request> requests = fake_.requests();
  ASSERT_EQ(requests.size(), 2u);
  const absl::Duration waited = requests[1].time - requests[0].time;
  EXPECT_GE(waited, absl::Seconds(1));
  EXPECT_LT(waited, absl::Milliseconds(1800));
}

TEST_F(OpenAiModelTest, RetryAfterIsCapped) {
  fake_.Push(FakeOpenAi::Error(503, "maintenance", "3600"));
  fake_.Push(FakeOpenAi::Json("ok"));
  OpenAiOptions options = Options();
  options.max_backoff = absl::Milliseconds(100);
  auto reply = Call(options);
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_EQ(recorder_.retries.size(), 1u);
  EXPECT_EQ(recorder_.retries[0].delay, absl::Milliseconds(100));
}

TEST_F(OpenAiModelTest, FailsForGoodAfterTheLastRetry) {
  fake_.SetFallback(
      [](const FakeOpenAi::Request&) { return FakeOpenAi::Error(503, "still down", "0"); });
  OpenAiOptions options = Options();
  options.max_retries = 2;
  auto reply = Call(options);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(reply.status().message().find("after 3 tries"), absl::string_view::npos)
      << reply.status();
  EXPECT_NE(reply.status().message().find("HTTP 503: still down"), absl::string_view::npos)
      << reply.status();
  EXPECT_EQ(common::GetRetryDelay(reply.status()), absl::ZeroDuration());
  EXPECT_EQ(fake_.calls(), 3u);
  EXPECT_EQ(recorder_.retries.size(), 2u);
}

TEST_F(OpenAiModelTest, RateLimitsThatLastAreResourceExhausted) {
  fake_.SetFallback(
      [](const FakeOpenAi::Request&) { return FakeOpenAi::Error(429, "slow down", "0"); });
  OpenAiOptions options = Options();
  options.max_retries = 0;
  auto reply = Call(options);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kResourceExhausted) << reply.status();
  EXPECT_TRUE(common::IsRetryable(reply.status()));
  EXPECT_EQ(fake_.calls(), 1u);
}

TEST_F(OpenAiModelTest, ClientErrorsAreClearAndNotRetried) {
  struct Case {
    int status;
    absl::StatusCode code;
  };
  for (Case c :
       {Case{400, absl::StatusCode::kInvalidArgument},
        Case{401, absl::StatusCode::kUnauthenticated},
        Case{403, absl::StatusCode::kPermissionDenied}, Case{404, absl::StatusCode::kNotFound},
        Case{418, absl::StatusCode::kFailedPrecondition}}) {
    FakeOpenAi fake;
    // A server that echoes the key: the key must not reach the error.
    fake.Push(FakeOpenAi::Error(c.status, "Incorrect API key provided: sk-test-0123456789."));
    OpenAiOptions options = Options();
    options.base_url = fake.base_url();
    OpenAiModel model(options);
    Recorder recorder;
    auto reply = model.Stream(kConversation, AgentTools(), recorder);
    EXPECT_EQ(reply.status().code(), c.code) << c.status << ": " << reply.status();
    const std::string message(reply.status().message());
    EXPECT_NE(
        message.find("HTTP " + std::to_string(c.status) + ": Incorrect API key provided: ***."),
        std::string::npos)
        << message;
    EXPECT_EQ(message.find("sk-test"), std::string::npos) << message;
    EXPECT_EQ(message.find("127.0.0.1"), std::string::npos) << message;
    EXPECT_EQ(fake.calls(), 1u);
    EXPECT_TRUE(recorder.retries.empty());
  }
}

TEST_F(OpenAiModelTest, BadJsonIsAClearErrorNotARetry) {
  fake_.Push(FakeOpenAi::Raw(200, "{\"choices\": [ oops"));
  OpenAiOptions options = Options();
  options.stream = false;
  auto reply = Call(options);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(reply.status().message().find("malformed: not JSON"), absl::string_view::npos)
      << reply.status();
  EXPECT_EQ(fake_.calls(), 1u);

  // Bad JSON inside a stream, too.
  FakeOpenAi::Reply bad_event = FakeOpenAi::Streamed({"a"});
  bad_event.chunks[1] = "data: {\"choices\": [ oops\n\n";
  fake_.Push(bad_event);
  auto streamed = Call(Options());
  EXPECT_EQ(streamed.status().code(), absl::StatusCode::kInternal) << streamed.status();
  EXPECT_NE(streamed.status().message().find("not JSON"), absl::string_view::npos)
      << streamed.status();
}

// An endpoint that streams one endless event once grew the orchestrator by 550 MB before it
// gave up: the call now ends, unretried, once the event passes its cap.
TEST_F(OpenAiModelTest, AnEndlessEventEndsTheCallAtOnceAndIsNotRetried) {
  FakeOpenAi::Reply endless = FakeOpenAi::Streamed({"a"});
  endless.chunks.assign(16,
                        "data: " + std::string(1 << 20, 'x') + "\n");  // 16 MiB, never a blank line
  fake_.Push(endless);
  fake_.Push(FakeOpenAi::Streamed({"not asked"}));
  auto reply = Call(Options());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInternal) << reply.status();
  EXPECT_NE(reply.status().message().find("too large: an event of over 4 MiB"),
            absl::string_view::npos)
      << reply.status();
  EXPECT_EQ(fake_.calls(), 1u);
  EXPECT_TRUE(recorder_.retries.empty());
}

TEST_F(OpenAiModelTest, ATruncatedStreamIsRetriedAndTheRetryStartsAfresh) {
  FakeOpenAi::Reply dropped = FakeOpenAi::Streamed({"Hel", "lo"});
  dropped.drop_after = 2;  // the role chunk and "Hel", then the connection drops
  fake_.Push(dropped);
  FakeOpenAi::Reply ended = FakeOpenAi::Streamed({"Hel", "lo"});
  ended.chunks.resize(3);  // a clean end, but without finish_reason or [DONE]
  fake_.Push(ended);
  fake_.Push(FakeOpenAi::Streamed({"Hel", "lo"}));
  auto reply = Call(Options());
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text, "Hello");
  ASSERT_EQ(recorder_.retries.size(), 2u);
  EXPECT_NE(recorder_.retries[0].reason.find("cut short"), std::string::npos)
      << recorder_.retries[0].reason;
  EXPECT_NE(recorder_.retries[1].reason.find("cut short"), std::string::npos)
      << recorder_.retries[1].reason;
  EXPECT_EQ(recorder_.deltas, (std::vector<std::string>{"Hel", "Hel", "lo", "Hel", "lo"}));
}

TEST_F(OpenAiModelTest, ASlowAnswerTimesOut) {
  FakeOpenAi::Reply slow = FakeOpenAi::Json("too late");
  slow.delay = absl::Seconds(5);
  fake_.Push(slow);
  OpenAiOptions options = Options();
  options.timeout = absl::Milliseconds(300);
  options.max_retries = 0;
  const absl::Time start = absl::Now();
  auto reply = Call(options);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_NE(reply.status().message().find("within 300ms"), absl::string_view::npos)
      << reply.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(OpenAiModelTest, ASlowStreamTimesOutAndIsRetried) {
  FakeOpenAi::Reply slow = FakeOpenAi::Streamed({"a", "b", "c"});
  slow.chunk_delay = absl::Milliseconds(200);
  fake_.Push(slow);
  fake_.Push(FakeOpenAi::Streamed({"quick"}));
  OpenAiOptions options = Options();
  options.timeout = absl::Milliseconds(300);
  auto reply = Call(options);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text, "quick");
  ASSERT_EQ(recorder_.retries.size(), 1u);
  EXPECT_NE(recorder_.retries[0].reason.find("within"), std::string::npos)
      << recorder_.retries[0].reason;
}

TEST_F(OpenAiModelTest, ACancelEndsTheWaitAndTheRequest) {
  fake_.Push(FakeOpenAi::Error(429, "wait an hour", "3600"));
  OpenAiOptions options = Options();
  options.max_backoff = absl::Hours(1);
  recorder_.cancel_at = absl::Now() + absl::Milliseconds(200);
  absl::Time start = absl::Now();
  auto reply = Call(options);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kCancelled) << reply.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(recorder_.retries.size(), 1u);

  FakeOpenAi::Reply slow = FakeOpenAi::Json("too late");
  slow.delay = absl::Seconds(30);
  fake_.Push(slow);
  recorder_.cancel_at = absl::Now() + absl::Milliseconds(200);
  start = absl::Now();
  reply = Call(Options());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kCancelled) << reply.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST_F(OpenAiModelTest, CompleteWorksWithoutAnObserver) {
  fake_.Push(FakeOpenAi::Error(500, "once"));
  fake_.Push(FakeOpenAi::Streamed({"A ", "Title"}));
  OpenAiModel model(Options());
  auto reply = model.Complete({{.role = ChatMessage::Role::kSystem, .content = kTitleSystemPrompt},
                               {.role = ChatMessage::Role::kUser, .content = "Built a page"}},
                              {});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text, "A Title");
  EXPECT_FALSE(fake_.requests()[1].json.contains("tools"));
}

TEST_F(OpenAiModelTest, NoKeyNoAuthorizationHeader) {
  fake_.Push(FakeOpenAi::Json("ok"));
  OpenAiOptions options = Options();
  options.api_key.clear();
  ASSERT_TRUE(Call(options).ok());
  EXPECT_EQ(fake_.requests()[0].headers.count("Authorization"), 0u);
}

}  // namespace
}  // namespace qai::orchestrator
