#pragma once
// Which services' keys may call which of SandboxService's RPCs (common/rpc.h, ServiceCallers). An
// RPC missing here takes no service key; users are checked by the handlers.

#include "common/rpc.h"

namespace qai::sandbox {

inline const common::ServiceCallers& ServiceCallers() {
  static const common::ServiceCallers callers = {
      {"LocateWorkspace", {"orchestrator"}}, {"OpenWorkspace", {"orchestrator"}},
      {"RestoreSnapshot", {"orchestrator"}}, {"RunCommand", {"orchestrator"}},
      {"WriteFiles", {"orchestrator"}},      {"ReadFiles", {"orchestrator"}},
      {"GetChanges", {"orchestrator"}},      {"CreateSnapshot", {"orchestrator"}},
      {"GetSnapshot", {"orchestrator"}},     {"PurgeProject", {"orchestrator"}},
      {"ArchiveSnapshot", {"orchestrator"}}, {"GetWorkspaceFiles", {"orchestrator"}},
  };
  return callers;
}

}  // namespace qai::sandbox
