#include "services/orchestrator/agent.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/strings.h"
#include "services/orchestrator/journal.h"
#include "services/orchestrator/model_events.h"
#include "services/orchestrator/prompts.h"
#include "services/orchestrator/utf8.h"

namespace qai::orchestrator {
namespace {

using v1::RunEvent;

struct ToolOutcome {
  std::string output;
  int exit_code = 0;
  bool truncated = false;
  std::vector<std::string> written;
  bool cancelled = false;
};

ToolOutcome RunTool(const ToolCall& call, Workspace& ws, const AgentLimits& limits,
                    const std::function<bool()>& cancelled) {
  ToolOutcome out;
  nlohmann::json args = nlohmann::json::parse(call.arguments_json, nullptr, /*allow_exceptions=*/false);
  auto fail = [&](std::string message) {
    out.output = std::move(message);
    out.exit_code = 1;
    return out;
  };
  if (!args.is_object()) return fail("error: the arguments are not a JSON object");
  if (call.name == kToolTerminal) {
    if (!args.contains("command") || !args["command"].is_string()) return fail("error: missing \"command\"");
    CommandResult r = ws.Run(args["command"].get<std::string>(), limits.command, cancelled);
    out.output = TruncateUtf8(r.output, limits.max_tool_output_chars, &out.truncated);
    out.truncated = out.truncated || r.truncated;
    out.exit_code = r.exit_code;
    out.cancelled = r.cancelled;
    if (r.timed_out) absl::StrAppend(&out.output, "\n[command timed out]");
    return out;
  }
  if (call.name == kToolWriteFiles) {
    if (!args.contains("files") || !args["files"].is_array()) return fail("error: missing \"files\"");
    std::vector<std::string> lines;
    for (const auto& f : args["files"]) {
      if (!f.is_object() || !f.contains("path") || !f["path"].is_string() || !f.contains("content") ||
          !f["content"].is_string()) {
        lines.push_back("error: each file needs a string path and content");
        out.exit_code = 1;
        continue;
      }
      const std::string path = f["path"].get<std::string>();
      absl::Status s = ws.WriteFile(path, f["content"].get<std::string>());
      if (s.ok()) {
        out.written.push_back(path);
        lines.push_back(absl::StrCat("wrote ", path));
      } else {
        lines.push_back(absl::StrCat("error: ", path, ": ", s.message()));
        out.exit_code = 1;
      }
    }
    out.output = TruncateUtf8(absl::StrJoin(lines, "\n"), limits.max_tool_output_chars, &out.truncated);
    return out;
  }
  if (call.name == kToolReadFiles) {
    if (!args.contains("files") || !args["files"].is_array()) return fail("error: missing \"files\"");
    nlohmann::json result = nlohmann::json::array();
    for (const auto& p : args["files"]) {
      if (!p.is_string()) continue;
      const std::string path = p.get<std::string>();
      absl::StatusOr<std::string> content = ws.ReadFile(path, limits.max_read_bytes);
      if (content.ok()) {
        result.push_back({{"path", path}, {"content", *content}});
      } else {
        result.push_back({{"path", path}, {"error", std::string(content.status().message())}});
      }
    }
    out.output = TruncateUtf8(result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                     limits.max_read_bytes * 4, &out.truncated);
    return out;
  }
  return fail(absl::StrCat("error: unknown tool ", call.name));
}

// CaptureChanges: what a tool changed in the workspace, from its state before (`files`, then
// updated). Without that state (over the snapshot limits) only the files the tool wrote count.
journal::Changes CaptureChanges(const Workspace& ws, std::optional<journal::Files>& files,
                                const std::vector<std::string>& written) {
  absl::StatusOr<journal::Files> after = ws.Snapshot();
  journal::Changes changes;
  if (files && after.ok()) {
    changes = journal::Diff(*files, *after);
    files = *std::move(after);
    return changes;
  }
  if (after.ok()) {
    files = *std::move(after);
  } else {
    files.reset();
  }
  for (const std::string& path : written) {
    absl::StatusOr<std::string> content = ws.ReadFile(path, SnapshotLimits{}.max_bytes);
    if (content.ok()) changes[path] = *std::move(content);
  }
  return changes;
}

}  // namespace

std::optional<std::string> ExtractSummary(std::string_view text) {
  const size_t open = text.find("<task_summary>");
  if (open == std::string_view::npos) return std::nullopt;
  const size_t start = open + std::string_view("<task_summary>").size();
  const size_t close = text.find("</task_summary>", start);
  if (close == std::string_view::npos) return std::nullopt;
  std::string summary(absl::StripAsciiWhitespace(common::ToAbsl(text.substr(start, close - start))));
  if (summary.empty()) return std::nullopt;
  return summary;
}

AgentOutcome RunAgent(const AgentInput& input, Model& model, Workspace& ws, const AgentLimits& limits,
                      const std::function<bool()>& cancelled, const Emit& emit) {
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
  std::vector<ChatMessage> conversation = {{.role = ChatMessage::Role::kSystem, .content = kAgentSystemPrompt}};
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
  const int first = done->phase == Phase::kNone ? 1 : done->phase == Phase::kEnded ? done->iteration + 1 : done->iteration;

  // What the workspace holds before each tool call, so its changes can be journaled (whatever
  // made them: a written file or a command). Without it (over the snapshot limits) only the
  // files the tool wrote are.
  std::optional<journal::Files> files;
  if (absl::StatusOr<journal::Files> now = ws.Snapshot(); now.ok()) files = *std::move(now);

  for (int iteration = first; iteration <= input.max_iterations; ++iteration) {
    outcome.iterations = iteration;
    const bool resumed = iteration == first && done->phase != Phase::kNone && done->phase != Phase::kEnded;
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
        if (absl::Status s = emit({started}, iteration, journal::Start(iteration)); !s.ok()) return stop(s);
      }
      // The reply's text and the model's retries become events as they happen; the answer
      // itself is journaled once it is whole (a call cut off by a crash is made again).
      ModelEvents model_events([&](std::vector<RunEvent> events) { return emit(std::move(events), std::nullopt, ""); },
                               cancelled, limits.max_tool_output_chars);
      absl::StatusOr<ModelReply> answer = model.Stream(conversation, tools, model_events);
      if (absl::Status s = model_events.Finish(); !s.ok()) return stop(s);
      if (!answer.ok()) {
        if (answer.status().code() == absl::StatusCode::kCancelled && cancelled()) return cancel();
        return stop(answer.status());
      }
      reply = *std::move(answer);
      if (absl::Status s = emit({}, std::nullopt, journal::Model(iteration, reply)); !s.ok()) return stop(s);
      conversation.push_back({.role = ChatMessage::Role::kAssistant, .content = reply.text,
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
        if (absl::Status s = emit({call_event}, std::nullopt, journal::Call(call.id)); !s.ok()) return stop(s);
      }

      ToolOutcome result = RunTool(call, ws, limits, cancelled);
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
      const journal::Changes changes = call.name == kToolReadFiles ? journal::Changes{}
                                                                   : CaptureChanges(ws, files, result.written);
      if (absl::Status s = emit(std::move(events), std::nullopt, journal::Tool(call.id, result.output, result.written, changes));
          !s.ok()) {
        return stop(s);
      }
      conversation.push_back({.role = ChatMessage::Role::kTool, .content = result.output, .tool_call_id = call.id});
    }

    RunEvent finished;
    finished.mutable_iteration_finished()->set_iteration(iteration);
    if (absl::Status s = emit({finished}, std::nullopt, journal::End(iteration)); !s.ok()) return stop(s);
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
