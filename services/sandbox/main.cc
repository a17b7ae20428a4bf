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
#include "services/sandbox/preview/archive_downloads.h"
#include "services/sandbox/preview/preview_server.h"
#include "services/sandbox/process.h"
#include "services/sandbox/sandbox_options.h"
#include "services/sandbox/sandbox_setup.h"
#include "services/sandbox/service.h"
#include "services/sandbox/store.h"
#include "services/sandbox/workspaces.h"

namespace qai::sandbox {
namespace {

using common::Log;
using common::LogLevel;

// ServiceOptions: qai-sandbox's own options, besides the sandbox's (sandbox_options.h) and
// every service's.
std::vector<common::Option> ServiceOptions() {
  return {
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
      {.name = "snapshot-max-files",
       .default_value = "1000",
       .help = "the most files a snapshot (a version) holds; a workspace with more cannot be saved",
       .validate = common::IsIntIn(1, 100000)},
      {.name = "snapshot-max-mb",
       .default_value = "32",
       .help =
           "the most content a snapshot (a version) holds, in MiB; saving one holds about three "
           "times that in memory for a moment",
       .validate = common::IsIntIn(1, 1024)},
      {.name = "max-downloads",
       .default_value = "4",
       .help = "snapshot archives this replica streams at once, over gRPC and over HTTP each",
       .validate = common::IsIntIn(1, 256)},
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
}

// ReplicaName: the configured name, or the host's (a StatefulSet's pod name).
std::string ReplicaName(const std::string& configured) {
  if (!configured.empty()) return configured;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return "qai-sandbox";
  return host;
}

// StartPreview: the preview server. It keeps the snapshots it shows in memory (they never
// change); this reads one from the store the first time. Its downloads take `downloads`' slots.
absl::StatusOr<std::unique_ptr<PreviewServer>> StartPreview(const common::Config& config,
                                                            SandboxStore* store,
                                                            common::StreamSlots* downloads) {
  return PreviewServer::Start(
      config.Get("preview-addr"),
      [store](const std::string& snapshot_id)
          -> absl::StatusOr<std::shared_ptr<const PreviewSnapshot>> {
        QAI_ASSIGN_OR_RETURN(SnapshotRecord stored, store->GetSnapshot(snapshot_id));
        return std::make_shared<const PreviewSnapshot>(
            PreviewSnapshot{.files = *stored.files, .created = stored.create_time});
      },
      {.cache_bytes = static_cast<size_t>(config.GetInt("preview-cache-mib")) << 20,
       .downloads = ArchiveDownloads(store, downloads)});
}

// PreviewBaseUrl: the preview server's public URL, as configured or its local port; logged.
std::string PreviewBaseUrl(const common::Config& config, const PreviewServer& preview) {
  std::string base = config.Get("preview-base-url");
  if (base.empty()) base = absl::StrCat("http://localhost:", preview.port());
  Log(LogLevel::kInfo, "preview server listening", {{"port", preview.port()}, {"base_url", base}});
  return base;
}

// JoinTier: the replica joins the tier: alive while its database session lasts; a purge on
// any replica reaches its workspaces and the preview's cache.
absl::StatusOr<std::unique_ptr<Membership>> JoinTier(const common::Config& config,
                                                     ReplicaStore* replicas, Workspaces* workspaces,
                                                     PreviewServer* preview) {
  return Membership::Start(
      {.db_url = config.Get("database-url"),
       .name = ReplicaName(config.Get("replica-name")),
       .address = config.Get("replica-addr")},
      replicas, workspaces,
      {.snapshots_purged =
           [preview](std::string_view ids) {
             for (absl::string_view id : absl::StrSplit(common::ToAbsl(ids), ',')) {
               preview->ForgetSnapshot(std::string(id));
             }
           },
       // A purge announced while the session was down went unheard.
       .reconnected = [preview] { preview->ForgetAll(); }});
}

// HandlerOptionsFrom: who this replica is, where previews are, and the command timeout.
HandlerOptions HandlerOptionsFrom(const common::Config& config, const Replica& self,
                                  const std::string& preview_base) {
  HandlerOptions options{.self = self, .preview_base_url = preview_base};
  options.limits.command_timeout = config.GetDuration("command-timeout");
  return options;
}

// StartServer: the gRPC server of `service`; its health says NOT_SERVING for "isolation" in
// the unsafe mode, for monitoring to see.
absl::StatusOr<std::unique_ptr<common::Server>> StartServer(common::ServiceBase& base,
                                                            SandboxServiceImpl* service,
                                                            bool isolated) {
  return common::Server::Start({.listen_addr = base.config().Get("listen-addr"),
                                .services = {service},
                                .health_names = {"qai.sandbox.v1.SandboxService"},
                                .db = base.db(),
                                .extra_health = {{"isolation", [isolated] { return isolated; }}},
                                .drain_timeout = base.config().GetDuration("drain-timeout"),
                                .grpc = base.grpc_limits(),
                                .metrics = base.metrics()});
}

// ShutDown: calls stop coming in, the replica leaves the tier, running commands end; then, no
// command running any more, the projects' cgroups go (and anything still in them), then the
// preview server and the handler threads.
void ShutDown(common::Server& server, Membership& membership, common::Executor& commands,
              const Sandbox& sandbox, PreviewServer& preview, common::Executor& handler_threads) {
  server.Shutdown();
  membership.Stop();
  commands.Shutdown();
  if (sandbox.cgroups() != nullptr) sandbox.cgroups()->RemoveAll();
  preview.Stop();
  handler_threads.Shutdown();
}

}  // namespace
}  // namespace qai::sandbox

int main(int argc, char** argv) {
  using namespace qai;
  using common::Log;
  using common::LogLevel;
  // Before any thread: a mount namespace of its own, for the workspaces' disk quotas.
  const absl::Status private_mounts = sandbox::EnterPrivateMounts();
  common::BlockShutdownSignals();
  // Only the orchestrator calls it: no user signs in here.
  auto base = common::ServiceBase::Init("sandbox", argc, argv,
                                        sandbox::WithSandboxOptions(sandbox::ServiceOptions()),
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
      {.root = config.Get("sandbox-root"),
       .sandbox = choice->sandbox,
       .snapshot_limits = {.max_files = static_cast<size_t>(config.GetInt("snapshot-max-files")),
                           .max_bytes = static_cast<size_t>(config.GetInt("snapshot-max-mb"))
                                        << 20},
       .quota = *quota},
      &store);
  const int max_downloads = static_cast<int>(config.GetInt("max-downloads"));
  common::StreamSlots http_downloads(max_downloads);
  auto preview = sandbox::StartPreview(config, &store, &http_downloads);
  if (!preview.ok()) return common::ExitCodeFor(preview.status());
  const std::string preview_base = sandbox::PreviewBaseUrl(config, **preview);
  sandbox::ReplicaStore replicas((*base)->db());
  auto membership = sandbox::JoinTier(config, &replicas, &workspaces, preview->get());
  if (!membership.ok()) return common::ExitCodeFor(membership.status());

  sandbox::SandboxHandlers handlers(
      &workspaces, &replicas,
      sandbox::HandlerOptionsFrom(config, (*membership)->self(), preview_base));
  const int max_commands = static_cast<int>(config.GetInt("max-commands"));
  common::Executor commands("commands", max_commands, static_cast<size_t>(max_commands));
  common::PullStreams downloads("downloads", max_downloads);
  sandbox::SandboxServiceImpl service(
      &handlers, (*base)->rpc_env("qai.sandbox.v1.SandboxService", &sandbox::ServiceCallers()),
      &commands, downloads.env());
  auto server = sandbox::StartServer(**base, &service, !choice->unsafe);
  if (!server.ok()) return common::ExitCodeFor(server.status());

  common::WaitForShutdownSignal();
  sandbox::ShutDown(**server, **membership, commands, *choice->sandbox, **preview,
                    *(*base)->executor());
  downloads.Shutdown();
  Log(LogLevel::kInfo, "bye");
  return 0;
}
