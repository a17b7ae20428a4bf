#include "tools/qai/global_options.h"

#include <cstdint>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "common/config.h"

namespace qai::cli {

std::vector<FlagSpec> GlobalFlags() {
  return {
      {.name = "projects-addr",
       .value_name = "ADDR",
       .help = "ProjectService gRPC target",
       .env = "QAI_PROJECTS_ADDR",
       .default_value = "localhost:50051",
       .required = true},
      {.name = "messages-addr",
       .value_name = "ADDR",
       .help = "MessageService gRPC target",
       .env = "QAI_MESSAGES_ADDR",
       .default_value = "localhost:50052",
       .required = true},
      {.name = "orchestrator-addr",
       .value_name = "ADDR",
       .help = "AgentOrchestrator gRPC target",
       .env = "QAI_ORCHESTRATOR_ADDR",
       .default_value = "localhost:50053",
       .required = true},
      {.name = "token",
       .value_name = "JWT",
       .help = "bearer token (see `qai token`)",
       .env = "QAI_TOKEN"},
      {.name = "api-key", .value_name = "KEY", .help = "service API key", .env = "QAI_API_KEY"},
      {.name = "timeout",
       .value_name = "DURATION",
       .help = "deadline of each call",
       .env = "QAI_TIMEOUT",
       .default_value = "10s",
       .required = true,
       .validate = common::IsDuration},
      {.name = "json", .help = "print responses as protobuf JSON, one object per line"},
      // No environment fallback on purpose: a leftover value would turn every later mutation
      // into a silent repeat of the first one.
      {.name = "request-id",
       .value_name = "UUID",
       .help =
           "x-request-id of the calls, and idempotency key of a mutation (default: a new UUID)"},
      {.name = "verbose", .help = "print each call's target and request id on stderr"},
  };
}

GlobalOptions GlobalOptionsFrom(const Args& args) {
  GlobalOptions options{
      .projects_addr = args.Get("projects-addr"),
      .messages_addr = args.Get("messages-addr"),
      .orchestrator_addr = args.Get("orchestrator-addr"),
      .token = args.Get("token"),
      .api_key = args.Get("api-key"),
      .timeout = args.GetDuration("timeout"),
      .json = args.Switch("json"),
      .verbose = args.Switch("verbose"),
      .request_id = args.Get("request-id"),
  };
  if (options.request_id.empty()) options.request_id = NewUuidV4();
  return options;
}

std::string NewUuidV4() {
  // BitGen is seeded from the OS entropy source, so ids from concurrent runs do not collide.
  absl::BitGen gen;
  uint64_t hi = absl::Uniform<uint64_t>(gen);
  uint64_t lo = absl::Uniform<uint64_t>(gen);
  hi = (hi & ~uint64_t{0xf000}) | uint64_t{0x4000};            // version 4
  lo = (lo & ~(uint64_t{0xc} << 60)) | (uint64_t{0x8} << 60);  // variant 10xx
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff,
                         lo >> 48, lo & 0xffffffffffffULL);
}

}  // namespace qai::cli
