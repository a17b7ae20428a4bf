#include "services/orchestrator/agent/agent.h"

#include <utility>

#include "absl/strings/strip.h"
#include "common/strings.h"
#include "common/utf8.h"
#include "services/orchestrator/agent/journal.h"
#include "services/orchestrator/agent/model_events.h"
#include "services/orchestrator/agent/tool_runner.h"
#include "services/orchestrator/model/prompts.h"

namespace qai::orchestrator {
using common::TruncateUtf8;
namespace {

using v1::RunEvent;

// ResultEvents: a tool result's events: the result, and the files it wrote. The model may see
// more of a file than an event carries: events stay small, whoever watches them.
std::vector<RunEvent> ResultEvents(const ToolCall& call, const ToolOutcome& result,
                                   const AgentLimits& limits) {
  std::vector<RunEvent> events(1);
  RunEvent::ToolResult* r = events[0].mutable_tool_result();
  r->set_call_id(call.id);
  r->set_tool(call.name);
  bool cut = false;
  r->set_output(TruncateUtf8(result.output, limits.max_tool_output_chars, &cut));
  r->set_exit_code(result.exit_code);
  r->set_truncated(result.truncated || cut);
  if (!result.written.empty()) {
    RunEvent changed;
    for (const std::string& path : result.written) changed.mutable_files_changed()->add_paths(path);
    events.push_back(std::move(changed));
  }
  return events;
}

// AgentLoop: one attempt of RunAgent, its conversation and outcome. Each step returns false
// when the attempt ends there (outcome_ says how), true to go on.
class AgentLoop {
 public:
  AgentLoop(const AgentInput& input, Model& model, Workspace& ws, const AgentLimits& limits,
            const std::function<bool()>& cancelled, const Emit& emit);
  AgentOutcome Run();

 private:
  using Phase = journal::Replayed::Phase;

  bool Replay();
  bool AskModel(int iteration, bool resumed, ModelReply& reply);
  bool CallTool(const ToolCall& call, bool event_out);
  bool EmitCall(const ToolCall& call);
  bool EmitResult(const ToolCall& call, const ToolOutcome& result);
  bool EndIteration(int iteration);
  bool Summarized(const std::string& text);
  std::vector<std::string> WithAnswer(std::string step);
  bool Stop(absl::Status status);
  bool Cancel();

  const AgentInput& input_;
  Model& model_;
  Workspace& ws_;
  const AgentLimits& limits_;
  const std::function<bool()>& cancelled_;
  const Emit& emit_;
  const std::vector<ToolSpec> tools_ = AgentTools();
  std::vector<ChatMessage> conversation_;
  AgentOutcome outcome_;
  journal::Replayed done_;  // what earlier attempts did
  int first_ = 1;           // the iteration this attempt starts with
  // The model's last answer while it waits to be journaled with the next step.
  std::string answered_;
};

AgentLoop::AgentLoop(const AgentInput& input, Model& model, Workspace& ws,
                     const AgentLimits& limits, const std::function<bool()>& cancelled,
                     const Emit& emit)
    : input_(input), model_(model), ws_(ws), limits_(limits), cancelled_(cancelled), emit_(emit) {
  conversation_ = {{.role = ChatMessage::Role::kSystem, .content = kAgentSystemPrompt}};
  conversation_.insert(conversation_.end(), input.history.begin(), input.history.end());
  conversation_.push_back({.role = ChatMessage::Role::kUser, .content = input.prompt});
}

// The workspace counts changes from when the worker opened (or restored) it, so each tool's
// are its own.
AgentOutcome AgentLoop::Run() {
  if (!Replay()) return outcome_;
  for (int iteration = first_; iteration <= input_.max_iterations; ++iteration) {
    outcome_.iterations = iteration;
    const bool resumed =
        iteration == first_ && done_.phase != Phase::kNone && done_.phase != Phase::kEnded;
    ModelReply reply;
    size_t next_call = 0;
    if (resumed && done_.phase == Phase::kAnswered) {
      reply = done_.reply;
      next_call = done_.answered;
    } else if (!AskModel(iteration, resumed, reply)) {
      return outcome_;
    }
    for (size_t i = next_call; i < reply.tool_calls.size(); ++i) {
      // A call an earlier attempt began is run again (its result never got stored), but its
      // event is out already.
      if (!CallTool(reply.tool_calls[i], resumed && i == next_call && done_.calling))
        return outcome_;
    }
    if (!EndIteration(iteration) || Summarized(reply.text)) return outcome_;
  }
  outcome_.kind = AgentOutcome::Kind::kNoSummary;
  return outcome_;
}

// Replay: an earlier attempt's steps: their answers and results rejoin the conversation, and
// the loop goes on after the last of them; no finished model call is made again.
bool AgentLoop::Replay() {
  absl::StatusOr<journal::Replayed> done = journal::Replay(input_.journal);
  if (!done.ok()) return Stop(done.status());
  done_ = *std::move(done);
  conversation_.insert(conversation_.end(), done_.turns.begin(), done_.turns.end());
  outcome_.files_written.insert(done_.written.begin(), done_.written.end());
  if (done_.phase == Phase::kEnded && Summarized(done_.reply.text)) {
    outcome_.iterations = done_.iteration;
    return false;
  }
  first_ = done_.phase == Phase::kNone    ? 1
           : done_.phase == Phase::kEnded ? done_.iteration + 1
                                          : done_.iteration;
  return true;
}

// AskModel: the iteration's start (unless an earlier attempt reported it) and the model's
// reply, which joins the conversation.
bool AgentLoop::AskModel(int iteration, bool resumed, ModelReply& reply) {
  if (cancelled_()) return Cancel();
  if (!resumed) {
    RunEvent started;
    started.mutable_iteration_started()->set_iteration(iteration);
    if (absl::Status s = emit_({started}, iteration, {journal::Start(iteration)}); !s.ok())
      return Stop(s);
  }
  // The reply's text and the model's retries become events as they happen; the answer
  // itself is journaled once it is whole (a call cut off by a crash is made again).
  ModelEvents model_events(
      [&](std::vector<RunEvent> events) { return emit_(std::move(events), std::nullopt, {}); },
      cancelled_, limits_.max_tool_output_chars);
  absl::StatusOr<ModelReply> answer = model_.Stream(conversation_, tools_, model_events);
  if (absl::Status s = model_events.Finish(); !s.ok()) return Stop(s);
  if (!answer.ok()) {
    if (answer.status().code() == absl::StatusCode::kCancelled && cancelled_()) return Cancel();
    outcome_.model_fault = true;
    return Stop(answer.status());
  }
  reply = *std::move(answer);
  // Journaled with what comes next (the first call, or the iteration's end), which follows
  // at once: one write fewer, and a crash in between only asks the model again.
  answered_ = journal::Model(iteration, reply);
  conversation_.push_back({.role = ChatMessage::Role::kAssistant,
                           .content = reply.text,
                           .tool_calls = reply.tool_calls});
  return true;
}

// CallTool: one tool call of the reply, its events (the call's unless `event_out`, then the
// result's) and its result in the conversation.
bool AgentLoop::CallTool(const ToolCall& call, bool event_out) {
  if (cancelled_()) return Cancel();
  if (!event_out && !EmitCall(call)) return false;
  absl::StatusOr<ToolOutcome> ran = RunTool(call, ws_, limits_, cancelled_);
  if (!ran.ok()) return Stop(ran.status());
  if (ran->cancelled) return Cancel();  // the command was killed: no result to keep
  return EmitResult(call, *ran);
}

bool AgentLoop::EmitCall(const ToolCall& call) {
  RunEvent call_event;
  call_event.mutable_tool_call()->set_call_id(call.id);
  call_event.mutable_tool_call()->set_tool(call.name);
  call_event.mutable_tool_call()->set_arguments_json(
      TruncateUtf8(call.arguments_json, limits_.max_tool_output_chars));
  if (absl::Status s = emit_({call_event}, std::nullopt, WithAnswer(journal::Call(call.id)));
      !s.ok()) {
    return Stop(s);
  }
  return true;
}

// EmitResult: the result's events with its journal entry (the changes the tool made), and the
// result in the conversation.
bool AgentLoop::EmitResult(const ToolCall& call, const ToolOutcome& result) {
  std::vector<RunEvent> events = ResultEvents(call, result, limits_);
  outcome_.files_written.insert(result.written.begin(), result.written.end());
  // Reading changes nothing.
  absl::StatusOr<journal::Changes> changes =
      call.name == kToolReadFiles ? journal::Changes{} : CaptureChanges(ws_, result.written);
  if (!changes.ok()) return Stop(changes.status());
  if (absl::Status s = emit_(std::move(events), std::nullopt,
                             {journal::Tool(call.id, result.output, result.written, *changes)});
      !s.ok()) {
    return Stop(s);
  }
  conversation_.push_back(
      {.role = ChatMessage::Role::kTool, .content = result.output, .tool_call_id = call.id});
  return true;
}

bool AgentLoop::EndIteration(int iteration) {
  RunEvent finished;
  finished.mutable_iteration_finished()->set_iteration(iteration);
  if (absl::Status s = emit_({finished}, std::nullopt, WithAnswer(journal::End(iteration)));
      !s.ok())
    return Stop(s);
  return true;
}

// Summarized: whether the text holds the summary, which then ends the attempt.
bool AgentLoop::Summarized(const std::string& text) {
  std::optional<std::string> summary = ExtractSummary(text);
  if (!summary) return false;
  outcome_.kind = AgentOutcome::Kind::kSummary;
  outcome_.summary = *std::move(summary);
  return true;
}

// WithAnswer: the journal steps of `step`, after the model's answer when it waits.
std::vector<std::string> AgentLoop::WithAnswer(std::string step) {
  std::vector<std::string> steps;
  if (!answered_.empty()) steps.push_back(std::exchange(answered_, ""));
  steps.push_back(std::move(step));
  return steps;
}

bool AgentLoop::Stop(absl::Status status) {
  outcome_.kind = AgentOutcome::Kind::kStopped;
  outcome_.status = std::move(status);
  return false;
}

bool AgentLoop::Cancel() {
  outcome_.kind = AgentOutcome::Kind::kCancelled;
  return false;
}

}  // namespace

std::optional<std::string> ExtractSummary(std::string_view text) {
  const size_t open = text.find("<task_summary>");
  if (open == std::string_view::npos) return std::nullopt;
  const size_t start = open + std::string_view("<task_summary>").size();
  const size_t close = text.find("</task_summary>", start);
  if (close == std::string_view::npos) return std::nullopt;
  std::string summary(
      absl::StripAsciiWhitespace(common::ToAbsl(text.substr(start, close - start))));
  if (summary.empty()) return std::nullopt;
  return summary;
}

AgentOutcome RunAgent(const AgentInput& input, Model& model, Workspace& ws,
                      const AgentLimits& limits, const std::function<bool()>& cancelled,
                      const Emit& emit) {
  return AgentLoop(input, model, ws, limits, cancelled, emit).Run();
}

}  // namespace qai::orchestrator
