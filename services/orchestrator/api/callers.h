#pragma once
// Which services' keys may call which of AgentOrchestrator's RPCs (common/rpc.h, ServiceCallers).
// An RPC missing here takes no service key; users are checked by the handlers.

#include "common/rpc.h"

namespace qai::orchestrator {

inline const common::ServiceCallers& ServiceCallers() {
  static const common::ServiceCallers callers = {
      {"StartRun", {"messages"}},
      {"CountActiveRuns", {"messages", "projects"}},  // CreateMessage's and CreateProject's caps
      {"CancelProjectRuns", {"projects"}},            // DeleteProject
      {"GetVersion", {"projects"}},                   // ForkProject: does the version exist?
  };
  return callers;
}

}  // namespace qai::orchestrator
