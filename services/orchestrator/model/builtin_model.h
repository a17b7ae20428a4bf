#pragma once
// BuiltinModel: the offline default model provider ("builtin"). It needs no network and is
// deterministic, yet it builds a small, real, working website for a prompt through the same
// tool calls a real model would make, so the whole system demonstrates itself anywhere.
//
//   BuiltinModel model;
//   absl::StatusOr<ModelReply> reply = model.Complete(conversation, AgentTools());
//
// It tells its three conversations apart by the first (system) message, which must start with
// kAgentSystemPrompt, kTitleSystemPrompt or kResponseSystemPrompt; anything else is
// INVALID_ARGUMENT.
//
// Agent conversation. The request is the LAST user message; earlier messages are the project's
// history. The next turn depends only on the messages after that user message, so a run that
// is resumed from its persisted steps continues exactly where it stopped:
//   1. no assistant turn yet        -> readFiles {"files":["index.html"]}
//   2. after readFiles              -> createOrUpdateFiles: index.html, styles.css and (when a
//                                      section needs one) app.js. A new page when the read found
//                                      no HTML document; otherwise the page read, kept as it
//                                      was, with a section for this request added (see
//                                      builtin_site.h). The read's result may be the file's text
//                                      or any JSON holding it as a string, but must hold all of
//                                      it: a page cut short counts as no page.
//   3. after createOrUpdateFiles    -> terminal {"command":"ls -la && grep -c '<section'
//   index.html"}
//   4. after terminal               -> no tool calls; one sentence, then
//                                      <task_summary>what was built or changed</task_summary>
// Tool call ids are "call_<n>", n counting the assistant turns of the run from 1. The same
// conversation always gets the same reply, byte for byte. The builtin assumes the agent loop
// adds no user message of its own within a run (one would start the protocol over).
//
// Test directives, recognised anywhere in the request and left out of the page:
//   [[sleep N]]     step 3 runs `sleep N` instead (N: digits, optionally with a fraction), for
//                   cancel-while-a-command-runs tests;
//   [[no-summary]]  never finishes: after step 3 every turn is terminal {"command":"true"}, for
//                   iteration-limit tests;
//   [[no-files]]    skips step 2 (readFiles, then terminal, then the summary), for the
//                   "a run that wrote no files is an ERROR" path;
//   [[instant]]     a model that answers at once, for speed benchmarks of the queue: the first
//                   turn already holds the <task_summary> and writes index.html (a minimal page
//                   named after the request's subject) with createOrUpdateFiles, so a run is one
//                   iteration with no terminal command; any later turn is that summary alone;
//   [[flaky N]]     the first N Complete() calls for this request fail with
//                   UNAVAILABLE("builtin: simulated outage"), for retry tests. The count is
//                   process-wide, keyed by the conversation up to and including its last user
//                   message; so retries of the same conversation succeed after N failures (in
//                   practice all at the first turn). Tests that reuse a request text in one
//                   process share the count.
//
// Title conversation: at most 3 words in title case, no punctuation, taken from the summary
// (the user message): "Built a Coffee Shop landing page with ..." -> "Coffee Shop Landing".
// Response conversation: 2 friendly sentences built from the summary's first one, no markdown.
//
// Thread-safe: one instance can serve every worker.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

class BuiltinModel : public Model {
 public:
  std::string name() const override { return "builtin"; }
  [[nodiscard]] absl::StatusOr<ModelReply> Complete(const std::vector<ChatMessage>& conversation,
                                                    const std::vector<ToolSpec>& tools) override;
};

}  // namespace qai::orchestrator
