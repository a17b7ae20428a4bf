#pragma once
// Setup: the USER messages the benchmark's runs answer, made the way users make them.
//
// A run reads its project's conversation from MessageService (worker.cc: History), so every
// benchmark run needs a real project with a real message. Setup creates the projects through
// ProjectService.CreateProject(initial_prompt); ProjectService's outbox gives MessageService the
// prompt, and MessageService's outbox asks for a run. qai-messages is pointed at a stand-in
// AgentOrchestrator (chainbench's RecordingOrchestrator) for this, so no run starts yet: the
// stand-in notes each (project, message, prompt), and the benchmark later starts the runs at
// the real orchestrator itself, at the moment it chooses. (The stand-in's run ids are what
// MessageService stores as the messages' run_id; nothing reads them here.)
//
// A plan names groups of projects: "name=count=prompt|name=count=prompt"; "{n}" in a prompt
// becomes the project's number within its group.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "tools/chainbench/recording_orchestrator.h"
#include "tools/orchbench/calls.h"

namespace qai::orchbench {

struct SetupGroup {
  std::string name;
  int count = 0;
  std::string prompt;
};

// ParsePlan: INVALID_ARGUMENT naming what is wrong.
[[nodiscard]] absl::StatusOr<std::vector<SetupGroup>> ParsePlan(std::string_view plan);

// PromptFor: the group's prompt for project n.
std::string PromptFor(const SetupGroup& group, int n);

// CreatePrompts: every group's projects and first messages, by group name, in project order.
[[nodiscard]] absl::StatusOr<std::map<std::string, std::vector<Prompt>>> CreatePrompts(
    const std::shared_ptr<grpc::Channel>& projects, const std::string& token,
    chainbench::RecordingOrchestrator& stand_in, const std::vector<SetupGroup>& groups, int callers,
    absl::Duration timeout);

}  // namespace qai::orchbench
