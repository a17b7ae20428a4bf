#pragma once
// Which services' keys may call which of ProjectService's RPCs (common/rpc.h, ServiceCallers). An
// RPC missing here takes no service key; users are checked by the handlers.

#include "common/rpc.h"

namespace qai::projects {

inline const common::ServiceCallers& ServiceCallers() {
  static const common::ServiceCallers callers = {
      {"GetProject", {"messages"}},  // whose a project is, for a prompt a service relays
      {"RecordLatestRun", {"orchestrator"}},
      {"RecordLatestRuns", {"orchestrator"}},
  };
  return callers;
}

}  // namespace qai::projects
