#pragma once
// Which services' keys may call which of MessageService's RPCs (common/rpc.h, ServiceCallers). An
// RPC missing here takes no service key; users are checked by the handlers.

#include "common/rpc.h"

namespace qai::messages {

inline const common::ServiceCallers& ServiceCallers() {
  static const common::ServiceCallers callers = {
      {"CreateMessage", {"projects"}},     // a project's first prompt, for its owner
      {"ListMessages", {"orchestrator"}},  // an agent's history
      {"RecordAgentResult", {"orchestrator"}},
      {"PurgeProjectMessages", {"projects"}},  // DeleteProject
  };
  return callers;
}

}  // namespace qai::messages
