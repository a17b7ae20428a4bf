// qai-sandbox: SandboxService (workspaces, commands, snapshots) and the preview server. It
// refuses to start unless it isolates commands (see sandbox_setup.h). See docs/operations.md for
// its configuration.

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/executor.h"
#include "common/log.h"
#include "common/server.h"
#include "common/service_main.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "services/sandbox/callers.h"
#include "services/sandbox/disk_quota.h"
#include "services/sandbox/handlers.h"
#include "services/sandbox/membership.h"
#include "services/sandbox/preview/preview_server.h"
#include "services/sandbox/process.h"
#include "services/sandbox/sandbox_setup.h"
#include "services/sandbox/service.h"
#include "services/sandbox/store.h"
#include "services/sandbox/workspaces.h"

namespace {

// ReplicaName: the configured name, or the host's (a StatefulSet's pod name).
std::string ReplicaName(const std::string& configured) {
  if (!configured.empty()) return configured;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return "qai-sandbox";
  return host;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qai;
  using common::Log;
  using common::LogLevel;
  // Before any thread: a mount namespace of its own, for the workspaces' disk quotas.
  const absl::Status private_mounts = sandbox::EnterPrivateMounts();
  common::BlockShutdownSignals();
  std::vector<common::Option> options = {
      {.name = "sandbox-root",
       .default_value = "/var/lib/qai/sandboxes",
       .help = "where project workspaces live (absolute; made 0711 and owned by this service)",
       .validate = [](std::string_view v) -> std::string {
         return !v.empty() && v.front() == '/' ? "" : "must be absolute";
       }},
      {.name = "preview-addr",
       .default_value = "0.0.0.0:8080",
       .help = "HTTP address of the preview server",
       .validate = common::IsHostPort},
      {.name = "preview-base-url",
       .help = "public URL of the preview server (default: http://localhost:<port>)"},
      {.name = "preview-cache-mib",
       .default_value = "256",
       .help = "memory for the snapshots the preview server keeps",
       .validate = common::IsIntIn(1, 1 << 20)},
      {.name = "command-timeout",
       .default_value = "120s",
       .help = "the longest a command may run",
       .validate = common::IsDuration},
      {.name = "max-commands",
       .default_value = "32",
       .help = "commands this replica runs at once",
       .validate = common::IsIntIn(1, 1024)},
      {.name = "replica-name",
       .help =
           "this replica's name in the tier, stable across its restarts (default: the host name)"},
      {.name = "replica-addr",
       .help = "host:port the orchestrators call this replica at; required when the tier has more "
               "than one replica",
       .validate = [](std::string_view v) -> std::string {
         return v.empty() ? "" : common::IsHostPort(v);
       }},
  };
  // Only the orchestrator calls it: no user signs in here.
  auto base = common::ServiceBase::Init("sandbox", argc, argv,
                                        sandbox::WithSandboxOptions(std::move(options)),
                                        "0.0.0.0:50054", common::UserTokens::kNotServed);
  if (!base.ok()) return common::ExitCodeFor(base.status());
  const common::Config& config = (*base)->config();
  // What commands orphan comes here (as to PID 1 in a container) and is reaped.
  sandbox::OrphanReaper reaper;

  auto choice =
      sandbox::ChooseSandbox(config.Get("sandbox"), sandbox::SandboxOptionsFrom(config),
                             config.Get("sandbox-root"), sandbox::CgroupRequestFrom(config));
  if (!choice.ok()) return common::ExitCodeFor(choice.status());

  auto quota = sandbox::ChooseDiskQuota(config, config.Get("sandbox-root"), private_mounts);
  if (!quota.ok()) return common::ExitCodeFor(quota.status());

  sandbox::SandboxStore store((*base)->db());
  sandbox::Workspaces workspaces(
      {.root = config.Get("sandbox-root"), .sandbox = choice->sandbox, .quota = *quota}, &store);

  // The preview server keeps the snapshots it shows in memory (they never change); this reads
  // one the first time.
  auto preview = sandbox::PreviewServer::Start(
      config.Get("preview-addr"),
      [&store](const std::string& snapshot_id)
          -> absl::StatusOr<std::shared_ptr<const sandbox::PreviewSnapshot>> {
        QAI_ASSIGN_OR_RETURN(sandbox::SnapshotRecord stored, store.GetSnapshot(snapshot_id));
        return std::make_shared<const sandbox::PreviewSnapshot>(
            sandbox::PreviewSnapshot{.files = *stored.files, .created = stored.create_time});
      },
      {.cache_bytes = static_cast<size_t>(config.GetInt("preview-cache-mib")) << 20});
  if (!preview.ok()) return common::ExitCodeFor(preview.status());
  std::string preview_base = config.Get("preview-base-url");
  if (preview_base.empty()) preview_base = absl::StrCat("http://localhost:", (*preview)->port());
  Log(LogLevel::kInfo, "preview server listening",
      {{"port", (*preview)->port()}, {"base_url", preview_base}});

  // The replica joins the tier: alive while its database session lasts; a purge on any replica
  // reaches its workspaces and its preview cache.
  sandbox::ReplicaStore replicas((*base)->db());
  auto membership = sandbox::Membership::Start(
      {.db_url = config.Get("database-url"),
       .name = ReplicaName(config.Get("replica-name")),
       .address = config.Get("replica-addr")},
      &replicas, &workspaces,
      {.snapshots_purged =
           [&](std::string_view ids) {
             for (absl::string_view id : absl::StrSplit(common::ToAbsl(ids), ',')) {
               (*preview)->ForgetSnapshot(std::string(id));
             }
           },
       // A purge announced while the session was down went unheard.
       .reconnected = [&] { (*preview)->ForgetAll(); }});
  if (!membership.ok()) return common::ExitCodeFor(membership.status());

  sandbox::HandlerOptions handler_options{.self = (*membership)->self(),
                                          .preview_base_url = preview_base};
  handler_options.limits.command_timeout = config.GetDuration("command-timeout");
  sandbox::SandboxHandlers handlers(&workspaces, &replicas, handler_options);
  const int max_commands = static_cast<int>(config.GetInt("max-commands"));
  common::Executor commands("commands", max_commands, static_cast<size_t>(max_commands));
  const common::RpcEnv rpc_env =
      (*base)->rpc_env("qai.sandbox.v1.SandboxService", &sandbox::ServiceCallers());
  sandbox::SandboxServiceImpl service(&handlers, rpc_env, &commands);
  const bool isolated = !choice->unsafe;
  auto server =
      common::Server::Start({.listen_addr = config.Get("listen-addr"),
                             .services = {&service},
                             .health_names = {"qai.sandbox.v1.SandboxService"},
                             .db = (*base)->db(),
                             // NOT_SERVING in the unsafe mode, for monitoring to see.
                             .extra_health = {{"isolation", [isolated] { return isolated; }}},
                             .drain_timeout = config.GetDuration("drain-timeout"),
                             .grpc = (*base)->grpc_limits(),
                             .metrics = (*base)->metrics()});
  if (!server.ok()) return common::ExitCodeFor(server.status());

  common::WaitForShutdownSignal();
  (*server)->Shutdown();
  (*membership)->Stop();
  commands.Shutdown();
  // No command runs any more: the projects' cgroups go, and anything still in them.
  if (choice->sandbox->cgroups() != nullptr) choice->sandbox->cgroups()->RemoveAll();
  (*preview)->Stop();
  (*base)->executor()->Shutdown();
  Log(LogLevel::kInfo, "bye");
  return 0;
}
