// qai-loadgen: drives one RPC of a QAI server with many concurrent closed-loop callers and
// prints one JSON line with the rate and latency percentiles. Used by tools/bench.
//
//   qai-loadgen --target 127.0.0.1:50051 --method get-project --callers 32 --channels 4
//       --duration 10s --warmup 2s --token "$(qai token --sub bench-user)"
//
// Output: {"method","callers","channels","calls","errors","seconds","rate","p50_ms","p90_ms",
// "p99_ms","max_ms"}; `rate` is successful calls per second and the percentiles cover
// successful calls (see LoadResult). The first few failures are printed to stderr. Exit
// status: 0 when at least one call succeeded, 1 when none did or set-up failed, 2 bad flags.
//
// With --serve-messages ADDR it generates no load: it serves a MessageService that accepts
// every CreateMessage (see messages_sink.h), prints {"listening":PORT} and runs until SIGTERM
// or SIGINT.

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
#include "common/server.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "tools/loadgen/load_runner.h"
#include "tools/loadgen/messages_sink.h"

namespace {

using qai::common::Config;
using qai::loadgen::LoadOptions;
using qai::loadgen::LoadResult;
using qai::loadgen::Method;

std::string IsPositiveInt(std::string_view value) {
  if (std::string why = qai::common::IsInt(value); !why.empty()) return why;
  return std::stoll(std::string(value)) >= 1 ? "" : "must be at least 1";
}

std::string IsMethod(std::string_view value) {
  return qai::loadgen::ParseMethod(value)
             ? ""
             : "must be health, get-project, create-project or list-versions";
}

// MakeChannels: `count` channels that do not share a connection. gRPC pools subchannels
// globally by target and arguments, so without a distinct argument every channel would ride on
// the same TCP connection and "channels" would measure nothing.
std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const std::string& target, int count) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < count; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("qai.loadgen.channel", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channels.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }
  return channels;
}

// CreateProject: one project to read in get-project runs, made through the API so that it is
// owned by the token's subject.
bool CreateProject(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                   std::string* id) {
  auto stub = qai::projects::v1::ProjectService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  qai::projects::v1::CreateProjectRequest request;
  request.set_initial_prompt("A project for qai-loadgen to read.");
  qai::projects::v1::Project project;
  grpc::Status status = stub->CreateProject(&context, request, &project);
  if (!status.ok()) {
    std::fprintf(stderr, "qai-loadgen: cannot create a project to read: code %d: %s\n",
                 static_cast<int>(status.error_code()), status.error_message().c_str());
    return false;
  }
  *id = project.id();
  std::fprintf(stderr, "qai-loadgen: reading project %s\n", id->c_str());
  return true;
}

int ServeMessages(const std::string& listen_addr) {
  // Before gRPC starts its threads, so that only WaitForShutdownSignal sees SIGTERM and SIGINT.
  // (A load run keeps the default handlers: Ctrl-C simply ends it.)
  qai::common::BlockShutdownSignals();
  absl::StatusOr<std::unique_ptr<qai::loadgen::MessagesSink>> sink =
      qai::loadgen::MessagesSink::Start(listen_addr);
  if (!sink.ok()) {
    std::fprintf(stderr, "qai-loadgen: %s\n", std::string(sink.status().message()).c_str());
    return 1;
  }
  std::cout << nlohmann::json{{"listening", (*sink)->port()}}.dump() << std::endl;
  qai::common::WaitForShutdownSignal();
  return 0;
}

double Millis(int64_t micros) { return std::round(static_cast<double>(micros)) / 1000.0; }

int Run(int argc, char** argv) {
  absl::StatusOr<Config> config = Config::Parse(
      {
          {.name = "target",
           .help = "server address, host:port (required unless --serve-messages)"},
          {.name = "method",
           .default_value = "health",
           .help = "health, get-project, create-project or list-versions",
           .validate = IsMethod},
          {.name = "callers",
           .default_value = "8",
           .help = "concurrent closed-loop callers",
           .validate = IsPositiveInt},
          {.name = "channels",
           .default_value = "2",
           .help = "distinct connections the callers share",
           .validate = IsPositiveInt},
          {.name = "duration",
           .default_value = "10s",
           .help = "measured time",
           .validate = qai::common::IsDuration},
          {.name = "warmup",
           .default_value = "2s",
           .help = "unmeasured time before it",
           .validate = qai::common::IsDuration},
          {.name = "timeout",
           .default_value = "5s",
           .help = "deadline of each call",
           .validate = qai::common::IsDuration},
          {.name = "token", .help = "bearer token (JWT) sent with every call", .secret = true},
          {.name = "jwt-secret",
           .help = "mint a token with this HS256 key when --token is empty",
           .secret = true},
          {.name = "sub", .default_value = "loadgen", .help = "subject of a minted token"},
          {.name = "project-id", .help = "project read by get-project (default: create one)"},
          {.name = "serve-messages", .help = "serve a MessageService sink on this address instead"},
      },
      argc, argv);
  if (!config.ok()) {
    if (config.status().code() == absl::StatusCode::kNotFound) {  // --help
      std::printf("%s\n", std::string(config.status().message()).c_str());
      return 0;
    }
    std::fprintf(stderr, "qai-loadgen: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  if (!config->Get("serve-messages").empty()) return ServeMessages(config->Get("serve-messages"));
  if (config->Get("target").empty()) {
    std::fprintf(stderr, "qai-loadgen: --target is required\n");
    return 2;
  }

  LoadOptions options{
      .method = *qai::loadgen::ParseMethod(config->Get("method")),
      .callers = static_cast<int>(config->GetInt("callers")),
      .token = config->Get("token"),
      .project_id = config->Get("project-id"),
      .warmup = config->GetDuration("warmup"),
      .duration = config->GetDuration("duration"),
      .timeout = config->GetDuration("timeout"),
  };
  if (options.duration <= absl::ZeroDuration()) {
    std::fprintf(stderr, "qai-loadgen: --duration must be longer than zero\n");
    return 2;
  }
  if (options.token.empty() && !config->Get("jwt-secret").empty()) {
    const absl::Time now = absl::Now();
    options.token = qai::common::SignJwt(
        {.subject = config->Get("sub"), .expires = now + absl::Hours(1), .issued_at = now},
        config->Get("jwt-secret"));
  }

  const int channel_count = static_cast<int>(config->GetInt("channels"));
  std::vector<std::shared_ptr<grpc::Channel>> channels =
      MakeChannels(config->Get("target"), channel_count);
  // Connecting is not part of what is measured.
  for (const auto& channel : channels) {
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      std::fprintf(stderr, "qai-loadgen: cannot connect to %s\n", config->Get("target").c_str());
      return 1;
    }
  }
  if (options.method == Method::kListVersions && options.project_id.empty()) {
    std::fprintf(stderr, "qai-loadgen: list-versions needs --project-id\n");
    return 2;
  }
  if (options.method == Method::kGetProject && options.project_id.empty() &&
      !CreateProject(channels[0], options.token, &options.project_id)) {
    return 1;
  }

  LoadResult result = qai::loadgen::RunLoad(options, channels);
  const auto& h = result.latencies;
  // ordered_json keeps the keys in the documented order (plain json sorts them).
  nlohmann::ordered_json line = {
      {"method", std::string(qai::loadgen::MethodName(options.method))},
      {"callers", options.callers},
      {"channels", channel_count},
      {"calls", result.calls},
      {"errors", result.errors},
      {"seconds", result.seconds},
      {"rate", std::round(result.SuccessRate() * 10) / 10},
      {"p50_ms", Millis(h.ValueAtQuantile(0.50))},
      {"p90_ms", Millis(h.ValueAtQuantile(0.90))},
      {"p99_ms", Millis(h.ValueAtQuantile(0.99))},
      {"max_ms", Millis(h.max())},
  };
  std::cout << line.dump() << std::endl;
  return result.calls > result.errors ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
