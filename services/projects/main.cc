// qai-projects: the ProjectService server. See docs/operations.md for its configuration.

#include <algorithm>
#include <cstdlib>

#include "common/client.h"
#include "common/log.h"
#include "common/outbox.h"
#include "common/page_token.h"
#include "common/server.h"
#include "common/service_main.h"
#include "services/orchestrator/client/run_settings.h"
#include "services/projects/callers.h"
#include "services/projects/effects.h"
#include "services/projects/handlers.h"
#include "services/projects/service.h"
#include "services/projects/store.h"

namespace {

// ProjectsGrpcLimits: the service's limits, with messages no larger than 256 KiB: the largest
// valid request (a 10,000-character prompt) is about 40 KB, and no reply comes near it.
qai::common::GrpcLimits ProjectsGrpcLimits(qai::common::GrpcLimits limits) {
  limits.max_message_bytes = std::min(limits.max_message_bytes, 256 << 10);
  return limits;
}

// RunCapOption: run-max-active-per-principal, as qai-messages and qai-orchestrator declare it
// (services/orchestrator/client/run_settings.h; in Kubernetes all three read it from the
// qai-run-settings ConfigMap).
qai::common::Option RunCapOption() {
  for (qai::common::Option& o : qai::orchestrator::RunSettingsOptions()) {
    if (o.name == "run-max-active-per-principal") return o;
  }
  std::abort();  // a renamed option: caught by every test that starts qai-projects
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qai;
  common::BlockShutdownSignals();
  auto base = common::ServiceBase::Init(
      "projects", argc, argv,
      {common::PageTokenKeyOption(),
       {.name = "messages-addr",
        .default_value = "localhost:50052",
        .help = "MessageService target"},
       {.name = "orchestrator-addr",
        .default_value = "localhost:50053",
        .help = "AgentOrchestrator target"},
       {.name = "db-pipeline-connections",
        .default_value = "4",
        .help = "connections that batch the hottest statements (GetProject, CreateProject)",
        .validate = common::IsIntIn(1, 64)},
       RunCapOption()});
  if (!base.ok()) return common::ExitCodeFor(base.status());
  const common::Config& config = (*base)->config();

  common::OutboxRelay relay(
      (*base)->db(), common::OutboxOptionsFrom(config, projects::kOutboxTable, (*base)->metrics()),
      projects::MakeDeliverers({config.Get("messages-addr"), config.Get("orchestrator-addr"),
                                config.Get("api-key"), (*base)->grpc_limits()}));
  auto store = projects::ProjectStore::Open(
      (*base)->db(), {.url = config.Get("database-url"),
                      .connections = static_cast<int>(config.GetInt("db-pipeline-connections"))});
  if (!store.ok()) return common::ExitCodeFor(store.status());
  absl::StatusOr<common::PageTokenCodec> tokens = common::PageTokensFrom(config);
  if (!tokens.ok()) return common::ExitCodeFor(tokens.status());
  // CreateProject asks the orchestrator whether its author may start another run (RunRoom).
  projects::RunRoom room(
      common::MakeChannel(config.Get("orchestrator-addr"), (*base)->grpc_limits()),
      config.Get("api-key"), config.GetInt("run-max-active-per-principal"));
  // ForkProject asks it whether the version to fork exists.
  orchestrator::RunsClient orchestrator(
      common::MakeChannel(config.Get("orchestrator-addr"), (*base)->grpc_limits()),
      config.Get("api-key"));
  projects::ProjectHandlers handlers(
      store->get(), &*tokens, [&relay] { relay.Wake(); }, &room, &orchestrator);
  const common::RpcEnv rpc_env =
      (*base)->rpc_env("qai.projects.v1.ProjectService", &projects::ServiceCallers());
  projects::ProjectServiceImpl service(&handlers, rpc_env);

  auto server =
      common::Server::Start({.listen_addr = config.Get("listen-addr"),
                             .services = {&service},
                             .health_names = {"qai.projects.v1.ProjectService"},
                             .db = (*base)->db(),
                             // A backlog shows on its own name; it never takes the
                             // replica out of the load balancer.
                             .extra_health = {{"outbox", [&relay] { return relay.Healthy(); }}},
                             .drain_timeout = config.GetDuration("drain-timeout"),
                             .grpc = ProjectsGrpcLimits((*base)->grpc_limits()),

                             .metrics = (*base)->metrics()});
  if (!server.ok()) return common::ExitCodeFor(server.status());
  relay.Start();

  common::WaitForShutdownSignal();
  (*server)->Shutdown();
  (*store)->Stop();
  relay.Stop();
  (*base)->executor()->Shutdown();
  common::Log(common::LogLevel::kInfo, "bye");
  return 0;
}
