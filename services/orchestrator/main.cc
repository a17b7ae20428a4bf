// qai-orchestrator: the AgentOrchestrator server and its workers, whose agents work in
// qai-sandbox's workspaces. See docs/operations.md for its configuration.

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/client.h"
#include "common/log.h"
#include "common/outbox.h"
#include "common/page_token.h"
#include "common/pg_listener.h"
#include "common/projects_client.h"
#include "common/run_settings.h"
#include "common/server.h"
#include "common/service_main.h"
#include "services/orchestrator/api/callers.h"
#include "services/orchestrator/api/handlers.h"
#include "services/orchestrator/api/service.h"
#include "services/orchestrator/model/model_config.h"
#include "services/orchestrator/runs/deliverers.h"
#include "services/orchestrator/runs/messages_client.h"
#include "services/orchestrator/runs/run_metrics.h"
#include "services/orchestrator/runs/sandbox_client.h"
#include "services/orchestrator/runs/worker.h"
#include "services/orchestrator/store/run_store.h"
#include "services/orchestrator/stream/event_hub.h"

int main(int argc, char** argv) {
  using namespace qai;
  using common::Log;
  using common::LogLevel;
  common::BlockShutdownSignals();
  std::vector<common::Option> options = {
      common::PageTokenKeyOption(),
      {.name = "projects-addr",
       .default_value = "localhost:50051",
       .help = "ProjectService target"},
      {.name = "messages-addr",
       .default_value = "localhost:50052",
       .help = "MessageService target"},
      {.name = "sandbox-addr",
       .default_value = "localhost:50054",
       .help = "SandboxService target reaching any replica of the sandbox tier (several: "
               "dns:///<headless service>:50054 "
               "or ipv4:<host:port>,<host:port>); each project's calls then go to the replica that "
               "serves it"},
      {.name = "workers",
       .default_value = "2",
       .help = "runs this replica works on at once",
       .validate = common::IsIntIn(1, 64)},
      {.name = "run-lease",
       .default_value = "30s",
       .help = "how long a run survives its worker going silent",
       .validate = common::IsDuration},
      {.name = "run-max-attempts",
       .default_value = "3",
       .help = "attempts of a run before it fails",
       .validate = common::IsIntIn(1, 20)},
      {.name = "command-timeout",
       .default_value = "120s",
       .help = "longest an agent's terminal command may run",
       .validate = common::IsDuration},
      {.name = "run-archive-after",
       .default_value = "1h",
       .help = "a finished run's events move to the compact archive this long after it ended",
       .validate = common::IsDuration},
      {.name = "watch-max-per-principal",
       .default_value = "16",
       .help = "WatchRun streams one user may hold open on this replica (0 = no cap)",
       .validate = common::IsIntIn(0, 100000)},
      {.name = "watch-recheck",
       .default_value = "60s",
       .help = "a WatchRun stream asks again whether its caller may see the run (the token still "
               "valid, the "
               "project still theirs) before reading on, once this long has passed",
       .validate = common::IsDuration}};
  for (common::Option& o : orchestrator::ModelOptions()) options.push_back(std::move(o));
  for (common::Option& o : common::RunSettingsOptions()) options.push_back(std::move(o));
  auto base =
      common::ServiceBase::Init("orchestrator", argc, argv, std::move(options), "0.0.0.0:50053");
  if (!base.ok()) return common::ExitCodeFor(base.status());
  const common::Config& config = (*base)->config();
  absl::StatusOr<common::RunBounds> bounds = common::RunBoundsFrom(config);
  if (!bounds.ok()) return common::ExitCodeFor(bounds.status());

  orchestrator::RunStore store((*base)->db(), orchestrator::LatestRunNews);
  // One channel to each service: MessageService for the agent's History and results,
  // ProjectService for who may see a project, and both for the outbox's rows.
  const std::shared_ptr<grpc::Channel> messages_channel =
      common::MakeChannel(config.Get("messages-addr"), (*base)->grpc_limits());
  const std::shared_ptr<grpc::Channel> projects_channel =
      common::MakeChannel(config.Get("projects-addr"), (*base)->grpc_limits());
  const std::shared_ptr<grpc::Channel> sandbox_channel =
      common::MakeChannel(config.Get("sandbox-addr"), (*base)->grpc_limits());
  common::OutboxRelay relay(
      (*base)->db(),
      common::OutboxOptionsFrom(config, orchestrator::kOutboxTable, (*base)->metrics()),
      orchestrator::MakeDeliverers(messages_channel, projects_channel, sandbox_channel,
                                   config.Get("api-key"), &store),
      orchestrator::MakeBatchDeliverers(projects_channel, config.Get("api-key")));
  absl::StatusOr<std::unique_ptr<orchestrator::Model>> model = orchestrator::MakeModel(config);
  if (!model.ok()) return common::ExitCodeFor(model.status());
  if (config.Get("model-provider") == "openai") {
    Log(LogLevel::kInfo, "model provider",
        {{"provider", (*model)->name()},
         {"model", config.Get("openai-model")},
         {"base_url", config.Get("openai-base-url")},
         {"stream", config.GetBool("openai-stream")},
         {"api_key", config.Get("openai-api-key").empty() ? "none" : "set"}});
  } else {
    Log(LogLevel::kInfo, "model provider",
        {{"provider", (*model)->name()},
         {"note", "a deterministic offline stand-in for a language model; no network"}});
  }
  orchestrator::EventHub hub(&store, {});
  orchestrator::RunMetrics run_metrics(*(*base)->metrics(), &store, &hub);
  std::unique_ptr<orchestrator::Model> counted_model = run_metrics.Instrument(model->get());
  orchestrator::MessagesClient messages(messages_channel, config.Get("api-key"));
  common::ProjectsClient projects(projects_channel, config.Get("api-key"));

  orchestrator::SandboxClient sandbox(sandbox_channel, config.Get("api-key"),
                                      config.GetDuration("command-timeout"),
                                      (*base)->grpc_limits());

  orchestrator::WorkerOptions worker_options{
      .replica = absl::StrCat("orchestrator-", getpid()),
      .workers = static_cast<int>(config.GetInt("workers")),
      .lease = config.GetDuration("run-lease"),
      .max_attempts = static_cast<int>(config.GetInt("run-max-attempts")),
      .sandbox = &sandbox,
      .archive_after = config.GetDuration("run-archive-after"),
      .outbox_written = [&relay] { relay.Wake(); }};
  worker_options.metrics = &run_metrics;
  orchestrator::WorkerPool pool(&store, &messages, counted_model.get(), worker_options);
  common::PgListener listener(
      {.url = config.Get("database-url"),
       .channels = {orchestrator::kRunsChannel, orchestrator::kEventsChannel,
                    orchestrator::kCancelChannel}},
      [&](std::string_view channel, std::string_view payload) {
        if (channel == orchestrator::kEventsChannel) {
          hub.OnNotify(payload);
        } else if (channel == orchestrator::kRunsChannel) {
          pool.Wake();
        } else if (channel == orchestrator::kCancelChannel) {
          pool.CancelRequested(std::string(payload));
        }
      },
      [&] {
        hub.OnReconnect();
        pool.Wake();
      });

  absl::StatusOr<common::PageTokenCodec> tokens = common::PageTokensFrom(config);
  if (!tokens.ok()) return common::ExitCodeFor(tokens.status());
  orchestrator::RunHandlers handlers(&store, &projects, &*tokens, &*bounds,
                                     [&pool] { pool.Wake(); });
  common::Executor watch_executor("watch", 4, 100000);
  const common::RpcEnv rpc_env =
      (*base)->rpc_env("qai.orchestrator.v1.AgentOrchestrator", &orchestrator::ServiceCallers());
  orchestrator::AgentOrchestratorImpl service(
      &handlers, rpc_env, &hub, &watch_executor,
      {.max_per_principal = static_cast<int>(config.GetInt("watch-max-per-principal")),
       .recheck_after = config.GetDuration("watch-recheck")});
  auto server =
      common::Server::Start({.listen_addr = config.Get("listen-addr"),
                             .services = {&service},
                             .health_names = {"qai.orchestrator.v1.AgentOrchestrator"},
                             .db = (*base)->db(),
                             .extra_health = {{"outbox", [&relay] { return relay.Healthy(); }}},
                             .drain_timeout = config.GetDuration("drain-timeout"),
                             .grpc = (*base)->grpc_limits(),

                             .metrics = (*base)->metrics()});
  if (!server.ok()) return common::ExitCodeFor(server.status());
  if (absl::Status s = listener.Start(); !s.ok()) return common::ExitCodeFor(s);
  pool.Start();
  relay.Start();

  common::WaitForShutdownSignal();
  // Runs in progress go back to the queue for another replica; watchers' streams end at once
  // with UNAVAILABLE (their clients reconnect to another replica with their last sequence).
  pool.Stop();
  relay.Stop();
  service.CloseWatches();
  (*server)->Shutdown();
  listener.Stop();
  watch_executor.Shutdown();
  (*base)->executor()->Shutdown();
  Log(LogLevel::kInfo, "bye");
  return 0;
}
