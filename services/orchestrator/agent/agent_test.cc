#include "services/orchestrator/agent/agent.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "common/ids.h"
#include "services/orchestrator/agent/journal.h"
#include "services/orchestrator/model/builtin_model.h"
#include "services/orchestrator/model/prompts.h"
#include "services/orchestrator/runs/test_sandbox.h"

namespace qai::orchestrator {
namespace {

// ScriptedModel: replies from a script, one per call; records the conversations it saw.
class ScriptedModel : public Model {
 public:
  explicit ScriptedModel(std::vector<absl::StatusOr<ModelReply>> script)
      : script_(std::move(script)) {}
  std::string name() const override { return "scripted"; }
  absl::StatusOr<ModelReply> Complete(const std::vector<ChatMessage>& conversation,
                                      const std::vector<ToolSpec>& tools) override {
    seen_.push_back(conversation);
    if (calls_ >= script_.size()) return ModelReply{.text = "thinking"};
    return script_[calls_++];
  }
  std::vector<std::vector<ChatMessage>> seen_;

 private:
  std::vector<absl::StatusOr<ModelReply>> script_;
  size_t calls_ = 0;
};

ModelReply Call(std::string tool, std::string args, std::string id = "call_1") {
  return ModelReply{
      .tool_calls = {
          {.id = std::move(id), .name = std::move(tool), .arguments_json = std::move(args)}}};
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sandbox_ = std::make_unique<TestSandbox>();
    ws_ = sandbox_->workspace.get();
  }

  AgentOutcome Run(
      Model& model, int max_iterations = 5,
      std::function<bool()> cancelled = [] { return false; }) {
    return RunAgent({.prompt = "Build a page",
                     .history = {{.role = ChatMessage::Role::kUser, .content = "earlier"}},
                     .max_iterations = max_iterations,
                     .journal = journal_},
                    model, *ws_, {}, cancelled,
                    [this](std::vector<v1::RunEvent> events, std::optional<int> iteration,
                           std::vector<std::string> steps) {
                      // A crash after `emits_left` stored emits: this one and every later one fail.
                      if (emits_left_ == 0) return absl::FailedPreconditionError("lease lost");
                      if (emits_left_ > 0) --emits_left_;
                      if (!emit_status_.ok()) return emit_status_;
                      ++emits_;
                      for (auto& e : events) events_.push_back(std::move(e));
                      if (iteration) last_iteration_ = *iteration;
                      for (std::string& step : steps) journal_.push_back(std::move(step));
                      return absl::OkStatus();
                    });
  }

  std::unique_ptr<TestSandbox> sandbox_;
  SandboxWorkspace* ws_ = nullptr;
  std::vector<v1::RunEvent> events_;
  int last_iteration_ = 0;
  absl::Status emit_status_;
  std::vector<std::string> journal_;  // the steps stored so far (fed to the next attempt)
  int emits_left_ = -1;               // -1: no crash
  int emits_ = 0;                     // stored so far
};

// What the agent test scripts build: two files over three iterations, then a summary.
std::vector<absl::StatusOr<ModelReply>> ThreeIterations() {
  return {Call(kToolWriteFiles, R"({"files":[{"path":"index.html","content":"<h1>Hi</h1>"}]})"),
          Call(kToolTerminal,
               R"({"command":"echo 'p { color: red }' > style.css && rm -f gone.txt"})", "call_2"),
          ModelReply{.text = "Done. <task_summary>A page and its style.</task_summary>"}};
}

TEST_F(AgentTest, AResumedAttemptContinuesAfterTheLastStepWithoutAskingTheModelAgain) {
  sandbox_->Write("gone.txt", "removed by the command");
  // The whole run, undisturbed, for reference.
  {
    ScriptedModel model(ThreeIterations());
    ASSERT_EQ(Run(model).kind, AgentOutcome::Kind::kSummary);
  }
  const std::vector<v1::RunEvent> reference = events_;
  const int reference_emits = emits_;
  const size_t steps = journal_.size();
  ASSERT_EQ(steps, 3u * 3 + 2u * 2)
      << "start, model, end per iteration; call and result per tool call";

  // Crash after every possible number of stored emits, then resume from the journal.
  for (int crash_after = 1; crash_after < reference_emits; ++crash_after) {
    SCOPED_TRACE("crash after " + std::to_string(crash_after) + " emits");
    sandbox_->Reset({{"gone.txt", "removed by the command"}});
    events_.clear();
    journal_.clear();
    emits_left_ = crash_after;
    ScriptedModel first(ThreeIterations());
    ASSERT_EQ(Run(first).kind, AgentOutcome::Kind::kStopped);
    const size_t asked = first.seen_.size();

    // The machine is gone: the workspace comes back from the base state and the journal.
    absl::StatusOr<journal::Changes> changes = journal::NetChanges(journal_);
    ASSERT_TRUE(changes.ok()) << changes.status();
    changes->emplace("gone.txt",
                     "removed by the command");  // the base, unless the journal changed it
    ASSERT_TRUE(ws_->Restore("", *changes).ok());
    emits_left_ = -1;
    std::vector<absl::StatusOr<ModelReply>> script = ThreeIterations();
    // Answers the journal holds were already paid for: the second attempt gets only the rest.
    const size_t answered = std::count_if(
        journal_.begin(), journal_.end(),
        [](const std::string& s) { return s.find("\"model\"") != std::string::npos; });
    ASSERT_LE(answered, asked);
    script.erase(script.begin(), script.begin() + static_cast<long>(answered));
    ScriptedModel second(script);
    AgentOutcome outcome = Run(second);
    ASSERT_EQ(outcome.kind, AgentOutcome::Kind::kSummary) << outcome.status;
    EXPECT_EQ(outcome.summary, "A page and its style.");
    EXPECT_EQ(answered + second.seen_.size(), 3u) << "each model call made once in all";
    if (!second.seen_.empty()) {
      EXPECT_EQ(second.seen_[0].size(), 3 + 2 * answered)
          << "the journal's answers and results rejoin the conversation";
    }
    // The text of a model call cut off before its answer was journaled is streamed again when
    // the call is made again; every other event comes exactly once.
    auto without_text = [](const std::vector<v1::RunEvent>& events) {
      std::vector<v1::RunEvent::EventCase> kinds;
      for (const v1::RunEvent& e : events) {
        if (e.event_case() != v1::RunEvent::kModelOutput) kinds.push_back(e.event_case());
      }
      return kinds;
    };
    EXPECT_EQ(without_text(events_), without_text(reference)) << "no event twice, none missing";
    EXPECT_GE(events_.size(), reference.size());
    EXPECT_LE(events_.size(), reference.size() + 1) << "one reply's text at most twice";
    EXPECT_EQ(sandbox_->Read("index.html").value_or(""), "<h1>Hi</h1>");
    EXPECT_EQ(sandbox_->Read("style.css").value_or(""), "p { color: red }\n");
    EXPECT_EQ(sandbox_->Read("gone.txt"), std::nullopt) << "a command's removal is replayed too";
  }
}

TEST_F(AgentTest, RunsToolsReportsEveryStepAndEndsOnTheSummary) {
  ScriptedModel model(
      {Call(kToolWriteFiles, R"({"files":[{"path":"index.html","content":"<h1>Hi</h1>"}]})"),
       Call(kToolTerminal, R"({"command":"cat index.html"})", "call_2"),
       Call(kToolReadFiles, R"({"files":["index.html","missing.txt"]})", "call_3"),
       ModelReply{.text = "Done. <task_summary>A page saying hi.</task_summary>"}});
  AgentOutcome out = Run(model);
  ASSERT_EQ(out.kind, AgentOutcome::Kind::kSummary) << out.status;
  EXPECT_EQ(out.summary, "A page saying hi.");
  EXPECT_EQ(out.files_written, std::set<std::string>{"index.html"});
  EXPECT_EQ(out.iterations, 4);
  EXPECT_EQ(last_iteration_, 4);
  EXPECT_EQ(sandbox_->Read("index.html").value_or(""), "<h1>Hi</h1>");
  // The terminal's output went back to the model and into the events.
  bool cat_seen = false, files_changed = false, read_error = false;
  for (const auto& e : events_) {
    if (e.has_tool_result() && e.tool_result().call_id() == "call_2") {
      cat_seen = e.tool_result().output() == "<h1>Hi</h1>" && e.tool_result().exit_code() == 0;
    }
    if (e.has_tool_result() && e.tool_result().call_id() == "call_3") {
      read_error = e.tool_result().output().find("missing.txt") != std::string::npos;
    }
    files_changed =
        files_changed || (e.has_files_changed() && e.files_changed().paths(0) == "index.html");
  }
  EXPECT_TRUE(cat_seen && files_changed && read_error);
  // The conversation: system prompt, history, prompt, then the turns.
  const auto& last = model.seen_.back();
  EXPECT_EQ(last[0].content, kAgentSystemPrompt);
  EXPECT_EQ(last[1].content, "earlier");
  EXPECT_EQ(last[2].content, "Build a page");
  EXPECT_EQ(last.back().role, ChatMessage::Role::kTool);
  EXPECT_TRUE(events_.front().has_iteration_started());
  EXPECT_TRUE(events_.back().has_iteration_finished());
}

TEST_F(AgentTest, TheBuiltinsInstantRunIsOneIterationWithoutACommand) {
  BuiltinModel model;
  AgentOutcome out = RunAgent(
      {.prompt = "Build a page for a bakery [[instant]]", .max_iterations = 15}, model, *ws_, {},
      [] { return false; },
      [this](std::vector<v1::RunEvent> events, std::optional<int>, std::vector<std::string>) {
        for (auto& e : events) events_.push_back(std::move(e));
        return absl::OkStatus();
      });
  ASSERT_EQ(out.kind, AgentOutcome::Kind::kSummary) << out.status;
  EXPECT_EQ(out.iterations, 1);
  EXPECT_EQ(out.files_written, std::set<std::string>{"index.html"});
  // iteration_started, model_output, tool_call, tool_result, files_changed, iteration_finished.
  ASSERT_EQ(events_.size(), 6u);
  EXPECT_TRUE(events_[2].has_tool_call());
  EXPECT_EQ(events_[2].tool_call().tool(), kToolWriteFiles);
  for (const auto& e : events_)
    EXPECT_FALSE(e.has_tool_call() && e.tool_call().tool() == kToolTerminal);
}

TEST_F(AgentTest, BadToolCallsAreAnsweredNotFatal) {
  ScriptedModel model(
      {Call(kToolTerminal, "not json"), Call("rm_rf", "{}", "call_2"),
       Call(kToolWriteFiles, R"({"files":[{"path":"../escape","content":"x"}]})", "call_3"),
       ModelReply{.text = "<task_summary>nothing</task_summary>"}});
  AgentOutcome out = Run(model);
  ASSERT_EQ(out.kind, AgentOutcome::Kind::kSummary);
  EXPECT_TRUE(out.files_written.empty());
  int errors = 0;
  for (const auto& e : events_) errors += e.has_tool_result() && e.tool_result().exit_code() != 0;
  EXPECT_EQ(errors, 3);
}

// Arguments (a JSON string) nested 100,000 deep: the model hears they are refused.
TEST_F(AgentTest, ArgumentsNestedTooDeepAreRefusedToTheModel) {
  const std::string deep =
      R"({"command":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  ScriptedModel model(
      {Call(kToolTerminal, deep), ModelReply{.text = "<task_summary>nothing</task_summary>"}});
  AgentOutcome out = Run(model);
  ASSERT_EQ(out.kind, AgentOutcome::Kind::kSummary);
  const v1::RunEvent* result = nullptr;
  for (const auto& e : events_) {
    if (e.has_tool_result()) result = &e;
  }
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->tool_result().exit_code(), 1);
  EXPECT_NE(result->tool_result().output().find("nest deeper than 100 levels"), std::string::npos)
      << result->tool_result().output();
}

TEST_F(AgentTest, StopsAtTheIterationLimit) {
  ScriptedModel model({});
  AgentOutcome out = Run(model, 3);
  EXPECT_EQ(out.kind, AgentOutcome::Kind::kNoSummary);
  EXPECT_EQ(out.iterations, 3);
}

TEST_F(AgentTest, CancelKillsTheRunningCommand) {
  ScriptedModel model({Call(kToolTerminal, R"({"command":"sleep 30"})")});
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  const absl::Time start = absl::Now();
  AgentOutcome out = Run(model, 5, [&] { return cancel.load(); });
  canceller.join();
  EXPECT_EQ(out.kind, AgentOutcome::Kind::kCancelled);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// A command the sandbox stopped reaches the model as an error saying why, however much it
// printed (the model sees only the start of a long output).
TEST_F(AgentTest, TheModelHearsWhyTheSandboxStoppedACommand) {
  TestSandbox limited(
      {.limits = {.file_bytes = 1 << 20}, .handler_limits = {.max_output_read = 1 << 20}},
      absl::Milliseconds(500));
  ASSERT_FALSE(HasFatalFailure());
  ScriptedModel model(
      {Call(kToolTerminal, R"({"command":"head -c 100000000 /dev/zero | tr '\\0' x"})"),
       Call(kToolTerminal, R"({"command":"head -c 5000000 /dev/zero > big.bin"})", "call_2"),
       Call(kToolTerminal, R"({"command":"while :; do :; done"})", "call_3"),
       ModelReply{.text = "<task_summary>x</task_summary>"}});
  AgentOutcome out = RunAgent(
      {.prompt = "Break out", .max_iterations = 5}, model, *limited.workspace, {},
      [] { return false; },
      [this](std::vector<v1::RunEvent> events, std::optional<int>, std::vector<std::string>) {
        for (auto& e : events) events_.push_back(std::move(e));
        return absl::OkStatus();
      });
  ASSERT_EQ(out.kind, AgentOutcome::Kind::kSummary) << out.status;
  std::vector<std::string> heard;
  for (const ChatMessage& m : model.seen_.back()) {
    if (m.role == ChatMessage::Role::kTool) heard.push_back(m.content);
  }
  ASSERT_EQ(heard.size(), 3u);
  EXPECT_TRUE(
      absl::StartsWith(heard[0], "[sandbox] exit code 137: killed for printing more than 1 MiB"))
      << heard[0].substr(0, 200);
  EXPECT_TRUE(absl::StartsWith(heard[1], "[sandbox] exit code 153: killed by SIGXFSZ")) << heard[1];
  EXPECT_TRUE(absl::EndsWith(heard[2], "[command timed out]")) << heard[2];
  std::vector<int> exit_codes;
  for (const auto& e : events_) {
    if (e.has_tool_result()) exit_codes.push_back(e.tool_result().exit_code());
  }
  EXPECT_EQ(exit_codes, (std::vector<int>{137, 153, 143}));
}

TEST_F(AgentTest, ACommandThatFailsSilentlyStillTellsTheModelItFailed) {
  ScriptedModel model({Call(kToolTerminal, R"({"command":"false"})"),
                       Call(kToolTerminal, R"({"command":"true"})", "call_2"),
                       ModelReply{.text = "<task_summary>x</task_summary>"}});
  ASSERT_EQ(Run(model).kind, AgentOutcome::Kind::kSummary);
  std::vector<std::string> heard;
  for (const ChatMessage& m : model.seen_.back()) {
    if (m.role == ChatMessage::Role::kTool) heard.push_back(m.content);
  }
  EXPECT_EQ(heard, (std::vector<std::string>{"\n[exit code 1]", ""}));
}

TEST_F(AgentTest, AFailedEmitOrModelStopsTheAttempt) {
  emit_status_ = absl::AbortedError("lease lost");
  ScriptedModel model({ModelReply{.text = "<task_summary>x</task_summary>"}});
  AgentOutcome out = Run(model);
  EXPECT_EQ(out.kind, AgentOutcome::Kind::kStopped);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kAborted);

  emit_status_ = absl::OkStatus();
  ScriptedModel down({absl::UnavailableError("model down")});
  out = Run(down);
  EXPECT_EQ(out.kind, AgentOutcome::Kind::kStopped);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnavailable);
}

TEST(ExtractSummaryTest, FindsTheTaggedText) {
  EXPECT_EQ(ExtractSummary("ok <task_summary> built it </task_summary> bye"), "built it");
  EXPECT_EQ(ExtractSummary("<task_summary></task_summary>"), std::nullopt);
  EXPECT_EQ(ExtractSummary("<task_summary>unclosed"), std::nullopt);
  EXPECT_EQ(ExtractSummary("nothing"), std::nullopt);
}

}  // namespace
}  // namespace qai::orchestrator
