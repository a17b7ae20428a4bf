#pragma once
// RunChain: how long a prompt takes from CreateMessage returning to its StartRun arriving.
//
// MessageService answers CreateMessage once the USER message and its outbox row are committed;
// its outbox relay then calls AgentOrchestrator.StartRun. RunChain makes the CreateMessage
// calls (closed loop: each of `concurrency` callers starts its next call when the previous one
// returned, or `think` after that), notes the steady-clock instant each call returned, and lets a
// RecordingOrchestrator in the same process note when each StartRun arrived. One clock in one
// process measures both ends, so the difference needs no clock synchronisation. It may be
// negative: the relay can deliver before the reply has reached the caller.
//
//   auto orchestrator = RecordingOrchestrator::Start("127.0.0.1:0");   // messages'
//   QAI_ORCHESTRATOR_ADDR ChainResult r = RunChain({.project_id = id, .token = token, .prompts =
//   1000}, *stub, **orchestrator);

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "tools/chainbench/distribution.h"
#include "tools/chainbench/recording_orchestrator.h"

namespace qai::chainbench {

// ChainOptions: what to run. Every prompt is a new USER message in `project_id`, sent with a
// fresh request_id (as the `qai` client sends one), as the owner whose bearer token is `token`.
struct ChainOptions {
  std::string project_id;
  std::string token;
  // Measured prompts.
  int prompts = 1000;
  // Callers, each with one call in flight.
  int concurrency = 1;
  // A caller's pause between a call returning and its next call (zero: none). The relay starts
  // a project's runs one after another, so prompts to one project faster than it can do that
  // queue up in the outbox, and the chain then measures the queue; a pause keeps it empty.
  absl::Duration think = absl::ZeroDuration();
  // Prompts sent (and their StartRuns awaited) before the measured ones: connections, prepared
  // statements and caches warm up on them.
  int warmup = 50;
  // Deadline of each CreateMessage call.
  absl::Duration timeout = absl::Seconds(10);
  // How long to wait for the StartRuns of a phase after its last call returned.
  absl::Duration arrival_timeout = absl::Seconds(30);
  // How long to keep listening after the last StartRun arrived, so a late duplicate is counted.
  absl::Duration linger = absl::Seconds(1);
  // How many failed calls have their status printed to stderr.
  int errors_to_print = 5;
};

// ChainResult: what the measured phase gave.
struct ChainResult {
  // Measured CreateMessage calls that succeeded; calls that failed (warm-up included).
  int64_t created = 0;
  int64_t errors = 0;
  // Created messages whose StartRun never arrived within arrival_timeout (warm-up included).
  int64_t missing = 0;
  // StartRun calls beyond the first, over every message the orchestrator saw.
  int64_t duplicates = 0;
  // StartRuns for messages this run did not create or was not told about (e.g. a call that
  // failed on its way back after the message was committed).
  int64_t unmatched = 0;
  // StartRuns whose project or prompt differ from the message's.
  int64_t mismatched = 0;
  // StartRun arrival minus CreateMessage return, one sample per measured message.
  Summary chain;
  // CreateMessage call latency, one sample per successful measured call.
  Summary create;
  // Wall time of the measured calls, and their rate.
  double seconds = 0;
  double rate = 0;
  // Measured StartRuns per second, from the first arrival to the last. Below `rate`, the
  // relay fell behind the callers and the chain includes time queued in the outbox.
  double arrival_rate = 0;

  // ok: whether the run counts: every call succeeded, every StartRun arrived exactly once and
  // carried what was sent.
  bool ok() const {
    return errors == 0 && missing == 0 && duplicates == 0 && mismatched == 0 && created > 0;
  }
};

// RunChain: the warm-up phase, then the measured one. `known` messages (e.g. a project's
// initial prompt) are not counted as unmatched. The stub and orchestrator must outlive the call.
[[nodiscard]] ChainResult RunChain(const ChainOptions& options,
                                   qai::messages::v1::MessageService::StubInterface& stub,
                                   RecordingOrchestrator& orchestrator,
                                   const std::vector<std::string>& known = {});

}  // namespace qai::chainbench
