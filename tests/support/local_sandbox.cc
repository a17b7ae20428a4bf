#include "tests/support/local_sandbox.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/auth.h"
#include "common/client.h"
#include "common/db_pool.h"
#include "common/executor.h"
#include "common/ids.h"
#include "common/server.h"
#include "services/sandbox/callers.h"
#include "services/sandbox/handlers.h"
#include "services/sandbox/membership.h"
#include "services/sandbox/service.h"
#include "services/sandbox/store.h"
#include "services/sandbox/workspaces.h"

namespace qai::testing {

struct LocalSandbox::Parts {
  std::unique_ptr<common::DbPool> db;
  std::unique_ptr<common::Authenticator> auth;
  std::unique_ptr<common::Executor> executor;
  std::unique_ptr<common::Executor> commands;
  std::unique_ptr<common::PullStreams> downloads;
  std::unique_ptr<sandbox::SandboxStore> store;
  std::unique_ptr<sandbox::Workspaces> workspaces;
  std::unique_ptr<sandbox::ReplicaStore> replicas;
  std::unique_ptr<sandbox::Membership> membership;
  std::unique_ptr<sandbox::SandboxHandlers> handlers;
  std::unique_ptr<sandbox::SandboxServiceImpl> service;
  std::unique_ptr<common::Server> server;
};

absl::StatusOr<std::unique_ptr<LocalSandbox>> LocalSandbox::Start(const std::string& db_url,
                                                                  LocalSandboxOptions options) {
  std::unique_ptr<LocalSandbox> out(new LocalSandbox());
  out->parts_ = std::make_unique<Parts>();
  Parts& p = *out->parts_;
  out->api_key_ = absl::StrCat("orchestrator-key-", common::NewUuid());
  out->root_ = (std::filesystem::temp_directory_path() / ("qai-local-sandbox-" + common::NewUuid()))
                   .string();
  auto sb = sandbox::Sandbox::Create({.mode = options.mode, .limits = options.limits});
  if (!sb.ok()) return sb.status();
  auto db = common::DbPool::Create({.url = db_url, .size = 4});
  if (!db.ok()) return db.status();
  p.db = *std::move(db);
  auto auth =
      common::Authenticator::Create(nullptr, {"orchestrator=" + common::Sha256Hex(out->api_key_)});
  if (!auth.ok()) return auth.status();
  p.auth = std::make_unique<common::Authenticator>(*std::move(auth));
  p.executor = std::make_unique<common::Executor>("handlers", 4, 1000);
  p.commands = std::make_unique<common::Executor>("commands", 8, 8);
  p.downloads = std::make_unique<common::PullStreams>("downloads", 2);
  p.store = std::make_unique<sandbox::SandboxStore>(p.db.get());
  p.workspaces = std::make_unique<sandbox::Workspaces>(
      sandbox::WorkspacesOptions{.root = out->root_, .sandbox = *sb}, p.store.get());
  p.replicas = std::make_unique<sandbox::ReplicaStore>(p.db.get());
  // The tier's only replica: reached at the address its callers were given.
  auto membership = sandbox::Membership::Start({.db_url = db_url, .name = "local"},
                                               p.replicas.get(), p.workspaces.get());
  if (!membership.ok()) return membership.status();
  p.membership = *std::move(membership);
  p.handlers = std::make_unique<sandbox::SandboxHandlers>(
      p.workspaces.get(), p.replicas.get(),
      sandbox::HandlerOptions{.self = p.membership->self(),
                              .preview_base_url = options.preview_base_url,
                              .limits = options.handler_limits});
  p.service = std::make_unique<sandbox::SandboxServiceImpl>(
      p.handlers.get(),
      common::RpcEnv{"qai.sandbox.v1.SandboxService", p.auth.get(), p.executor.get(), nullptr,
                     &sandbox::ServiceCallers()},
      p.commands.get(), p.downloads->env());
  auto server =
      common::Server::Start({.listen_addr = "127.0.0.1:0", .services = {p.service.get()}});
  if (!server.ok()) return server.status();
  p.server = *std::move(server);
  return out;
}

LocalSandbox::~LocalSandbox() {
  if (parts_ != nullptr && parts_->server != nullptr) parts_->server->Shutdown();
  if (parts_ != nullptr) {
    parts_->commands->Shutdown();
    parts_->executor->Shutdown();
    if (parts_->membership != nullptr) parts_->membership->Stop();
  }
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

std::shared_ptr<grpc::Channel> LocalSandbox::channel() const {
  return common::MakeChannel(absl::StrCat("127.0.0.1:", parts_->server->port()));
}

}  // namespace qai::testing
