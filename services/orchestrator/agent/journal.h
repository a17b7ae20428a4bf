#pragma once
// Journal: a run's steps as the database keeps them (orchestrator.run_steps, one JSON document
// per step), written in the transaction of the step's event, so a run taken over after a crash
// continues after its last step (see RunAgent) instead of starting again:
//
//   {"kind":"start","iteration":2}                                   iteration 2 began
//   {"kind":"model","iteration":2,"text":"...","tool_calls":[...]}   the model's answer
//   {"kind":"call","call_id":"c1"}                                   a tool call began
//   {"kind":"tool","call_id":"c1","output":"...","written":["a.html"],
//    "changes":{"a.html":"<new content>","old.css":null}}          a tool's result and the
//                                                                    files it changed (null:
//                                                                    removed)
//   {"kind":"end","iteration":2}                                     iteration 2 finished
//
// The workspace a resumed run needs is the project's last state plus every step's changes.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/orchestrator/agent/workspace.h"  // FileChanges
#include "services/orchestrator/model/model.h"

namespace qai::orchestrator::journal {

// Files: path -> content; a change to nullopt removes the file.
using Files = std::map<std::string, std::string>;
using Changes = FileChanges;

std::string Start(int iteration);
std::string Model(int iteration, const ModelReply& reply);
std::string Call(const std::string& call_id);
std::string Tool(const std::string& call_id, const std::string& output,
                 const std::vector<std::string>& written, const Changes& changes);
std::string End(int iteration);

// Diff: what turns `before` into `after`.
Changes Diff(const Files& before, const Files& after);

// Replayed: where a journal leaves a run.
struct Replayed {
  enum class Phase {
    kNone,      // nothing was done: start at iteration 1
    kStarted,   // `iteration` began; its model call has no answer yet
    kAnswered,  // the model answered (`reply`); `answered` of its tool calls have their result
    kEnded,     // `iteration` finished (with `reply`)
  };
  Phase phase = Phase::kNone;
  int iteration = 0;
  ModelReply reply;
  size_t answered = 0;
  bool calling = false;  // kAnswered: the next tool call began (its event is out) but has no result
  // The conversation turns the journal adds (assistant answers and tool results), in order.
  std::vector<ChatMessage> turns;
  std::vector<std::string> written;  // every path a tool wrote
};
[[nodiscard]] absl::StatusOr<Replayed> Replay(const std::vector<std::string>& steps);

// NetChanges: every change the steps recorded, the later one of a path winning: what turns the
// project's last state into the workspace the steps left.
[[nodiscard]] absl::StatusOr<Changes> NetChanges(const std::vector<std::string>& steps);

}  // namespace qai::orchestrator::journal
