#include "tools/orchbench/setup.h"

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "common/strings.h"
#include "qai/projects/v1/projects.grpc.pb.h"

namespace qai::orchbench {

absl::StatusOr<std::vector<SetupGroup>> ParsePlan(std::string_view plan) {
  std::vector<SetupGroup> groups;
  std::set<std::string> names;
  for (absl::string_view part : absl::StrSplit(common::ToAbsl(plan), '|', absl::SkipWhitespace())) {
    std::vector<std::string> fields = absl::StrSplit(part, absl::MaxSplits('=', 2));
    SetupGroup g;
    if (fields.size() != 3 || fields[0].empty() || !absl::SimpleAtoi(fields[1], &g.count) ||
        g.count < 1 || fields[2].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("plan: \"", part, "\" is not name=count=prompt"));
    }
    if (fields[0].find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") !=
        std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("plan: the name \"", fields[0], "\" is not [a-z0-9-_]+"));
    }
    if (!names.insert(fields[0]).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("plan: the name \"", fields[0], "\" comes twice"));
    }
    g.name = fields[0];
    g.prompt = fields[2];
    groups.push_back(std::move(g));
  }
  if (groups.empty()) return absl::InvalidArgumentError("plan: no groups");
  return groups;
}

std::string PromptFor(const SetupGroup& group, int n) {
  return absl::StrReplaceAll(group.prompt, {{"{n}", absl::StrCat(n)}});
}

absl::StatusOr<std::map<std::string, std::vector<Prompt>>> CreatePrompts(
    const std::shared_ptr<grpc::Channel>& projects, const std::string& token,
    chainbench::RecordingOrchestrator& stand_in, const std::vector<SetupGroup>& groups, int callers,
    absl::Duration timeout) {
  struct Wanted {
    const SetupGroup* group;
    int n;
    std::string project_id;
  };
  std::vector<Wanted> wanted;
  for (const SetupGroup& g : groups) {
    for (int n = 1; n <= g.count; ++n) wanted.push_back({&g, n, ""});
  }
  auto stub = projects::v1::ProjectService::NewStub(projects);
  std::atomic<size_t> next{0};
  std::mutex mu;
  absl::Status failure;
  std::vector<std::thread> threads;
  for (int c = 0; c < std::max(1, callers); ++c) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < wanted.size(); i = next++) {
        grpc::ClientContext ctx;
        ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        projects::v1::CreateProjectRequest req;
        req.set_initial_prompt(PromptFor(*wanted[i].group, wanted[i].n));
        projects::v1::Project project;
        absl::Status s = common::FromGrpcStatus(stub->CreateProject(&ctx, req, &project));
        std::lock_guard lock(mu);
        if (s.ok()) {
          wanted[i].project_id = project.id();
        } else if (failure.ok()) {
          failure = s;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  if (!failure.ok()) return failure;

  // Every project's first message reaches the stand-in through the two outboxes.
  const absl::Time until = absl::Now() + timeout;
  std::map<std::string, Prompt> by_project;
  for (;;) {
    by_project.clear();
    for (const auto& [message_id, arrival] : stand_in.Arrivals()) {
      by_project[arrival.project_id] = Prompt{arrival.project_id, message_id, arrival.prompt};
    }
    size_t here = 0;
    for (const Wanted& w : wanted) here += by_project.contains(w.project_id) ? 1 : 0;
    if (here == wanted.size()) break;
    if (absl::Now() > until) {
      return absl::DeadlineExceededError(
          absl::StrCat(wanted.size() - here, " of ", wanted.size(),
                       " projects' first messages did not ask for a run in time"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::map<std::string, std::vector<Prompt>> out;
  for (const Wanted& w : wanted) out[w.group->name].push_back(by_project.at(w.project_id));
  return out;
}

}  // namespace qai::orchbench
