#pragma once
// A run's result as MessageService stores it (RecordAgentResult, through the orchestrator's
// outbox): the ASSISTANT message's text and the fragment of the snapshot the run left. An
// agent's run gets its title and answer from the model; a restore says which version it brought
// back.
//
//   mpb::RecordAgentResultRequest result =
//       RunResult(run, {.content = answer, .title = title, .summary = summary}, snapshot);

#include <string>

#include "qai/messages/v1/messages.pb.h"
#include "services/orchestrator/runs/sandbox_workspace.h"
#include "services/orchestrator/store/run_store.h"
#include "services/orchestrator/store/version_store.h"

namespace qai::orchestrator {

struct ResultText {
  std::string content;  // the ASSISTANT message
  std::string title;
  std::string summary;
};

// RunResult: the result of `run`, whose workspace is `snapshot`.
messages::v1::RecordAgentResultRequest RunResult(const RunRecord& run, const ResultText& text,
                                                 const SavedSnapshot& snapshot);

// RestoredText: what a restore of `version` says ("Restored version 3.", or for a fork's start
// "Started from version 3 of the project this one was forked from."), and the version's own
// title (or "Version 3" when it has none).
ResultText RestoredText(const VersionRecord& version, bool fork);

}  // namespace qai::orchestrator
