// qai-chainbench: the latency from MessageService.CreateMessage returning to the
// AgentOrchestrator.StartRun it causes arriving, over many prompts. Used by
// tools/bench/chain_bench.sh.
//
//   qai-chainbench --target 127.0.0.1:50052 --orchestrator-listen 127.0.0.1:50053
//       --project 3f0c... --jwt-secret "$secret" --sub alice --prompts 1000 --concurrency 1
//       [--think 50ms]
//
// It serves a recording AgentOrchestrator on --orchestrator-listen (qai-messages'
// QAI_ORCHESTRATOR_ADDR must point there), waits until the StartRuns of the project's USER
// messages still without a run have arrived (a new project's initial prompt may be retrying
// toward a port that was closed until now, and a project's runs are started in order), then
// runs RunChain
// (see chain_runner.h) and prints one JSON line:
//   {"prompts","concurrency","think_ms","warmup","created","errors","missing","duplicates",
//    "unmatched","mismatched","seconds","rate","arrival_rate","chain_count","chain_negative","chain_min_ms","chain_p50_ms",
//    "chain_p90_ms","chain_p99_ms","chain_max_ms","chain_mean_ms","create_p50_ms",
//    "create_p90_ms","create_p99_ms","create_max_ms","create_mean_ms","backlog","backlog_wait_ms"}
// chain_* is StartRun arrival minus CreateMessage return (negative: it arrived first);
// create_* the CreateMessage call itself; arrival_rate below rate means StartRuns queued in
// the outbox (see ChainOptions::think). Exit status: 0 when every call succeeded and every
// StartRun arrived exactly once with what was sent, 1 otherwise (the line is still printed when
// there is something to print), 2 for bad flags.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/config.h"
#include "common/jwt.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "tools/chainbench/chain_runner.h"
#include "tools/chainbench/recording_orchestrator.h"

namespace {

using qai::chainbench::ChainOptions;
using qai::chainbench::ChainResult;
using qai::chainbench::RecordingOrchestrator;
using qai::common::Config;
namespace pb = ::qai::messages::v1;

std::string IsCount(std::string_view value, int64_t min) {
  if (std::string why = qai::common::IsInt(value); !why.empty()) return why;
  return std::stoll(std::string(value)) >= min ? "" : absl::StrCat("must be at least ", min);
}

// PendingMessages: the project's USER messages that have no run yet (MessageService fills in
// run_id when StartRun answers), read as its owner.
absl::StatusOr<std::vector<std::string>> PendingMessages(pb::MessageService::Stub& stub,
                                                         const std::string& project_id,
                                                         const std::string& token) {
  std::vector<std::string> ids;
  pb::ListMessagesRequest request;
  request.set_project_id(project_id);
  request.set_page_size(100);
  do {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    pb::ListMessagesResponse response;
    grpc::Status status = stub.ListMessages(&context, request, &response);
    if (!status.ok()) {
      return absl::UnavailableError(absl::StrCat("ListMessages: code ",
                                                 static_cast<int>(status.error_code()), ": ",
                                                 status.error_message()));
    }
    for (const pb::Message& m : response.messages()) {
      if (m.role() == pb::Message::ROLE_USER && m.run_id().empty()) ids.push_back(m.id());
    }
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return ids;
}

double Rounded(double ms) { return std::round(ms * 1000) / 1000; }

int Run(int argc, char** argv) {
  absl::StatusOr<Config> config = Config::Parse(
      {
          {.name = "target", .help = "qai-messages address, host:port", .required = true},
          {.name = "orchestrator-listen",
           .default_value = "127.0.0.1:0",
           .help = "where the recording AgentOrchestrator listens (qai-messages' "
                   "QAI_ORCHESTRATOR_ADDR)"},
          {.name = "project",
           .help = "the project the prompts go to (owned by the token's subject)",
           .required = true},
          {.name = "prompts",
           .default_value = "1000",
           .help = "measured prompts",
           .validate = [](std::string_view v) { return IsCount(v, 1); }},
          {.name = "concurrency",
           .default_value = "1",
           .help = "closed-loop callers",
           .validate = [](std::string_view v) { return IsCount(v, 1); }},
          {.name = "think",
           .default_value = "0s",
           .help = "a caller's pause after each call (0: closed loop)",
           .validate = qai::common::IsDuration},
          {.name = "warmup",
           .default_value = "50",
           .help = "unmeasured prompts before them",
           .validate = [](std::string_view v) { return IsCount(v, 0); }},
          {.name = "timeout",
           .default_value = "10s",
           .help = "deadline of each CreateMessage",
           .validate = qai::common::IsDuration},
          {.name = "arrival-timeout",
           .default_value = "30s",
           .help = "how long StartRuns may take to arrive after the last call",
           .validate = qai::common::IsDuration},
          {.name = "backlog-timeout",
           .default_value = "60s",
           .help = "how long the project's earlier messages may take to reach StartRun",
           .validate = qai::common::IsDuration},
          {.name = "linger",
           .default_value = "1s",
           .help = "listening for late duplicates after the last StartRun",
           .validate = qai::common::IsDuration},
          {.name = "token", .help = "bearer token (JWT) of the project's owner", .secret = true},
          {.name = "jwt-secret",
           .help = "mint a token with this HS256 key when --token is empty",
           .secret = true},
          {.name = "sub", .default_value = "chainbench", .help = "subject of a minted token"},
      },
      argc, argv);
  if (!config.ok()) {
    if (config.status().code() == absl::StatusCode::kNotFound) {  // --help
      std::printf("%s\n", std::string(config.status().message()).c_str());
      return 0;
    }
    std::fprintf(stderr, "qai-chainbench: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  ChainOptions options{
      .project_id = config->Get("project"),
      .token = config->Get("token"),
      .prompts = static_cast<int>(config->GetInt("prompts")),
      .concurrency = static_cast<int>(config->GetInt("concurrency")),
      .think = config->GetDuration("think"),
      .warmup = static_cast<int>(config->GetInt("warmup")),
      .timeout = config->GetDuration("timeout"),
      .arrival_timeout = config->GetDuration("arrival-timeout"),
      .linger = config->GetDuration("linger"),
  };
  if (options.token.empty() && !config->Get("jwt-secret").empty()) {
    const absl::Time now = absl::Now();
    options.token = qai::common::SignJwt(
        {.subject = config->Get("sub"), .expires = now + absl::Hours(1), .issued_at = now},
        config->Get("jwt-secret"));
  }

  absl::StatusOr<std::unique_ptr<RecordingOrchestrator>> orchestrator =
      RecordingOrchestrator::Start(config->Get("orchestrator-listen"));
  if (!orchestrator.ok()) {
    std::fprintf(stderr, "qai-chainbench: %s\n",
                 std::string(orchestrator.status().message()).c_str());
    return 1;
  }
  auto channel = grpc::CreateChannel(config->Get("target"), grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "qai-chainbench: cannot connect to %s\n", config->Get("target").c_str());
    return 1;
  }
  std::unique_ptr<pb::MessageService::Stub> stub = pb::MessageService::NewStub(channel);

  // The project's earlier prompts go first: their runs are started in order, so a prompt of
  // this run would queue behind one still retrying.
  const absl::Time backlog_start = absl::Now();
  absl::StatusOr<std::vector<std::string>> backlog =
      PendingMessages(*stub, options.project_id, options.token);
  if (!backlog.ok()) {
    std::fprintf(stderr, "qai-chainbench: cannot list the project's messages: %s\n",
                 std::string(backlog.status().message()).c_str());
    return 1;
  }
  if (std::vector<std::string> missing =
          (*orchestrator)->WaitFor(*backlog, config->GetDuration("backlog-timeout"));
      !missing.empty()) {
    std::fprintf(
        stderr, "qai-chainbench: %zu pending messages of the project got no StartRun within %s\n",
        missing.size(), absl::FormatDuration(config->GetDuration("backlog-timeout")).c_str());
    return 1;
  }
  const double backlog_wait_ms = absl::ToDoubleMilliseconds(absl::Now() - backlog_start);
  // Pending ones may have arrived while the list was read, and then not be on it.
  std::vector<std::string> known = *backlog;
  for (const auto& [id, arrival] : (*orchestrator)->Arrivals()) known.push_back(id);

  const ChainResult r = qai::chainbench::RunChain(options, *stub, **orchestrator, known);
  // ordered_json keeps the keys in the documented order (plain json sorts them).
  nlohmann::ordered_json line = {
      {"prompts", options.prompts},
      {"concurrency", options.concurrency},
      {"think_ms", absl::ToDoubleMilliseconds(options.think)},
      {"warmup", options.warmup},
      {"created", r.created},
      {"errors", r.errors},
      {"missing", r.missing},
      {"duplicates", r.duplicates},
      {"unmatched", r.unmatched},
      {"mismatched", r.mismatched},
      {"seconds", Rounded(r.seconds)},
      {"rate", std::round(r.rate * 10) / 10},
      {"arrival_rate", std::round(r.arrival_rate * 10) / 10},
      {"chain_count", r.chain.count},
      {"chain_negative", r.chain.negative},
      {"chain_min_ms", Rounded(r.chain.min_ms)},
      {"chain_p50_ms", Rounded(r.chain.p50_ms)},
      {"chain_p90_ms", Rounded(r.chain.p90_ms)},
      {"chain_p99_ms", Rounded(r.chain.p99_ms)},
      {"chain_max_ms", Rounded(r.chain.max_ms)},
      {"chain_mean_ms", Rounded(r.chain.mean_ms)},
      {"create_p50_ms", Rounded(r.create.p50_ms)},
      {"create_p90_ms", Rounded(r.create.p90_ms)},
      {"create_p99_ms", Rounded(r.create.p99_ms)},
      {"create_max_ms", Rounded(r.create.max_ms)},
      {"create_mean_ms", Rounded(r.create.mean_ms)},
      {"backlog", backlog->size()},
      {"backlog_wait_ms", Rounded(backlog_wait_ms)},
  };
  std::cout << line.dump() << std::endl;
  return r.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
