#include "tests/e2e/harness.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/auth.h"
#include "common/jwt.h"
#include "nlohmann/json.hpp"
#include "tests/support/paths.h"

namespace qai::testing {

std::shared_ptr<grpc::Channel> RunningService::Channel() const {
  return grpc::CreateChannel(Address(), grpc::InsecureChannelCredentials());
}

std::string ServiceKey(std::string_view service) {
  return "e2e-service-key-" + std::string(service);
}

namespace {

// AddDefault: sets `name` unless env has it.
void AddDefault(EnvVars& env, const std::string& name, const std::string& value) {
  for (const auto& [n, v] : env) {
    if (n == name) return;
  }
  env.emplace_back(name, value);
}

// ServiceKeyDigests: QAI_SERVICE_KEY_SHA256 for every service's key.
std::string ServiceKeyDigests() {
  std::vector<std::string> entries;
  for (const char* name : {"projects", "messages", "orchestrator", "sandbox"}) {
    entries.push_back(absl::StrCat(name, "=", common::Sha256Hex(ServiceKey(name))));
  }
  return absl::StrJoin(entries, ",");
}

}  // namespace

absl::StatusOr<RunningService> StartService(const std::string& binary, EnvVars env,
                                            const SpawnOptions& options) {
  bool has_listen_addr = false;
  for (const auto& [name, value] : env)
    has_listen_addr = has_listen_addr || name == "QAI_LISTEN_ADDR";
  if (!has_listen_addr) env.emplace_back("QAI_LISTEN_ADDR", "127.0.0.1:0");
  AddDefault(env, "QAI_JWT_SECRET", kJwtSecret);
  AddDefault(env, "QAI_PAGE_TOKEN_KEY", kPageTokenKey);
  // Tests poll faster than any client should; the tests of the limits set them.
  AddDefault(env, "QAI_RATE_LIMIT", "0");
  std::erase_if(env, [](const auto& e) { return e.second == kUnset; });
  // services/<name>/qai-<name>: the service's own key.
  const std::vector<std::string> parts = absl::StrSplit(binary, '/');
  env.emplace_back("QAI_SERVICE_KEY_SHA256", ServiceKeyDigests());
  if (parts.size() == 3 && parts[0] == "services")
    env.emplace_back("QAI_API_KEY", ServiceKey(parts[1]));
  auto process = ChildProcess::Spawn(BinaryPath(binary), {}, std::move(env), options);
  if (!process.ok()) return process.status();
  absl::StatusOr<std::string> line =
      (*process)->WaitForLine("\"msg\":\"listening\"", absl::Seconds(20));
  if (!line.ok()) {
    return absl::Status(line.status().code(),
                        std::string(line.status().message()) + "\n" + (*process)->Output());
  }
  RunningService svc;
  svc.port = nlohmann::json::parse(*line).at("port").get<int>();
  // Logged before `listening`, so already there when the service asked for metrics.
  for (absl::string_view l : absl::StrSplit((*process)->Output(), '\n')) {
    if (absl::StrContains(l, "\"msg\":\"metrics listening\"")) {
      svc.metrics_port = nlohmann::json::parse(l).at("port").get<int>();
    }
  }
  svc.process = std::move(*process);
  return svc;
}

std::string Token(const std::string& sub, bool admin) {
  common::JwtClaims claims{
      .subject = sub, .expires = absl::Now() + absl::Hours(1), .issued_at = absl::Now()};
  if (admin) claims.roles = {"admin"};
  return common::SignJwt(claims, kJwtSecret);
}

void AsUser(grpc::ClientContext& ctx, const std::string& sub) {
  ctx.AddMetadata("authorization", "Bearer " + Token(sub));
}

void AsAdmin(grpc::ClientContext& ctx, const std::string& sub) {
  ctx.AddMetadata("authorization", "Bearer " + Token(sub, true));
}

void AsService(grpc::ClientContext& ctx, std::string_view service) {
  ctx.AddMetadata("x-api-key", ServiceKey(service));
}

}  // namespace qai::testing
