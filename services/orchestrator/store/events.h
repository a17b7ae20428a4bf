#pragma once
// The RunEvents the orchestrator writes, serialized as RunStore keeps them (payload only: the
// store adds sequence and time, and WatchRun the run id).

#include <string>

#include "absl/time/time.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"

namespace qai::orchestrator::events {

std::string Queued();
std::string Started(int attempt);
std::string Retrying(int attempt, const std::string& reason, absl::Duration delay);
std::string Succeeded(const std::string& title, const std::string& response,
                      const std::string& summary, const std::string& sandbox_url,
                      const std::string& message_id, int version);
std::string Failed(const std::string& error);
std::string Cancelled();

// IsTerminal: whether an event ends its run's stream (succeeded, failed, cancelled).
bool IsTerminal(const v1::RunEvent& event);

}  // namespace qai::orchestrator::events
