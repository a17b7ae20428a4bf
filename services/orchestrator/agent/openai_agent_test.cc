// The agent loop on the `openai` provider against the scripted fake endpoint: several turns of
// tool calls, streamed and whole answers, a retry and a malformed tool call, all visible as
// RunEvents, with every tool call answered in the conversation the model gets next.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "absl/time/clock.h"
#include "common/ids.h"
#include "services/orchestrator/agent/agent.h"
#include "services/orchestrator/model/openai_model.h"
#include "services/orchestrator/model/prompts.h"
#include "services/orchestrator/runs/test_sandbox.h"
#include "tests/support/fake_openai.h"

namespace qai::orchestrator {
namespace {

using nlohmann::json;
using testing::FakeOpenAi;

// ExpectPaired: every tool call of an assistant message is answered by a tool message naming it
// before the next assistant message, and no tool message answers anything else.
void ExpectPaired(const json& messages) {
  std::set<std::string> open;
  for (const json& m : messages) {
    if (m["role"] == "assistant") {
      EXPECT_TRUE(open.empty()) << "unanswered tool calls before " << m.dump();
      open.clear();
      if (m.contains("tool_calls")) {
        for (const json& c : m["tool_calls"]) open.insert(c["id"].get<std::string>());
      }
    } else if (m["role"] == "tool") {
      EXPECT_EQ(open.erase(m["tool_call_id"].get<std::string>()), 1u)
          << "a tool result for no call: " << m.dump();
    }
  }
  EXPECT_TRUE(open.empty()) << "unanswered tool calls at the end";
}

class OpenAiAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sandbox_ = std::make_unique<TestSandbox>();
    ws_ = sandbox_->workspace.get();
  }

  OpenAiOptions Options() {
    return {.base_url = fake_.base_url(),
            .model = "fake",
            .timeout = absl::Seconds(10),
            .max_retries = 2,
            .base_backoff = absl::Milliseconds(10),
            .max_backoff = absl::Seconds(1)};
  }

  AgentOutcome Run(
      OpenAiModel& model, std::function<bool()> cancelled = [] { return false; }) {
    return RunAgent(
        {.prompt = "Build a page saying hi", .max_iterations = 6}, model, *ws_, {}, cancelled,
        [this](std::vector<v1::RunEvent> events, std::optional<int>, std::vector<std::string>) {
          for (auto& e : events) events_.push_back(std::move(e));
          return absl::OkStatus();
        });
  }

  // TextOf: the model_output text of an iteration, pieced together.
  std::string TextOf(int iteration) const {
    std::string out;
    int current = 0;
    for (const auto& e : events_) {
      if (e.has_iteration_started()) current = e.iteration_started().iteration();
      if (current == iteration && e.has_model_output()) out += e.model_output().text();
    }
    return out;
  }

  FakeOpenAi fake_;
  std::unique_ptr<TestSandbox> sandbox_;
  SandboxWorkspace* ws_ = nullptr;
  std::vector<v1::RunEvent> events_;
};

TEST_F(OpenAiAgentTest, SeveralTurnsWithARetryAndAMalformedToolCall) {
  fake_.Push(
      FakeOpenAi::Streamed({"I'll write ", "the page."},
                           {{"call_1", kToolWriteFiles,
                             R"({"files":[{"path":"index.html","content":"<h1>Hi</h1>"}]})"}}));
  fake_.Push(FakeOpenAi::Error(500, "flaky", "0"));
  fake_.Push(FakeOpenAi::Json(
      "", {{"call_2", kToolTerminal, "{not json"}, {"call_3", "deleteEverything", "{}"}}));
  fake_.Push(FakeOpenAi::Streamed({"Checking."},
                                  {{"call_4", kToolTerminal, R"({"command":"cat index.html"})"}}));
  fake_.Push(FakeOpenAi::Json("Done. <task_summary>A page saying hi.</task_summary>"));
  OpenAiModel model(Options());
  AgentOutcome out = Run(model);
  ASSERT_EQ(out.kind, AgentOutcome::Kind::kSummary) << out.status;
  EXPECT_EQ(out.summary, "A page saying hi.");
  EXPECT_EQ(out.iterations, 4);
  EXPECT_EQ(out.files_written, std::set<std::string>{"index.html"});

  // The events: the streamed text, the retry where it happened, the malformed calls answered.
  EXPECT_EQ(TextOf(1), "I'll write the page.");
  EXPECT_EQ(TextOf(3), "Checking.");
  EXPECT_EQ(TextOf(4), "Done. <task_summary>A page saying hi.</task_summary>");
  std::vector<std::string> kinds;
  std::map<std::string, v1::RunEvent::ToolResult> results;
  for (const auto& e : events_) {
    if (e.has_iteration_started())
      kinds.push_back("it" + std::to_string(e.iteration_started().iteration()));
    if (e.has_retrying()) {
      kinds.push_back("retrying");
      EXPECT_EQ(e.retrying().attempt(), 1);
      EXPECT_NE(e.retrying().reason().find("HTTP 500: flaky"), std::string::npos)
          << e.retrying().reason();
    }
    if (e.has_tool_call()) kinds.push_back(e.tool_call().call_id());
    if (e.has_tool_result()) results[e.tool_result().call_id()] = e.tool_result();
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"it1", "call_1", "it2", "retrying", "call_2", "call_3",
                                             "it3", "call_4", "it4"}));
  EXPECT_EQ(results["call_1"].exit_code(), 0);
  EXPECT_EQ(results["call_2"].exit_code(), 1);
  EXPECT_EQ(results["call_2"].output(), "error: the arguments are not a JSON object");
  EXPECT_EQ(results["call_3"].exit_code(), 1);
  EXPECT_EQ(results["call_3"].output(), "error: unknown tool deleteEverything");
  EXPECT_EQ(results["call_4"].output(), "<h1>Hi</h1>");

  // What the model got: each turn's calls answered before it was asked again, the malformed
  // call kept as it was written, with its error as the result.
  const std::vector<FakeOpenAi::Request> requests = fake_.requests();
  ASSERT_EQ(requests.size(), 5u);
  for (const auto& r : requests) ExpectPaired(r.json["messages"]);
  const json& fourth = requests[3].json["messages"];
  ASSERT_GE(fourth.size(), 3u);
  const json& malformed = fourth[fourth.size() - 3];
  EXPECT_EQ(malformed["tool_calls"][0]["function"]["arguments"], "{not json");
  EXPECT_EQ(fourth[fourth.size() - 2],
            json({{"role", "tool"},
                  {"content", "error: the arguments are not a JSON object"},
                  {"tool_call_id", "call_2"}}));
  EXPECT_EQ(fourth.back()["tool_call_id"], "call_3");
  EXPECT_EQ(requests[4].json["messages"].back()["content"], "<h1>Hi</h1>");
}

TEST_F(OpenAiAgentTest, AModelThatStaysDownStopsTheAttemptWithARetryableError) {
  fake_.SetFallback([](const FakeOpenAi::Request&) { return FakeOpenAi::Error(500, "down", "0"); });
  OpenAiModel model(Options());
  AgentOutcome out = Run(model);
  EXPECT_EQ(out.kind, AgentOutcome::Kind::kStopped);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnavailable) << out.status;
  int retries = 0;
  for (const auto& e : events_) retries += e.has_retrying();
  EXPECT_EQ(retries, 2);
  EXPECT_EQ(fake_.calls(), 3u);
}

TEST_F(OpenAiAgentTest, ACancelDuringAModelCallCancelsTheRun) {
  FakeOpenAi::Reply slow = FakeOpenAi::Json("too late");
  slow.delay = absl::Seconds(30);
  fake_.Push(slow);
  OpenAiModel model(Options());
  const absl::Time cancel_at = absl::Now() + absl::Milliseconds(200);
  AgentOutcome out = Run(model, [&] { return absl::Now() >= cancel_at; });
  EXPECT_EQ(out.kind, AgentOutcome::Kind::kCancelled) << out.status;
  EXPECT_LT(absl::Now() - cancel_at, absl::Seconds(3));
}

}  // namespace
}  // namespace qai::orchestrator
