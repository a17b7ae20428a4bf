// qai-orchestrator: the AgentOrchestrator server and its workers, whose agents work in
// qai-sandbox's workspaces. See docs/operations.md for its configuration.

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/client.h"
#include "common/log.h"
#include "common/outbox.h"
#include "common/page_token.h"
#include "common/pg_listener.h"
#include "common/server.h"
#include "common/service_main.h"
#include "services/messages/client/messages_client.h"
#include "services/orchestrator/api/callers.h"
#include "services/orchestrator/api/handlers.h"
#include "services/orchestrator/api/service.h"
#include "services/orchestrator/client/run_settings.h"
#include "services/orchestrator/model/model_config.h"
#include "services/orchestrator/runs/run_metrics.h"
#include "services/orchestrator/runs/sandbox_workspace.h"
#include "services/orchestrator/runs/worker.h"
#include "services/orchestrator/store/effects.h"
#include "services/orchestrator/store/run_store.h"
#include "services/orchestrator/stream/event_hub.h"
#include "services/projects/client/projects_client.h"

namespace qai::orchestrator {
namespace {

using common::Log;
using common::LogLevel;

// Options: the orchestrator's own options, its model's and the run settings'.
std::vector<common::Option> Options() {
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
      {.name = "max-downloads",
       .default_value = "8",
       .help = "DownloadVersion streams this replica serves at once",
       .validate = common::IsIntIn(1, 1024)},
      {.name = "watch-recheck",
       .default_value = "60s",
       .help = "a WatchRun stream asks again whether its caller may see the run (the token still "
               "valid, the "
               "project still theirs) before reading on, once this long has passed",
       .validate = common::IsDuration}};
  options.push_back(projects::OwnerCacheOption());
  for (common::Option& o : ModelOptions()) options.push_back(std::move(o));
  for (common::Option& o : RunSettingsOptions()) options.push_back(std::move(o));
  return options;
}

// LogModelProvider: which model the runs use (never its key).
void LogModelProvider(const common::Config& config, const Model& model) {
  if (config.Get("model-provider") == "openai") {
    Log(LogLevel::kInfo, "model provider",
        {{"provider", model.name()},
         {"model", config.Get("openai-model")},
         {"base_url", config.Get("openai-base-url")},
         {"stream", config.GetBool("openai-stream")},
         {"api_key", config.Get("openai-api-key").empty() ? "none" : "set"}});
  } else {
    Log(LogLevel::kInfo, "model provider",
        {{"provider", model.name()},
         {"note", "a deterministic offline stand-in for a language model; no network"}});
  }
}

// Channels: one to each service: MessageService for the agent's history and results,
// ProjectService for who may see a project, SandboxService's tier for the workspaces, and each
// for the outbox's rows.
struct Channels {
  std::shared_ptr<grpc::Channel> messages, projects, sandbox;
};

Channels ChannelsFrom(const common::Config& config, const common::GrpcLimits& limits) {
  return {.messages = common::MakeChannel(config.Get("messages-addr"), limits),
          .projects = common::MakeChannel(config.Get("projects-addr"), limits),
          .sandbox = common::MakeChannel(config.Get("sandbox-addr"), limits)};
}

WorkerOptions WorkerOptionsFrom(const common::Config& config, SandboxClient* sandbox,
                                common::OutboxRelay* relay, RunMetrics* metrics,
                                VersionStore* versions) {
  WorkerOptions options{
      .replica = absl::StrCat("orchestrator-", getpid()),
      .workers = static_cast<int>(config.GetInt("workers")),
      .lease = config.GetDuration("run-lease"),
      .max_attempts = static_cast<int>(config.GetInt("run-max-attempts")),
      .sandbox = sandbox,
      .archive_after = config.GetDuration("run-archive-after"),
      .outbox_written = [relay] { relay->Wake(); },
      // A failed delivery is retried by the relay, as any row's.
      .deliver_now = [relay](const std::string& key) { (void)relay->DeliverNow(key); }};
  options.metrics = metrics;
  options.versions = versions;
  return options;
}

// RelayOptionsFrom: the outbox relay's settings; a result MessageService refuses for good fails
// its run.
common::OutboxRelay::Options RelayOptionsFrom(const common::Config& config,
                                              common::Metrics* metrics, RunStore* store) {
  common::OutboxRelay::Options options = common::OutboxOptionsFrom(config, kOutboxTable, metrics);
  options.on_parked = MakeParkedHandlers(store);
  return options;
}

WatchLimits WatchLimitsFrom(const common::Config& config) {
  return {.max_per_principal = static_cast<int>(config.GetInt("watch-max-per-principal")),
          .recheck_after = config.GetDuration("watch-recheck")};
}

// Listen: run events go to the hub's watchers, new runs wake the workers, cancels reach the
// worker holding the run; after a reconnect the hub catches up and the workers look again.
common::PgListener::Options ListenOptions(const common::Config& config) {
  return {.url = config.Get("database-url"),
          .channels = {kRunsChannel, kEventsChannel, kCancelChannel}};
}

void OnNotify(EventHub& hub, WorkerPool& pool, std::string_view channel, std::string_view payload) {
  if (channel == kEventsChannel) {
    hub.OnNotify(payload);
  } else if (channel == kRunsChannel) {
    pool.Wake();
  } else if (channel == kCancelChannel) {
    pool.CancelRequested(std::string(payload));
  }
}

}  // namespace
}  // namespace qai::orchestrator

int main(int argc, char** argv) {
  using namespace qai;
  using namespace qai::orchestrator;
  common::BlockShutdownSignals();
  auto base = common::ServiceBase::Init("orchestrator", argc, argv, Options(), "0.0.0.0:50053");
  if (!base.ok()) return common::ExitCodeFor(base.status());
  const common::Config& config = (*base)->config();
  absl::StatusOr<RunBounds> bounds = RunBoundsFrom(config);
  if (!bounds.ok()) return common::ExitCodeFor(bounds.status());
  absl::StatusOr<common::PageTokenCodec> tokens = common::PageTokensFrom(config);
  if (!tokens.ok()) return common::ExitCodeFor(tokens.status());
  absl::StatusOr<std::unique_ptr<Model>> model = MakeModel(config);
  if (!model.ok()) return common::ExitCodeFor(model.status());
  LogModelProvider(config, **model);
  const std::string& api_key = config.Get("api-key");

  RunStore store((*base)->db(), LatestRunNews);
  const Channels channels = ChannelsFrom(config, (*base)->grpc_limits());
  common::OutboxRelay relay(
      (*base)->db(), RelayOptionsFrom(config, (*base)->metrics(), &store),
      MakeDeliverers(channels.messages, channels.projects, channels.sandbox, api_key, &store),
      MakeBatchDeliverers(channels.projects, api_key));
  EventHub hub(&store, {});
  RunMetrics run_metrics(*(*base)->metrics(), &store, &hub);
  std::unique_ptr<Model> counted_model = run_metrics.Instrument(model->get());
  messages::MessagesClient messages(channels.messages, api_key);
  projects::ProjectsClient projects(channels.projects, api_key,
                                    projects::OwnerCacheOptionsFrom(config));
  SandboxClient sandbox(channels.sandbox, api_key, config.GetDuration("command-timeout"),
                        (*base)->grpc_limits());
  VersionStore version_store((*base)->db());
  WorkerPool pool(&store, &messages, counted_model.get(),
                  WorkerOptionsFrom(config, &sandbox, &relay, &run_metrics, &version_store));
  common::PgListener listener(
      ListenOptions(config),
      [&](std::string_view channel, std::string_view payload) {
        OnNotify(hub, pool, channel, payload);
      },
      [&] {
        hub.OnReconnect();
        pool.Wake();
      });

  RunHandlers handlers(&store, &projects, &*tokens, &*bounds, [&pool] { pool.Wake(); });
  VersionHandlers versions(&version_store, &store, &projects, &sandbox, &*tokens, &*bounds,
                           [&pool] { pool.Wake(); });
  common::Executor watch_executor("watch", 4, 100000);
  const common::RpcEnv rpc_env =
      (*base)->rpc_env("qai.orchestrator.v1.AgentOrchestrator", &ServiceCallers());
  common::PullStreams downloads("downloads", static_cast<int>(config.GetInt("max-downloads")));
  AgentOrchestratorImpl service(&handlers, &versions, rpc_env, &hub, &watch_executor,
                                downloads.env(), WatchLimitsFrom(config));
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
  downloads.Shutdown();
  (*base)->executor()->Shutdown();
  Log(LogLevel::kInfo, "bye");
  return 0;
}
