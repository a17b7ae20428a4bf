// qai-messages: the MessageService server. See docs/operations.md for its configuration.

#include "common/client.h"
#include "common/log.h"
#include "common/outbox.h"
#include "common/page_token.h"
#include "common/server.h"
#include "common/service_main.h"
#include "services/messages/callers.h"
#include "services/messages/effects.h"
#include "services/messages/handlers.h"
#include "services/messages/service.h"
#include "services/messages/store.h"
#include "services/orchestrator/client/run_settings.h"
#include "services/orchestrator/client/runs_client.h"
#include "services/projects/client/projects_client.h"

int main(int argc, char** argv) {
  using namespace qai;
  common::BlockShutdownSignals();
  std::vector<common::Option> options = {common::PageTokenKeyOption(),
                                         {.name = "projects-addr",
                                          .default_value = "localhost:50051",
                                          .help = "ProjectService target"},
                                         {.name = "orchestrator-addr",
                                          .default_value = "localhost:50053",
                                          .help = "AgentOrchestrator target"},
                                         projects::OwnerCacheOption()};
  // The orchestrator's bounds on run settings, so CreateMessage refuses a bad one at once.
  for (std::vector<common::Option> more :
       {orchestrator::RunSettingsOptions(), orchestrator::DefaultModelOptions()}) {
    for (common::Option& o : more) options.push_back(std::move(o));
  }
  auto base =
      common::ServiceBase::Init("messages", argc, argv, std::move(options), "0.0.0.0:50052");
  if (!base.ok()) return common::ExitCodeFor(base.status());
  const common::Config& config = (*base)->config();
  absl::StatusOr<orchestrator::RunBounds> bounds = orchestrator::RunBoundsFrom(config);
  if (!bounds.ok()) return common::ExitCodeFor(bounds.status());

  messages::MessageStore store((*base)->db());
  // One channel to the orchestrator: the relay's StartRuns and CreateMessage's CountActiveRuns.
  const std::shared_ptr<grpc::Channel> orchestrator_channel =
      common::MakeChannel(config.Get("orchestrator-addr"), (*base)->grpc_limits());
  common::OutboxRelay::Options relay_options =
      common::OutboxOptionsFrom(config, messages::kOutboxTable, (*base)->metrics());
  relay_options.on_parked = messages::MakeParkedHandlers();
  common::OutboxRelay relay(
      (*base)->db(), std::move(relay_options),
      messages::MakeDeliverers(orchestrator_channel, config.Get("api-key"), &store));
  orchestrator::RunsClient runs(orchestrator_channel, config.Get("api-key"));
  projects::ProjectsClient projects(
      common::MakeChannel(config.Get("projects-addr"), (*base)->grpc_limits()),
      config.Get("api-key"), projects::OwnerCacheOptionsFrom(config));
  absl::StatusOr<common::PageTokenCodec> tokens = common::PageTokensFrom(config);
  if (!tokens.ok()) return common::ExitCodeFor(tokens.status());
  messages::MessageHandlers handlers(
      &store, &projects, &*tokens, &*bounds, [&relay] { relay.Wake(); }, &runs);
  const common::RpcEnv rpc_env =
      (*base)->rpc_env("qai.messages.v1.MessageService", &messages::ServiceCallers());
  messages::MessageServiceImpl service(&handlers, rpc_env);

  auto server =
      common::Server::Start({.listen_addr = config.Get("listen-addr"),
                             .services = {&service},
                             .health_names = {"qai.messages.v1.MessageService"},
                             .db = (*base)->db(),
                             // A backlog shows on its own name; it never takes the
                             // replica out of the load balancer.
                             .extra_health = {{"outbox", [&relay] { return relay.Healthy(); }}},
                             .drain_timeout = config.GetDuration("drain-timeout"),
                             .grpc = (*base)->grpc_limits(),

                             .metrics = (*base)->metrics()});
  if (!server.ok()) return common::ExitCodeFor(server.status());
  relay.Start();

  common::WaitForShutdownSignal();
  (*server)->Shutdown();
  relay.Stop();
  (*base)->executor()->Shutdown();
  common::Log(common::LogLevel::kInfo, "bye");
  return 0;
}
