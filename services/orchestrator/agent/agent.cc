#include "services/orchestrator/agent/agent.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/utf8.h"
#include "services/orchestrator/agent/journal.h"
#include "services/orchestrator/agent/model_events.h"
#include "services/orchestrator/agent/tool_args.h"
#include "services/orchestrator/model/prompts.h"

namespace qai::orchestrator {
using common::ToValidUtf8;
using common::TruncateUtf8;
namespace {

using v1::RunEvent;

// The largest file a tool's journal entry keeps when changes are read file by file.
constexpr size_t kMaxJournaledFileBytes = 3 << 20;

struct ToolOutcome {
  std::string output;
  int exit_code = 0;
  bool truncated = false;
  std::vector<std::string> written;
  bool cancelled = false;
};

ToolOutcome Failed(std::string message) {
  ToolOutcome out;
  out.output = std::move(message);
  out.exit_code = 1;
  return out;
}

absl::StatusOr<ToolOutcome> RunTerminal(const TerminalArgs& args, Workspace& ws,
                                        const AgentLimits& limits,
                                        const std::function<bool()>& cancelled) {
  ToolOutcome out;
  QAI_ASSIGN_OR_RETURN(CommandOutcome r, ws.Run(args.command, cancelled));
  out.output = TruncateUtf8(r.output, limits.max_tool_output_chars, &out.truncated);
  out.truncated = out.truncated || r.truncated;
  out.exit_code = r.exit_code;
  out.cancelled = r.cancelled;
  if (r.timed_out) {
    absl::StrAppend(&out.output, "\n[command timed out]");
  } else if (r.exit_code != 0 && !r.cancelled) {
    // A command that fails silently must still tell the model it failed.
    absl::StrAppend(&out.output, "\n[exit code ", r.exit_code, "]");
  }
  return out;
}

absl::StatusOr<ToolOutcome> WriteFiles(const WriteFilesArgs& args, Workspace& ws,
                                       const AgentLimits& limits) {
  ToolOutcome out;
  std::vector<std::string> lines(args.malformed,
                                 "error: each file needs a string path and content");
  if (args.malformed > 0) out.exit_code = 1;
  if (!args.files.empty()) {
    QAI_ASSIGN_OR_RETURN(std::vector<FileResult> written, ws.WriteFiles(args.files));
    for (const FileResult& r : written) {
      if (r.error.empty()) {
        out.written.push_back(r.path);
        lines.push_back(absl::StrCat("wrote ", r.path));
      } else {
        lines.push_back(absl::StrCat("error: ", r.path, ": ", r.error));
        out.exit_code = 1;
      }
    }
  }
  out.output =
      TruncateUtf8(absl::StrJoin(lines, "\n"), limits.max_tool_output_chars, &out.truncated);
  return out;
}

absl::StatusOr<ToolOutcome> ReadFiles(const ReadFilesArgs& args, Workspace& ws,
                                      const AgentLimits& limits) {
  ToolOutcome out;
  nlohmann::json result = nlohmann::json::array();
  if (!args.paths.empty()) {
    QAI_ASSIGN_OR_RETURN(std::vector<FileResult> read,
                         ws.ReadFiles(args.paths, limits.max_read_bytes));
    for (const FileResult& r : read) {
      if (r.error.empty()) {
        result.push_back({{"path", r.path}, {"content", r.content}});
      } else {
        result.push_back({{"path", r.path}, {"error", r.error}});
      }
    }
  }
  out.output = TruncateUtf8(result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                            limits.max_read_bytes * 4, &out.truncated);
  return out;
}

// RunTool: the tool's outcome; an error only when the workspace could not be reached (the
// attempt stops), never for what the model asked wrongly (its result says so).
absl::StatusOr<ToolOutcome> RunTool(const ToolCall& call, Workspace& ws, const AgentLimits& limits,
                                    const std::function<bool()>& cancelled) {
  ToolArgs args = ParseToolArgs(call, limits.max_command_bytes);
  if (const auto* terminal = std::get_if<TerminalArgs>(&args))
    return RunTerminal(*terminal, ws, limits, cancelled);
  if (const auto* files = std::get_if<WriteFilesArgs>(&args)) return WriteFiles(*files, ws, limits);
  if (const auto* files = std::get_if<ReadFilesArgs>(&args)) return ReadFiles(*files, ws, limits);
  return Failed(std::get<ToolArgsError>(std::move(args)).message);
}

// CaptureChanges: what a tool changed in the workspace (whatever made the change: a written
// file or a command). When the workspace is too large to tell, the files the tool wrote count.
absl::StatusOr<journal::Changes> CaptureChanges(Workspace& ws,
                                                const std::vector<std::string>& written) {
  QAI_ASSIGN_OR_RETURN(std::optional<journal::Changes> changes, ws.Changes());
  if (changes) return *std::move(changes);
  journal::Changes fallback;
  if (written.empty()) return fallback;
  QAI_ASSIGN_OR_RETURN(std::vector<FileResult> read, ws.ReadFiles(written, kMaxJournaledFileBytes));
  for (FileResult& r : read) {
    if (r.error.empty()) fallback[r.path] = std::move(r.content);
  }
  return fallback;
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
  AgentOutcome outcome;
  auto stop = [&](absl::Status status) {
    outcome.kind = AgentOutcome::Kind::kStopped;
    outcome.status = std::move(status);
    return outcome;
  };
  auto cancel = [&] {
    outcome.kind = AgentOutcome::Kind::kCancelled;
    return outcome;
  };
  std::vector<ChatMessage> conversation = {
      {.role = ChatMessage::Role::kSystem, .content = kAgentSystemPrompt}};
  conversation.insert(conversation.end(), input.history.begin(), input.history.end());
  conversation.push_back({.role = ChatMessage::Role::kUser, .content = input.prompt});
  const std::vector<ToolSpec> tools = AgentTools();

  // An earlier attempt's steps: their answers and results rejoin the conversation, and the loop
  // goes on after the last of them; no finished model call is made again.
  absl::StatusOr<journal::Replayed> done = journal::Replay(input.journal);
  if (!done.ok()) return stop(done.status());
  conversation.insert(conversation.end(), done->turns.begin(), done->turns.end());
  outcome.files_written.insert(done->written.begin(), done->written.end());
  using Phase = journal::Replayed::Phase;
  if (done->phase == Phase::kEnded) {
    if (std::optional<std::string> summary = ExtractSummary(done->reply.text)) {
      outcome.kind = AgentOutcome::Kind::kSummary;
      outcome.summary = *std::move(summary);
      outcome.iterations = done->iteration;
      return outcome;
    }
  }
  const int first = done->phase == Phase::kNone    ? 1
                    : done->phase == Phase::kEnded ? done->iteration + 1
                                                   : done->iteration;
  // The model's last answer while it waits to be journaled with the next step.
  std::string answered;
  auto with_answer = [&](std::string step) {
    std::vector<std::string> steps;
    if (!answered.empty()) steps.push_back(std::exchange(answered, ""));
    steps.push_back(std::move(step));
    return steps;
  };

  // The workspace counts changes from when the worker opened (or restored) it, so each tool's
  // are its own.
  for (int iteration = first; iteration <= input.max_iterations; ++iteration) {
    outcome.iterations = iteration;
    const bool resumed =
        iteration == first && done->phase != Phase::kNone && done->phase != Phase::kEnded;
    ModelReply reply;
    size_t next_call = 0;
    if (resumed && done->phase == Phase::kAnswered) {
      reply = done->reply;
      next_call = done->answered;
    } else {
      if (cancelled()) return cancel();
      if (!resumed) {
        RunEvent started;
        started.mutable_iteration_started()->set_iteration(iteration);
        if (absl::Status s = emit({started}, iteration, {journal::Start(iteration)}); !s.ok())
          return stop(s);
      }
      // The reply's text and the model's retries become events as they happen; the answer
      // itself is journaled once it is whole (a call cut off by a crash is made again).
      ModelEvents model_events(
          [&](std::vector<RunEvent> events) { return emit(std::move(events), std::nullopt, {}); },
          cancelled, limits.max_tool_output_chars);
      absl::StatusOr<ModelReply> answer = model.Stream(conversation, tools, model_events);
      if (absl::Status s = model_events.Finish(); !s.ok()) return stop(s);
      if (!answer.ok()) {
        if (answer.status().code() == absl::StatusCode::kCancelled && cancelled()) return cancel();
        outcome.model_fault = true;
        return stop(answer.status());
      }
      reply = *std::move(answer);
      // Journaled with what comes next (the first call, or the iteration's end), which follows
      // at once: one write fewer, and a crash in between only asks the model again.
      answered = journal::Model(iteration, reply);
      conversation.push_back({.role = ChatMessage::Role::kAssistant,
                              .content = reply.text,
                              .tool_calls = reply.tool_calls});
    }

    for (size_t i = next_call; i < reply.tool_calls.size(); ++i) {
      const ToolCall& call = reply.tool_calls[i];
      if (cancelled()) return cancel();
      // A call an earlier attempt began is run again (its result never got stored), but its
      // event is out already.
      if (!(resumed && i == next_call && done->calling)) {
        RunEvent call_event;
        call_event.mutable_tool_call()->set_call_id(call.id);
        call_event.mutable_tool_call()->set_tool(call.name);
        call_event.mutable_tool_call()->set_arguments_json(
            TruncateUtf8(call.arguments_json, limits.max_tool_output_chars));
        if (absl::Status s = emit({call_event}, std::nullopt, with_answer(journal::Call(call.id)));
            !s.ok()) {
          return stop(s);
        }
      }

      absl::StatusOr<ToolOutcome> ran = RunTool(call, ws, limits, cancelled);
      if (!ran.ok()) return stop(ran.status());
      ToolOutcome& result = *ran;
      if (result.cancelled) return cancel();  // the command was killed: no result to keep
      std::vector<RunEvent> events(1);
      RunEvent::ToolResult* r = events[0].mutable_tool_result();
      r->set_call_id(call.id);
      r->set_tool(call.name);
      // The model may see more of a file than an event carries: events stay small, whoever
      // watches them.
      bool cut = false;
      r->set_output(TruncateUtf8(result.output, limits.max_tool_output_chars, &cut));
      r->set_exit_code(result.exit_code);
      r->set_truncated(result.truncated || cut);
      if (!result.written.empty()) {
        RunEvent changed;
        for (const std::string& path : result.written) {
          changed.mutable_files_changed()->add_paths(path);
          outcome.files_written.insert(path);
        }
        events.push_back(std::move(changed));
      }
      // Reading changes nothing.
      absl::StatusOr<journal::Changes> changes =
          call.name == kToolReadFiles ? journal::Changes{} : CaptureChanges(ws, result.written);
      if (!changes.ok()) return stop(changes.status());
      if (absl::Status s = emit(std::move(events), std::nullopt,
                                {journal::Tool(call.id, result.output, result.written, *changes)});
          !s.ok()) {
        return stop(s);
      }
      conversation.push_back(
          {.role = ChatMessage::Role::kTool, .content = result.output, .tool_call_id = call.id});
    }

    RunEvent finished;
    finished.mutable_iteration_finished()->set_iteration(iteration);
    if (absl::Status s = emit({finished}, std::nullopt, with_answer(journal::End(iteration)));
        !s.ok())
      return stop(s);
    if (std::optional<std::string> summary = ExtractSummary(reply.text)) {
      outcome.kind = AgentOutcome::Kind::kSummary;
      outcome.summary = *std::move(summary);
      return outcome;
    }
  }
  outcome.kind = AgentOutcome::Kind::kNoSummary;
  return outcome;
}

}  // namespace qai::orchestrator
