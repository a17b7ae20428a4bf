#include "tools/orchbench/calls.h"

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/status.h"
#include "common/status_macros.h"

namespace qai::orchbench {

namespace opb = ::qai::orchestrator::v1;

std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const std::string& target, int count) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < count; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("qai.orchbench.channel", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channels.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }
  return channels;
}

void AsService(grpc::ClientContext& ctx, const std::string& api_key, absl::Duration timeout) {
  ctx.AddMetadata("x-api-key", api_key);
  if (timeout != absl::InfiniteDuration())
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

void AsReader(grpc::ClientContext& ctx, const std::string& token, absl::Duration timeout) {
  ctx.AddMetadata("authorization", "Bearer " + token);
  if (timeout != absl::InfiniteDuration())
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

absl::StatusOr<opb::Run> Orchestrator::StartRun(const Prompt& prompt) const {
  grpc::ClientContext ctx;
  AsService(ctx, api_key_);
  opb::StartRunRequest req;
  req.set_project_id(prompt.project_id);
  req.set_message_id(prompt.message_id);
  req.set_prompt(prompt.prompt);
  opb::Run run;
  QAI_RETURN_IF_ERROR(common::FromGrpcStatus(stub_->StartRun(&ctx, req, &run)));
  return run;
}

absl::StatusOr<opb::Run> Orchestrator::GetRun(const std::string& run_id) const {
  grpc::ClientContext ctx;
  AsReader(ctx, token_);
  opb::GetRunRequest req;
  req.set_id(run_id);
  opb::Run run;
  QAI_RETURN_IF_ERROR(common::FromGrpcStatus(stub_->GetRun(&ctx, req, &run)));
  return run;
}

absl::Status Orchestrator::CancelProjectRuns(const std::string& project_id) const {
  grpc::ClientContext ctx;
  AsService(ctx, api_key_);
  opb::CancelProjectRunsRequest req;
  req.set_project_id(project_id);
  google::protobuf::Empty empty;
  return common::FromGrpcStatus(stub_->CancelProjectRuns(&ctx, req, &empty));
}

absl::StatusOr<opb::Run> Orchestrator::WaitForEnd(const std::string& run_id,
                                                  absl::Duration timeout) const {
  const absl::Time until = absl::Now() + timeout;
  for (;;) {
    QAI_ASSIGN_OR_RETURN(opb::Run run, GetRun(run_id));
    if (run.state() >= opb::Run::STATE_SUCCEEDED) return run;
    if (absl::Now() > until)
      return absl::DeadlineExceededError(absl::StrCat("run ", run_id, " did not end"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

absl::StatusOr<std::vector<Prompt>> ReadPrompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<Prompt> prompts;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits('\t', 2));
    if (parts.size() != 3 || !common::IsUuid(parts[0]) || !common::IsUuid(parts[1])) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a prompt line: ", line));
    }
    prompts.push_back({parts[0], parts[1], parts[2]});
  }
  return prompts;
}

}  // namespace qai::orchbench
