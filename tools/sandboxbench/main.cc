// qai-sandboxbench: what a command costs through qai-sandbox against the same command launched
// directly the way qai-sandbox launches it (its project's cgroup, prlimit, setpriv, bubblewrap),
// side by side.
//
//   qai-sandboxbench --addr 127.0.0.1:50054 --key KEY [--commands 200] [--rounds 3] [--command
//   true]
//
// Each round runs the commands one after another through RunCommand (a workspace opened once),
// then as many directly (Workspace::Run with a bwrap sandbox, in a workspace of its own under a
// temporary root, in a cgroup of its own unless QAI_SANDBOX_CGROUPS=off, as for the service),
// and prints each path's p50, p90 and p99 in ms and the p50 ratio; then the medians over the
// rounds. It needs to run as root (a uid per project) with bubblewrap, as the service does.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/client.h"
#include "common/ids.h"
#include "qai/sandbox/v1/sandbox.grpc.pb.h"
#include "services/sandbox/sandbox.h"
#include "services/sandbox/workspace.h"

namespace {

using namespace qai;

struct Args {
  std::string addr, key, command = "true";
  int commands = 200, rounds = 3;
};

bool Parse(int argc, char** argv, Args* a) {
  if (argc % 2 == 0) return false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    bool ok = true;
    if (flag == "--addr") {
      a->addr = value;
    } else if (flag == "--key") {
      a->key = value;
    } else if (flag == "--command") {
      a->command = value;
    } else if (flag == "--commands") {
      ok = absl::SimpleAtoi(value, &a->commands) && a->commands > 0;
    } else if (flag == "--rounds") {
      ok = absl::SimpleAtoi(value, &a->rounds) && a->rounds > 0;
    } else {
      ok = false;
    }
    if (!ok) return false;
  }
  return !a->addr.empty() && !a->key.empty();
}

double Percentile(std::vector<double> ms, double p) {
  std::sort(ms.begin(), ms.end());
  return ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))];
}

double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

// ViaService: one command's wall time through RunCommand, in ms; negative on failure.
double ViaService(sandbox::v1::SandboxService::Stub& stub, const Args& a,
                  const std::string& project) {
  grpc::ClientContext ctx;
  common::PrepareServiceCall(ctx, a.key, common::NewUuid(), absl::Seconds(60));
  sandbox::v1::RunCommandRequest req;
  req.set_project_id(project);
  req.set_fence(1);
  req.set_command(a.command);
  const absl::Time start = absl::Now();
  auto reader = stub.RunCommand(&ctx, req);
  sandbox::v1::RunCommandResponse piece;
  int exit_code = -1;
  while (reader->Read(&piece)) {
    if (piece.has_end()) exit_code = piece.end().exit_code();
  }
  const grpc::Status status = reader->Finish();
  const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  if (!status.ok() || exit_code != 0) {
    std::fprintf(stderr, "via service: %s (exit code %d)\n", status.error_message().c_str(),
                 exit_code);
    return -1;
  }
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!Parse(argc, argv, &a)) {
    std::fprintf(
        stderr,
        "usage: %s --addr HOST:PORT --key KEY [--commands N] [--rounds N] [--command CMD]\n",
        argv[0]);
    return 2;
  }
  auto stub = sandbox::v1::SandboxService::NewStub(common::MakeChannel(a.addr));
  const std::string project = common::NewUuid();
  {
    grpc::ClientContext ctx;
    common::PrepareServiceCall(ctx, a.key, common::NewUuid(), absl::Seconds(30));
    sandbox::v1::OpenWorkspaceRequest req;
    req.set_project_id(project);
    req.set_fence(1);
    sandbox::v1::Workspace resp;
    if (grpc::Status s = stub->OpenWorkspace(&ctx, req, &resp); !s.ok()) {
      std::fprintf(stderr, "OpenWorkspace: %s\n", s.error_message().c_str());
      return 1;
    }
  }
  std::shared_ptr<sandbox::Cgroups> cgroups;
  if (const char* off = std::getenv("QAI_SANDBOX_CGROUPS");
      off == nullptr || std::string_view(off) != "off") {
    auto set_up = sandbox::Cgroups::SetUp({.name = "qai-sandboxbench"});
    if (!set_up.ok()) {
      std::fprintf(stderr, "%s (or QAI_SANDBOX_CGROUPS=off)\n",
                   std::string(set_up.status().message()).c_str());
      return 1;
    }
    cgroups = *set_up;
  }
  auto policy =
      sandbox::Sandbox::Create({.mode = sandbox::SandboxMode::kBwrap, .cgroups = cgroups});
  if (!policy.ok()) {
    std::fprintf(stderr, "%s\n", std::string(policy.status().message()).c_str());
    return 1;
  }
  const std::string root =
      (std::filesystem::temp_directory_path() / ("qai-sandboxbench-" + common::NewUuid())).string();
  std::optional<sandbox::SandboxUser> user;
  if ((*policy)->switches_users())
    user = sandbox::SandboxUser{.uid = 1999999990, .gid = 1999999990};
  auto ws = sandbox::Workspace::Open(root, common::NewUuid(), user);
  if (!ws.ok()) {
    std::fprintf(stderr, "%s\n", std::string(ws.status().message()).c_str());
    return 1;
  }

  std::printf("%-6s %-8s %9s %9s %9s\n", "round", "path", "p50_ms", "p90_ms", "p99_ms");
  std::vector<double> service_p50, direct_p50, ratios;
  for (int round = 1; round <= a.rounds; ++round) {
    std::vector<double> service, direct;
    for (int i = 0; i < a.commands; ++i) {
      const double ms = ViaService(*stub, a, project);
      if (ms < 0) return 1;
      service.push_back(ms);
    }
    for (int i = 0; i < a.commands; ++i) {
      const absl::Time start = absl::Now();
      sandbox::CommandResult r =
          (*ws)->Run(a.command, {.timeout = absl::Seconds(60), .sandbox = *policy}, nullptr);
      if (r.exit_code != 0) {
        std::fprintf(stderr, "direct: exit code %d: %s\n", r.exit_code, r.output.c_str());
        return 1;
      }
      direct.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    }
    for (auto [name, v] : {std::pair{"service", &service}, std::pair{"direct", &direct}}) {
      std::printf("%-6d %-8s %9.2f %9.2f %9.2f\n", round, name, Percentile(*v, 0.5),
                  Percentile(*v, 0.9), Percentile(*v, 0.99));
    }
    service_p50.push_back(Percentile(service, 0.5));
    direct_p50.push_back(Percentile(direct, 0.5));
    ratios.push_back(service_p50.back() / direct_p50.back());
  }
  std::string each;
  for (double r : ratios)
    absl::StrAppend(&each, each.empty() ? "" : " ", absl::StrFormat("%.2f", r));
  std::printf(
      "\ncommand %s, %d per path per round: p50 service %.2f ms, direct %.2f ms (medians over %d "
      "rounds); "
      "service/direct at p50: %.2f (rounds: %s), target <= 1.2\n",
      a.command.c_str(), a.commands, Median(service_p50), Median(direct_p50), a.rounds,
      Median(ratios), each.c_str());
  std::error_code ignored;
  std::filesystem::remove_all(root, ignored);
  if (cgroups != nullptr) cgroups->RemoveAll();
  return 0;
}
