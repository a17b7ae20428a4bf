#pragma once
// Agent: one attempt of a run's agent loop.
//
// The conversation is the system prompt, the project's recent messages, and the prompt. Each
// iteration asks the model for its next turn and runs the tools it calls in the project's
// workspace; every step is reported as RunEvents through `emit` as it happens (the model's
// text as it streams in, and its retries, through ModelEvents), with its journal entry
// (journal.h), so a later attempt resumes after the last finished step. The loop ends
// when the model's answer holds <task_summary>...</task_summary>, at max_iterations, when the
// run is cancelled (checked between tool calls; a running command is killed), or when `emit`
// fails (the lease was lost: the attempt stops without writing anything more).

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "services/orchestrator/agent/workspace.h"
#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

struct AgentLimits {
  size_t max_command_bytes = 64 << 10;      // each terminal command's text
  size_t max_tool_output_chars = 16 << 10;  // what a tool result shows the model and the events
  size_t max_read_bytes = 256 << 10;        // each file readFiles returns
};

struct AgentInput {
  std::string prompt;
  std::vector<ChatMessage> history;  // earlier user prompts and assistant answers, oldest first
  int max_iterations = 15;
  // The run's journal from earlier attempts (see journal.h): the loop goes on after it.
  std::vector<std::string> journal;
};

// Emit: stores events (and the iteration they belong to) and the journal steps they report, in
// order (one transaction); an error stops the attempt.
using Emit =
    std::function<absl::Status(std::vector<v1::RunEvent> events, std::optional<int> iteration,
                               std::vector<std::string> steps)>;

struct AgentOutcome {
  enum class Kind {
    kSummary,    // the model finished with a summary
    kNoSummary,  // max_iterations reached without one
    kCancelled,
    kStopped,  // emit failed (lease lost) or the model failed: see status
  };
  Kind kind = Kind::kNoSummary;
  std::string summary;
  std::set<std::string> files_written;  // paths this attempt wrote
  int iterations = 0;
  absl::Status status;       // kStopped: why
  bool model_fault = false;  // kStopped: the model's call failed (else the database or the sandbox)
};

// RunAgent: the loop described above.
AgentOutcome RunAgent(const AgentInput& input, Model& model, Workspace& workspace,
                      const AgentLimits& limits, const std::function<bool()>& cancelled,
                      const Emit& emit);

// ExtractSummary: the text inside <task_summary>...</task_summary>, if the text has one.
std::optional<std::string> ExtractSummary(std::string_view text);

}  // namespace qai::orchestrator
